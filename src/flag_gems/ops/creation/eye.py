"""eye: the n x m identity (ones on the main diagonal), every overload with its ``out=``
form, in any dtype PyTorch takes (bool included) and into an ``out`` of any strides."""

import torch
import triton
import triton.language as tl

from ...codegen.launch import Launcher
from ...dispatch import aten_rows
from ...utils.layout import INT32_LIMIT, cdiv, next_power_of_2, span
from .common import options_unsupported, out_unsupported

__all__ = ["eye"]

_TILE, _WARPS = 4096, 4  # elements a program writes


@triton.jit
def _eye_kernel(out, rows, cols, row_stride, col_stride, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
                INDEX64: tl.constexpr):
    """One BLOCK_R x BLOCK_C tile of ``out``: 1 where row == col, else 0."""
    pid = tl.program_id(0)
    col_blocks = tl.cdiv(cols, BLOCK_C)
    row = (pid // col_blocks) * BLOCK_R + tl.arange(0, BLOCK_R)
    col = (pid % col_blocks) * BLOCK_C + tl.arange(0, BLOCK_C)
    if INDEX64:
        row = row.to(tl.int64)
        col = col.to(tl.int64)
    offsets = row[:, None] * row_stride + col[None, :] * col_stride
    mask = (row < rows)[:, None] & (col < cols)[None, :]
    diagonal = row[:, None] == col[None, :]
    tl.store(out + offsets, diagonal.to(out.dtype.element_ty), mask=mask)


_EYE = Launcher(_eye_kernel)


def eye(n, m=None, *, dtype=None, layout=None, device=None, pin_memory=None, out=None):
    """The ``n`` x ``m`` (``m`` defaults to ``n``) identity, of the default float dtype unless given."""
    m = n if m is None else m
    if out is None:
        out = torch.empty((n, m), dtype=dtype or torch.get_default_dtype(), device=device)
    if n == 0 or m == 0:
        return out
    block_c = min(next_power_of_2(m), 1024)
    block_r = min(next_power_of_2(n), _TILE // block_c)
    _EYE((cdiv(n, block_r) * cdiv(m, block_c),), out, n, m, out.stride(0), out.stride(1), BLOCK_R=block_r,
         BLOCK_C=block_c, INDEX64=max(span(out), n, m) >= INT32_LIMIT, num_warps=_WARPS)
    return out


def _eye_unsupported(n, m=None, *, dtype=None, layout=None, device=None, pin_memory=None, out=None):
    m = n if m is None else m
    if n < 0 or m < 0:
        return "a negative size (native raises)"
    if out is not None:
        return options_unsupported(out.dtype, device=out.device) or out_unsupported(out, (n, m), out.dtype)
    return options_unsupported(dtype or torch.get_default_dtype(), layout, device, pin_memory)


ATEN = aten_rows("eye", eye, _eye_unsupported, ("", "m", "out", "m_out"))
