"""Weight norm (aten's _weight_norm_interface), forward and backward: w = g * v / ||v||, the
norm over every dim but the first or the last. Rows along dim 0 short enough for registers
take one pass; other layouts the kernels of ``moments``."""

import torch
import triton
import triton.language as tl

from ... import runtime
from ...codegen.launch import Launcher
from ...codegen.pointwise import TL_DTYPE
from ...dispatch import Row
from ...utils.dtypes import float_accumulator
from ...utils.layout import cdiv, merged_stride, next_power_of_2
from .moments import WEIGHT_NORM_COEFFICIENTS, affine, block, finish_block, partial_sums

__all__ = ["weight_norm_interface", "weight_norm_interface_backward"]

_FLOATS = runtime.supported_float_dtypes()


@triton.jit
def _weight_norm_rows_kernel(v, g, norms, out, grad_w, grad_g, R, N, stride_v, stride_gw, BACKWARD: tl.constexpr,
                             BLOCK_R: tl.constexpr, BLOCK_N: tl.constexpr, ACC: tl.constexpr):
    """Weight norm over dim 0 with contiguous rows, each read once into registers (the
    coefficients below, without the partial sums). Writes the contiguous ``out``: w, or
    grad_v when BACKWARD (``grad_w`` given; ``grad_g`` written)."""
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    row_mask = rows < R
    cols = tl.arange(0, BLOCK_N)[None, :]
    mask = row_mask[:, None] & (cols < N)
    rows_64 = rows.to(tl.int64)[:, None]
    x = tl.load(v + rows_64 * stride_v + cols, mask=mask, other=0).to(ACC)
    gain = tl.load(g + rows, mask=row_mask, other=0).to(ACC)
    if BACKWARD:
        norm = tl.load(norms + rows, mask=row_mask, other=1).to(ACC)
        dw = tl.load(grad_w + rows_64 * stride_gw + cols, mask=mask, other=0).to(ACC)
        products = tl.sum(dw * x, axis=1)
        tl.store(grad_g + rows, (products / norm).to(grad_g.dtype.element_ty), mask=row_mask)
        result = (gain / norm)[:, None] * dw - (gain * products / (norm * norm * norm))[:, None] * x
    else:
        norm = tl.sqrt(tl.sum(x * x, axis=1))
        tl.store(norms + rows, norm.to(norms.dtype.element_ty), mask=row_mask)
        result = (gain / norm)[:, None] * x
    tl.store(out + rows_64 * N + cols, result.to(out.dtype.element_ty), mask=mask)


_WEIGHT_NORM_ROWS = Launcher(_weight_norm_rows_kernel)


def _weight_norm_view(t, dim):
    """[R = t.shape[dim], 1, rest] with strides, copying ``t`` when its other dims do not merge."""
    if dim == 0:
        rest = merged_stride(t, 1, t.dim())
        if rest is None:
            t, rest = t.contiguous(), 1
        return t, (t.stride(0) if t.dim() else 1, 0, rest)
    rest = merged_stride(t, 0, dim)
    if rest is None:
        t, rest = t.contiguous(), t.shape[-1]
    return t, (t.stride(-1), 0, rest)


