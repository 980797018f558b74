"""unfold_backward: the gradient of ``Tensor.unfold(dim, size, step)``. Each input
position sums the gradients of the windows that held it, in increasing window order.

The result is read as [A, L, B] (the dims before ``dim``, ``dim``, the dims after) and
the gradient as [A, windows, B, size]; a gradient whose dims do not merge so goes to
PyTorch's kernel.
"""

import torch
import triton
import triton.language as tl

from ...codegen.launch import Launcher
from ...codegen.pointwise import TL_DTYPE
from ...dispatch import aten_rows
from ...utils.dtypes import accumulator
from ...utils.layout import INT32_LIMIT, cdiv, merge_dims, span
from .common import dtype_reason, out_reason, wrapped_dim

__all__ = ["unfold_backward"]

_BLOCK = 1024


@triton.jit
def _unfold_backward_kernel(grad, out, numel, L, B, windows, step, size, most_windows,
                            g_sa, g_sw, g_sb, g_sq, o_sa, o_sl, o_sb,
                            ACC: tl.constexpr, BLOCK: tl.constexpr, INDEX64: tl.constexpr):
    """out[a, l, b] = sum over the windows w holding l of grad[a, w, b, l - w * step]."""
    pid = tl.program_id(0)
    if INDEX64:
        pid = pid.to(tl.int64)
    at = pid * BLOCK + tl.arange(0, BLOCK)
    mask = at < numel
    b = at % B
    l = (at // B) % L
    a = at // (B * L)
    first = tl.where(l >= size, (l - size) // step + 1, 0)
    last = tl.minimum(l // step, windows - 1)
    row = a * g_sa + b * g_sb
    acc = tl.zeros([BLOCK], ACC)
    for t in range(0, most_windows):
        w = first + t
        valid = mask & (w <= last)
        acc += tl.load(grad + row + w * g_sw + (l - w * step) * g_sq, mask=valid, other=0).to(ACC)
    tl.store(out + a * o_sa + l * o_sl + b * o_sb, acc.to(out.dtype.element_ty), mask=mask)


_UNFOLD_BACKWARD = Launcher(_unfold_backward_kernel)


def _around(tensor, dim, end):
    """(A, stride), (B, stride) of ``tensor``'s dims before ``dim`` and in (dim, end)
    read as one each, or None where they do not merge."""
    shape, strides = tensor.shape, tensor.stride()
    before, after = merge_dims(shape[:dim], strides[:dim]), merge_dims(shape[dim + 1:end], strides[dim + 1:end])
    return None if before is None or after is None else (before, after)


def unfold_backward(grad_in, input_sizes, dim, size, step, *, out=None):
    """The gradient of ``unfold(dim, size, step)`` of a tensor of ``input_sizes``."""
    dim = wrapped_dim(dim, len(input_sizes))
    if out is None:
        out = torch.empty(list(input_sizes), dtype=grad_in.dtype, device=grad_in.device)
    if out.numel():
        (A, g_sa), (B, g_sb) = _around(grad_in, dim, grad_in.dim() - 1)
        (_, o_sa), (_, o_sb) = _around(out, dim, out.dim())
        L, numel = input_sizes[dim], out.numel()
        index64 = max(span(grad_in), span(out), numel) >= INT32_LIMIT
        _UNFOLD_BACKWARD((cdiv(numel, _BLOCK),), grad_in, out, numel, L, B, grad_in.shape[dim], step, size,
                         cdiv(size, step), g_sa, grad_in.stride(dim), g_sb, grad_in.stride(-1), o_sa, out.stride(dim),
                         o_sb, ACC=TL_DTYPE[accumulator(grad_in.dtype)], BLOCK=_BLOCK, INDEX64=index64)
    return out


def _unfold_backward_unsupported(grad_in, input_sizes, dim, size, step, *, out=None):
    rank = len(input_sizes)
    dim = wrapped_dim(dim, rank)
    if rank == 0 or dim is None or step <= 0 or size <= 0 or input_sizes[dim] < size:
        return "invalid dim, size or step"
    expected = list(input_sizes)
    expected[dim] = (input_sizes[dim] - size) // step + 1
    if list(grad_in.shape) != expected + [size]:
        return "grad_in is not shaped as the unfolded tensor"
    if _around(grad_in, dim, rank) is None or (out is not None and _around(out, dim, rank) is None):
        return "dims around dim do not merge"
    return dtype_reason(grad_in) or out_reason(out, input_sizes, grad_in.dtype, grad_in)


ATEN = tuple(aten_rows("unfold_backward", unfold_backward, _unfold_backward_unsupported, ("", "out")))
