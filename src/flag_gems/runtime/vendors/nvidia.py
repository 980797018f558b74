import torch

from . import Vendor


def _detect() -> bool:
    # is_available() asks the driver for a device count; it creates no context.
    return torch.version.hip is None and torch.version.cuda is not None and torch.cuda.is_available()


def _compile_options(flush_denormals: bool) -> dict:
    # Triton links libdevice in its flush-denormals-to-zero flavour by default; PyTorch
    # keeps fp32 denormals (tanh(1e-39) is 1e-39, not 0). Triton >= 3.6 can say no; a
    # kernel that guards its denormal inputs itself keeps the faster flavour.
    from triton.backends.nvidia.compiler import CUDAOptions

    if "enable_reflect_ftz" not in CUDAOptions.__dataclass_fields__:
        return {}
    return {"enable_reflect_ftz": flush_denormals}


VENDOR = Vendor(name="nvidia", device="cuda", dispatch_key="CUDA", detect=_detect,
                compile_options=_compile_options)
