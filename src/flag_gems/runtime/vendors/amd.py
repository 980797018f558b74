import torch

from . import Vendor


def _detect() -> bool:
    # ROCm builds of torch expose HIP devices through the "cuda" device type.
    return torch.version.hip is not None and torch.cuda.is_available()


VENDOR = Vendor(name="amd", device="cuda", dispatch_key="CUDA", detect=_detect)
