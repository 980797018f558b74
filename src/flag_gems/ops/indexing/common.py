"""What the indexing operators share: operand checks, index bounds, numbers for the kernels,
and accumulation through a wider buffer where a dtype has no atomics."""

import torch
import triton
import triton.language as tl

from ... import runtime
from ...codegen.launch import fp32_exact
from ...codegen.pointwise import Pointwise
from ...codegen.tl_math import ieee_div
from ...utils.dtypes import number_as, scalar_overflows
from ...utils.layout import overlaps_itself, separate_output_reason, shares_storage
from ..movement.copy import copy_, fill_

SUPPORTED = runtime.supported_dtypes()
INDEX_DTYPES = frozenset((torch.int32, torch.int64))

# Atomic writes go to a buffer of this dtype where the destination's has no atomics (or
# where half-precision sums would round at every step).
ATOMIC_DTYPE = {torch.float16: torch.float32, torch.bfloat16: torch.float32, torch.int8: torch.int32,
                torch.uint8: torch.int32, torch.int16: torch.int32, torch.bool: torch.int32}


def on_one_device(*tensors):
    """Whether all ``tensors`` sit on one device of the selected vendor's kind."""
    device = tensors[0].device
    return device.type == runtime.selected_vendor().device and all(t.device == device for t in tensors)


def wrap_dim(dim, rank):
    """``dim`` in [0, rank) (a 0-d tensor has one dim here, as in aten), or None if invalid."""
    rank = max(rank, 1)
    if not isinstance(dim, int) or not -rank <= dim < rank:
        return None
    return dim % rank


def sizes_of(tensor):
    """(shape, strides) with a 0-d tensor seen as one element of one dim."""
    return (tuple(tensor.shape), tuple(tensor.stride())) if tensor.dim() else ((1,), (0,))


def flat(tensor):
    """``tensor`` in flat (row-major) order in memory: itself when contiguous, else a copy."""
    if tensor.is_contiguous():
        return tensor
    return copy_(torch.empty(tensor.shape, dtype=tensor.dtype, device=tensor.device), tensor)


def without(strides, dim):
    """``strides`` with ``dim``'s replaced by 0: the indexed dim, moved by an index instead."""
    strides = list(strides)
    strides[dim] = 0
    return strides


def operands_reason(*tensors):
    """Why the kernels cannot take these value tensors, or None."""
    if not all(isinstance(t, torch.Tensor) for t in tensors):
        return "an operand is not a tensor"
    if not on_one_device(*tensors):
        return "operands on several devices, or not on the vendor's"
    for tensor in tensors:
        if tensor.dtype not in SUPPORTED:
            return f"dtype {tensor.dtype} is not supported"
        if tensor.is_neg() or tensor.is_conj():
            return "a tensor with a lazy negation bit"
    return None


def index_reason(index, bound, device, negative=False):
    """Why ``index`` cannot index a dim of ``bound`` elements on ``device``, or None. An index on the
    CPU is read on the host: a value outside [0, bound) ([-bound, bound) with ``negative``)
    sends the call to the native kernel, which raises PyTorch's error. Device indices are
    checked by the kernels' asserts."""
    if not isinstance(index, torch.Tensor) or index.dtype not in INDEX_DTYPES:
        return "index is not an int32 or int64 tensor"
    if index.device != device:
        return "index on another device"
    if index.is_cpu and index.numel():
        values = index.numpy()
        if values.min() < (-bound if negative else 0) or values.max() >= bound:
            return "index out of range"
    return None


def out_reason(out, shape, dtype, *inputs):
    """Why ``out`` cannot take a result of ``shape`` and ``dtype`` computed from ``inputs``
    (native resizes, casts or copies), or None."""
    if out.shape != shape or out.dtype != dtype or not on_one_device(out, *inputs):
        return "out differs from the result"
    return separate_output_reason(out, *inputs)


def inplace_reason(self, *inputs):
    """Why ``self`` cannot be written in place while ``inputs`` are read, or None."""
    if overlaps_itself(self):
        return "self has internal overlap"
    if any(shares_storage(self, t) for t in inputs):
        return "self overlaps an input"
    return None


def kernel_number(value, dtype):
    """``value`` converted as aten converts a Scalar to ``dtype``, as a kernel argument (an int,
    or a float Triton passes exactly), or None where native raises or we cannot pass it."""
    if type(value) not in (bool, int, float) or (dtype != torch.bool and scalar_overflows(value, dtype)):
        return None
    number = number_as(value, dtype)
    if isinstance(number, bool) or not dtype.is_floating_point:
        return int(number)
    return number if fp32_exact(number) else None


def _set(target, initial):
    if isinstance(initial, torch.Tensor):
        copy_(target, initial)
    else:
        fill_(target, initial)


def update(result, initial, walk_into, atomic=True):
    """``result`` set to ``initial`` (a tensor or a number; None: it holds its start already),
    then ``walk_into(target)``: walks into ``result`` itself, or, for ``atomic`` writes into
    a dtype without them, into a buffer of ``ATOMIC_DTYPE`` converted into ``result`` at the end."""
    wide = ATOMIC_DTYPE.get(result.dtype) if atomic else None
    if wide is None:
        if initial is not None:
            _set(result, initial)
        walk_into(result)
        return result
    buffer = torch.empty(result.shape, dtype=wide, device=result.device)
    _set(buffer, result if initial is None else initial)
    walk_into(buffer)
    return copy_(result, buffer)


@triton.jit
def _mean(total, count):
    """A mean from its sum and count, as aten divides them: a count of 0 counts as 1 (its
    sum is the start value), integers round down."""
    count = tl.maximum(count, 1)
    if total.dtype.is_floating():
        mean = ieee_div(total, count)
    else:
        quotient = total // count
        mean = tl.where((total % count != 0) & (total < 0), quotient - 1, quotient)
    return mean


MEAN = Pointwise(_mean, "indexing_mean")
