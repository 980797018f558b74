"""What the shape operators share on the host: the dtypes they take, dims as PyTorch
wraps them, result layouts and the checks of an ``out=`` tensor."""

import torch

from ... import runtime
from ...utils.layout import separate_output_reason

SUPPORTED = runtime.supported_dtypes()


def wrapped_dim(dim, rank):
    """``dim`` wrapped into [0, rank) as PyTorch wraps it (a 0-d tensor takes 0 and -1),
    or None when it is out of range."""
    bound = max(rank, 1)
    return dim % bound if -bound <= dim < bound else None


def wrapped_dims(dims, rank):
    """``dims`` wrapped, or None when one is out of range or repeats."""
    wrapped = [wrapped_dim(d, rank) for d in dims]
    if None in wrapped or len(set(wrapped)) != len(wrapped):
        return None
    return wrapped


def suggested_format(tensor):
    """The memory format PyTorch suggests for results shaped like ``tensor``."""
    if tensor.dim() == 4 and not tensor.is_contiguous() and tensor.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    if tensor.dim() == 5 and not tensor.is_contiguous() and tensor.is_contiguous(
            memory_format=torch.channels_last_3d):
        return torch.channels_last_3d
    return torch.contiguous_format


def dtype_reason(*tensors):
    """Why our kernels cannot read ``tensors``, or None."""
    for tensor in tensors:
        if tensor.dtype not in SUPPORTED:
            return f"dtype {tensor.dtype} is not supported"
    return None


def out_reason(out, shape, dtype, *inputs):
    """Why ``out`` cannot take a result of ``shape`` and ``dtype`` computed from
    ``inputs`` in one pass (native resizes, casts or refuses it), or None."""
    if out is None:
        return None
    if out.dtype != dtype:
        return "out of another dtype"
    if out.device != inputs[0].device:
        return "out on another device"
    if tuple(out.shape) != tuple(shape):
        return "out needs resizing"
    return separate_output_reason(out, *inputs)
