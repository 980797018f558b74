"""tril, triu, diag_embed and diagonal_backward: gathers whose pair condition between
two dims keeps part of the result and zeroes the rest.

tril and triu keep the elements on one side of a diagonal of the last two dims.
diag_embed and diagonal_backward write their source onto one diagonal of (dim1, dim2)
of a zero result: the source's last dim is read along dim1 (offset >= 0) or dim2
(offset < 0) and nothing along the other.
"""

import torch

from ...codegen.launch import layout_key, planned
from ...dispatch import aten_rows
from ...utils.layout import overlaps_itself
from .common import dtype_reason, out_reason, wrapped_dim
from .gather import GatherPlan, fill_argument, one_source
from .gather_kernels import DIAGONAL, LOWER, UPPER

__all__ = ["tril", "tril_", "triu", "triu_", "diag_embed", "diagonal_backward"]

_plans = {}


def _triangle(self, diagonal, kind, out):
    """``out`` = ``self`` where the pair condition ``kind`` holds for ``diagonal``, else 0."""
    if out.numel():
        key = (kind, diagonal, layout_key(self), layout_key(out))
        planned(_plans, key, lambda: _triangle_plan(self, diagonal, kind, out))(out, (self,))
    return out


def _triangle_plan(self, diagonal, kind, out):
    rank = self.dim()
    dims = one_source(self.shape, self.stride(), out.stride(), pairs={rank - 2: "P", rank - 1: "Q"})
    return GatherPlan(dims, fill=fill_argument(0, out.dtype), pair=(kind, diagonal))


def tril(self, diagonal=0, *, out=None):
    """The lower triangle of the last two dims, on and below ``diagonal``; zeros above."""
    return _triangle(self, diagonal, LOWER, torch.empty(self.shape, dtype=self.dtype, device=self.device)
                     if out is None else out)


def tril_(self, diagonal=0):
    return _triangle(self, diagonal, LOWER, self)


def triu(self, diagonal=0, *, out=None):
    """The upper triangle of the last two dims, on and above ``diagonal``; zeros below."""
    return _triangle(self, diagonal, UPPER, torch.empty(self.shape, dtype=self.dtype, device=self.device)
                     if out is None else out)


def triu_(self, diagonal=0):
    return _triangle(self, diagonal, UPPER, self)


def _triangle_unsupported(self, diagonal=0, *, out=None):
    if self.dim() < 2:
        return "fewer than two dims"
    return dtype_reason(self) or out_reason(out, self.shape, self.dtype, self)


def _triangle_inplace_unsupported(self, diagonal=0):
    if self.dim() < 2:
        return "fewer than two dims"
    return dtype_reason(self) or ("self overlaps itself" if overlaps_itself(self) else None)


def _diagonal_length(sizes, offset, dim1, dim2):
    if offset >= 0:
        return max(0, min(sizes[dim1], sizes[dim2] - offset))
    return max(0, min(sizes[dim1] + offset, sizes[dim2]))


def _onto_diagonal(source, offset, dim1, dim2, out):
    """``out`` zero but for ``source`` (the diagonal's batch dims, then its length)
    on the diagonal ``offset`` of dims ``dim1`` and ``dim2``."""
    if out.numel():
        key = ("diagonal", offset, dim1, dim2, layout_key(source), layout_key(out))
        planned(_plans, key, lambda: _diagonal_plan(source, offset, dim1, dim2, out))(out, (source,))
    return out


def _diagonal_plan(source, offset, dim1, dim2, out):
    *batch, along = source.stride()
    strides = []
    for d in range(out.dim()):
        if d == dim1:
            strides.append(along if offset >= 0 else 0)
        elif d == dim2:
            strides.append(along if offset < 0 else 0)
        else:
            strides.append(batch.pop(0))
    return GatherPlan(one_source(out.shape, strides, out.stride(), pairs={dim1: "P", dim2: "Q"}),
                      fill=fill_argument(0, out.dtype), pair=(DIAGONAL, offset))


def _embedded_shape(self, offset, dim1, dim2):
    size = self.shape[-1] + abs(offset)
    shape = list(self.shape[:-1])
    shape.insert(min(dim1, dim2), size)
    shape.insert(max(dim1, dim2), size)
    return shape


def _embed_dims(self, dim1, dim2):
    return wrapped_dim(dim1, self.dim() + 1), wrapped_dim(dim2, self.dim() + 1)


def diag_embed(self, offset=0, dim1=-2, dim2=-1, *, out=None):
    """``self``'s last dim written on the diagonal ``offset`` of two new dims (zeros elsewhere)."""
    dim1, dim2 = _embed_dims(self, dim1, dim2)
    if out is None:
        out = torch.empty(_embedded_shape(self, offset, dim1, dim2), dtype=self.dtype, device=self.device)
    return _onto_diagonal(self, offset, dim1, dim2, out)


def _diag_embed_unsupported(self, offset=0, dim1=-2, dim2=-1, *, out=None):
    dim1, dim2 = _embed_dims(self, dim1, dim2)
    if self.dim() == 0 or dim1 is None or dim2 is None or dim1 == dim2:
        return "invalid dims"
    return dtype_reason(self) or out_reason(out, _embedded_shape(self, offset, dim1, dim2), self.dtype, self)


def diagonal_backward(grad_output, input_sizes, offset, dim1, dim2, *, out=None):
    """Zeros of ``input_sizes`` with ``grad_output`` on the diagonal that ``diagonal`` read."""
    rank = len(input_sizes)
    dim1, dim2 = wrapped_dim(dim1, rank), wrapped_dim(dim2, rank)
    if out is None:
        out = torch.empty(list(input_sizes), dtype=grad_output.dtype, device=grad_output.device)
    return _onto_diagonal(grad_output, offset, dim1, dim2, out)


def _diagonal_backward_unsupported(grad_output, input_sizes, offset, dim1, dim2, *, out=None):
    rank = len(input_sizes)
    dim1, dim2 = wrapped_dim(dim1, rank), wrapped_dim(dim2, rank)
    if rank < 2 or dim1 is None or dim2 is None or dim1 == dim2 or min(input_sizes) < 0:
        return "invalid dims or sizes"
    expected = [s for d, s in enumerate(input_sizes) if d not in (dim1, dim2)]
    expected.append(_diagonal_length(input_sizes, offset, dim1, dim2))
    if list(grad_output.shape) != expected:
        return "grad_output is not shaped as the diagonal"
    return dtype_reason(grad_output) or out_reason(out, input_sizes, grad_output.dtype, grad_output)


ATEN = (*aten_rows("tril", tril, _triangle_unsupported, ("", "out"), tril_, _triangle_inplace_unsupported),
        *aten_rows("triu", triu, _triangle_unsupported, ("", "out"), triu_, _triangle_inplace_unsupported),
        *aten_rows("diag_embed", diag_embed, _diag_embed_unsupported, ("", "out")),
        *aten_rows("diagonal_backward", diagonal_backward, _diagonal_backward_unsupported, ("", "out")))