def weight_norm_rows_config(R, N, tensors):
    """(BLOCK_R, BLOCK_N, num_warps) of the one-pass dim-0 kernel holding ``tensors``
    row tiles in registers, or None when a row is too long for it."""
    block_n = next_power_of_2(N)
    if block_n * tensors > 16384:
        return None
    block_r = min(next_power_of_2(R), max(1, 2048 // block_n))
    tile = block_r * block_n
    return block_r, block_n, 4 if tile <= 1024 else 8 if tile <= 4096 else 16


def _weight_norm_rows(v, g, norms, out, grad_w=None, grad_g=None):
    """The one-pass kernel for dim 0 when rows are contiguous and short enough; False when it does not apply."""
    N = v.numel() // v.shape[0]
    tensors = (1 if grad_w is None else 2) * (2 if v.dtype == torch.float64 else 1)
    if any(merged_stride(t, 1, t.dim()) != 1 for t in (v, grad_w) if t is not None):
        return False
    config = runtime.config("weight_norm_rows", weight_norm_rows_config)(v.shape[0], N, tensors)
    if config is None:
        return False
    block_r, block_n, warps = config
    R = v.shape[0]
    _WEIGHT_NORM_ROWS((cdiv(R, block_r),), v, g, norms, out, v if grad_w is None else grad_w,
                      g if grad_g is None else grad_g, R, N, v.stride(0), v.stride(0) if grad_w is None else
                      grad_w.stride(0), BACKWARD=grad_w is not None, BLOCK_R=block_r, BLOCK_N=block_n,
                      ACC=TL_DTYPE[float_accumulator(v.dtype)], num_warps=warps)
    return True


def weight_norm_interface(v, g, dim=0):
    """(w, norms): w = g * v / ||v||, the norm over every dim but ``dim`` (0 or the last)."""
    R = v.shape[dim]
    norms = torch.empty_strided(g.shape, g.stride(), dtype=float_accumulator(g.dtype), device=g.device)
    w = torch.empty_like(v, memory_format=torch.contiguous_format)
    if dim == 0 and _weight_norm_rows(v, g, norms, w):
        return w, norms
    sizes = (R, 1, v.numel() // R)
    v_view, v_strides = _weight_norm_view(v, dim)
    partials, splits = partial_sums(v_view, v_view, None, 1, sizes, v_strides, v_strides)
    acc = partials.dtype
    coefs = torch.empty((4, R), dtype=acc, device=v.device)
    block_r = finish_block(R, splits)
    WEIGHT_NORM_COEFFICIENTS((cdiv(R, block_r),), partials, coefs, g, norms, g, R, splits, BACKWARD=False,
                             BLOCK_R=block_r, BLOCK_S=block(splits, 64), ACC=TL_DTYPE[acc])
    _, w_strides = _weight_norm_view(w, dim)
    affine(w, None, v_view, coefs, sizes, w_strides, None, v_strides, has_bias=False)
    return w, norms


def weight_norm_interface_backward(grad_w, saved_v, saved_g, saved_norms, dim):
    """(grad_v, grad_g) with P = sum(grad_w * v) per slice: grad_g = P / norm,
    grad_v = g / norm * grad_w - g * P / norm^3 * v."""
    R = saved_v.shape[dim]
    grad_g = torch.empty_like(saved_g, memory_format=torch.contiguous_format)
    grad_v = torch.empty_like(saved_v, memory_format=torch.contiguous_format)
    if dim == 0 and _weight_norm_rows(saved_v, saved_g, saved_norms, grad_v, grad_w, grad_g):
        return grad_v, grad_g
    sizes = (R, 1, saved_v.numel() // R)
    v_view, v_strides = _weight_norm_view(saved_v, dim)
    g_view, g_strides = _weight_norm_view(grad_w, dim)
    partials, splits = partial_sums(g_view, v_view, None, 1, sizes, g_strides, v_strides)
    acc = partials.dtype
    coefs = torch.empty((4, R), dtype=acc, device=saved_v.device)
    block_r = finish_block(R, splits)
    WEIGHT_NORM_COEFFICIENTS((cdiv(R, block_r),), partials, coefs, saved_g, saved_norms, grad_g, R, splits,
                             BACKWARD=True, BLOCK_R=block_r, BLOCK_S=block(splits, 64), ACC=TL_DTYPE[acc])
    _, out_strides = _weight_norm_view(grad_v, dim)
    affine(grad_v, g_view, v_view, coefs, sizes, out_strides, g_strides, v_strides, has_bias=False)
    return grad_v, grad_g


def _weight_norm_unsupported(v, g, dim=0):
    if v.dtype not in _FLOATS or g.dtype not in _FLOATS or g.device != v.device:
        return "dtype or device not supported"
    if v.numel() == 0 or v.dim() == 0 or not isinstance(dim, int):
        return "empty input or invalid dim"
    if dim not in (0, v.dim() - 1):  # torch wraps negative dims before this op
        return "dim other than the first or the last"
    if g.numel() != v.shape[dim] or not g.is_contiguous():
        return "g does not hold one contiguous value per slice"
    return None


def _weight_norm_backward_unsupported(grad_w, saved_v, saved_g, saved_norms, dim):
    reason = _weight_norm_unsupported(saved_v, saved_g, dim)
    if reason is not None:
        return reason
    if grad_w.shape != saved_v.shape or grad_w.dtype != saved_v.dtype or grad_w.device != saved_v.device:
        return "grad_w differs from v"
    if not saved_v.is_contiguous():
        return "saved_v not contiguous (native raises)"
    if saved_norms.numel() != saved_g.numel() or not saved_norms.is_contiguous() or saved_norms.dtype not in _FLOATS:
        return "norms of another shape or layout"
    return None


ATEN = (
    Row("_weight_norm_interface", weight_norm_interface, _weight_norm_unsupported),
    Row("_weight_norm_interface_backward", weight_norm_interface_backward, _weight_norm_backward_unsupported),
)
