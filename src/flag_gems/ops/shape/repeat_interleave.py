"""repeat_interleave.Tensor: ``i`` written ``repeats[i]`` times, for every i in turn.

One program scans ``repeats`` into the end of each run (and finds the smallest repeat);
then every output position finds its run by a binary search over those ends. Without
``output_size`` the result's length is read on the host, as PyTorch's kernel reads it:
the one device sync our operators make. The self_int and self_Tensor overloads are
CompositeImplicitAutograd (a clone of an expanded view, and an index_select with this
overload's result): they reach our kernels through the operators they call.
"""

import torch
import triton
import triton.language as tl

from ...codegen.launch import Launcher
from ...dispatch import aten_rows, native_calls
from ...utils.layout import cdiv

__all__ = ["repeat_interleave"]

_SCAN_BLOCK = 1024
_SEARCH_BLOCK = 1024


@triton.jit
def _run_ends_kernel(repeats, ends, n, stride, BLOCK: tl.constexpr):
    """ends[i] = repeats[0] + ... + repeats[i]; ends[n] = the smallest repeat."""
    carry = tl.zeros([], tl.int64)
    smallest = tl.full([], 2**62, tl.int64)
    for start in range(0, n, BLOCK):
        at = start + tl.arange(0, BLOCK)
        mask = at < n
        count = tl.load(repeats + at * stride, mask=mask, other=0).to(tl.int64)
        tl.store(ends + at, tl.cumsum(count, 0) + carry, mask=mask)
        carry += tl.sum(count, 0)
        smallest = tl.minimum(smallest, tl.min(tl.where(mask, count, 2**62), 0))
    tl.store(ends + n, smallest)


@triton.jit
def _run_index_kernel(ends, out, n, total, STEPS: tl.constexpr, BLOCK: tl.constexpr):
    """out[j] = the first i whose run ends after j (a binary search over ``ends``)."""
    j = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    low = tl.zeros([BLOCK], tl.int64)
    high = tl.zeros([BLOCK], tl.int64) + n
    for _ in tl.static_range(STEPS):
        middle = (low + high) // 2
        searching = low < high
        after = tl.load(ends + middle, mask=searching, other=0) > j
        high = tl.where(searching & after, middle, high)
        low = tl.where(searching & ~after, middle + 1, low)
    tl.store(out + j, low.to(out.dtype.element_ty), mask=j < total)


_RUN_ENDS = Launcher(_run_ends_kernel)
_RUN_INDEX = Launcher(_run_index_kernel)


def repeat_interleave(repeats, *, output_size=None, out=None):
    """[0] * repeats[0] + [1] * repeats[1] + ..., in ``repeats``' dtype."""
    n = repeats.shape[0]
    if n == 0:
        return torch.empty(0, dtype=repeats.dtype, device=repeats.device) if out is None else out
    ends = torch.empty(n + 1, dtype=torch.int64, device=repeats.device)
    _RUN_ENDS((1,), repeats, ends, n, repeats.stride(0), BLOCK=_SCAN_BLOCK)
    total = output_size
    # PyTorch's CPU kernel checks output_size against the repeats; its GPU kernels trust it.
    if output_size is None or repeats.device.type == "cpu":
        total, smallest = ends[n - 1:].tolist()
        if smallest < 0 or output_size not in (None, total):
            with native_calls():  # PyTorch's own error
                return torch.ops.aten.repeat_interleave.Tensor(repeats, output_size=output_size)
    result = torch.empty(total, dtype=repeats.dtype, device=repeats.device) if out is None else out
    if total:
        _RUN_INDEX((cdiv(total, _SEARCH_BLOCK),), ends, result, n, total, STEPS=n.bit_length(),
                   BLOCK=_SEARCH_BLOCK)
    return result


def _repeat_interleave_unsupported(repeats, *, output_size=None, out=None):
    if repeats.dim() != 1 or repeats.dtype not in (torch.int32, torch.int64):
        return "repeats is not a 1-d int32 or int64 tensor"
    if output_size is not None and output_size < 0:
        return "negative output_size"
    if out is not None and (output_size is None or tuple(out.shape) != (output_size,) or out.dtype != repeats.dtype
                            or out.device != repeats.device):
        return "out may need resizing"
    return None


ATEN = tuple(aten_rows("repeat_interleave", repeat_interleave, _repeat_interleave_unsupported,
                       ("Tensor", "Tensor_out")))
