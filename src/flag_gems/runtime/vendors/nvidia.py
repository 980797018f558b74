import torch

from . import Vendor


def _detect() -> bool:
    # is_available() asks the driver for a device count; it creates no context.
    return torch.version.hip is None and torch.version.cuda is not None and torch.cuda.is_available()


VENDOR = Vendor(name="nvidia", device="cuda", dispatch_key="CUDA", detect=_detect)
