"""What the creation operators' conditions share: the options of a new tensor and the
destination an ``out=`` form writes."""

import torch

from ... import runtime
from ...utils.layout import overlaps_itself

SUPPORTED = runtime.supported_dtypes()
_DEVICE_TYPE = runtime.selected_vendor().device


def options_unsupported(dtype, layout=None, device=None, pin_memory=None):
    """Why our kernels do not make a new ``dtype`` tensor with these factory options, or None."""
    if layout not in (None, torch.strided) or pin_memory:
        return "a layout other than strided, or pinned memory"
    if (torch.device(device).type if device is not None else "cpu") != _DEVICE_TYPE:
        return f"device {device} is not ours"  # an aten call with no device makes a CPU tensor
    if dtype not in SUPPORTED:
        return f"dtype {dtype} is not supported"
    return None


def out_unsupported(out, shape, dtype, device=None):
    """Why the kernel does not write a ``shape`` result of ``dtype`` into ``out``: PyTorch
    resizes an ``out`` of another shape and refuses one of another dtype (native does either),
    and one whose elements share memory (native raises)."""
    if out.shape != tuple(shape) or out.dtype != dtype or (device is not None and out.device != device):
        return "out differs from the result"
    if overlaps_itself(out):
        return "out has internal overlap"
    return None
