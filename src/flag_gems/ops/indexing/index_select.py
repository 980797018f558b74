"""``index_select`` and its inverse ``index_add`` (their backward passes are each other's).

Both see ``self`` through a 1-d ``index`` along ``dim``: the walk runs over the result (or
over ``source``) with the index read once per row, constant along the other dims.
``index_add`` accumulates with atomic adds (half and narrow integer dtypes through a wider
buffer, see ``common.update``), so duplicate indices add up.
"""

import torch

from ...dispatch import aten_rows
from .common import (index_reason, inplace_reason, kernel_number, operands_reason, out_reason, sizes_of, update,
                     without, wrap_dim)
from .walk import Index, walk

__all__ = ["index_select", "index_add", "index_add_"]


def _along(shape, dim, index):
    """The strides of a 1-d (or 0-d) ``index`` read along ``dim`` of ``shape``."""
    strides = [0] * len(shape)
    if index.dim():
        strides[dim] = index.stride(0)
    return strides


def _select_shape(self, dim, index):
    if self.dim() == 0:
        return ()
    shape = list(self.shape)
    shape[dim] = index.numel()
    return tuple(shape)


def index_select(self, dim, index, *, out=None):
    """``self`` at ``index`` along ``dim``."""
    dim = wrap_dim(dim, self.dim())
    if out is None:
        out = torch.empty(_select_shape(self, dim, index), dtype=self.dtype, device=self.device)
    shape, out_strides = sizes_of(out)
    self_shape, self_strides = sizes_of(self)
    walk(shape, out, out_strides,
         (Index(index, _along(shape, dim, index), self_strides[dim], self_shape[dim]),),
         src=self, src_strides=without(self_strides, dim))
    return out


def _index_select_unsupported(self, dim, index, *, out=None):
    reason = operands_reason(self)
    if reason is not None:
        return reason
    dim = wrap_dim(dim, self.dim())
    if dim is None:
        return "invalid dim"
    if not isinstance(index, torch.Tensor) or index.dim() > 1:
        return "index is not a 1-d tensor"
    if self.dim() == 0 and index.numel() != 1:
        return "a 0-d self takes one index"
    reason = index_reason(index, sizes_of(self)[0][dim], self.device)
    if reason is None and out is not None:
        return out_reason(out, _select_shape(self, dim, index), self.dtype, self, index)
    return reason


def _add_into(target, dim, index, source, alpha):
    """The walk of ``target[index[i]] += alpha * source[i]`` along ``dim``."""
    shape, source_strides = sizes_of(source)
    target_shape, target_strides = sizes_of(target)
    walk(shape, target, without(target_strides, dim),
         (Index(index, _along(shape, dim, index), target_strides[dim], target_shape[dim]),),
         src=source, src_strides=source_strides, scatter=True, write="atomic_add",
         alpha=None if alpha == 1 else kernel_number(alpha, target.dtype))


def index_add(self, dim, index, source, *, alpha=1, out=None):
    """``self`` with ``alpha * source[i]`` added at ``index[i]`` along ``dim``."""
    dim = wrap_dim(dim, self.dim())
    result = out if out is not None else torch.empty(self.shape, dtype=self.dtype, device=self.device)
    return update(result, self, lambda target: _add_into(target, dim, index, source, alpha))


def index_add_(self, dim, index, source, *, alpha=1):
    dim = wrap_dim(dim, self.dim())
    return update(self, None, lambda target: _add_into(target, dim, index, source, alpha))


def _index_add_common(self, dim, index, source, alpha):
    reason = operands_reason(self, source)
    if reason is not None:
        return reason
    dim = wrap_dim(dim, self.dim())
    if dim is None or source.dtype != self.dtype:
        return "invalid dim, or source of another dtype"
    if not isinstance(index, torch.Tensor) or index.dim() > 1:
        return "index is not a 1-d tensor"
    self_shape, source_shape = sizes_of(self)[0], sizes_of(source)[0]
    if self.dim() != source.dim() or source_shape[dim] != index.numel() or any(
            a != b for d, (a, b) in enumerate(zip(self_shape, source_shape)) if d != dim):
        return "source's shape does not match self's and index's"
    if alpha != 1 and (isinstance(alpha, float) and not self.dtype.is_floating_point
                       or kernel_number(alpha, self.dtype) is None):
        return "alpha that the kernel cannot take"
    return index_reason(index, self_shape[dim], self.device)


def _index_add_unsupported(self, dim, index, source, *, alpha=1, out=None):
    reason = _index_add_common(self, dim, index, source, alpha)
    if reason is None and out is not None:
        return out_reason(out, self.shape, self.dtype, self, index, source)
    return reason


def _index_add_inplace_unsupported(self, dim, index, source, *, alpha=1):
    return _index_add_common(self, dim, index, source, alpha) or inplace_reason(self, index, source)


ATEN = (
    *aten_rows("index_select", index_select, _index_select_unsupported, ("", "out")),
    *aten_rows("index_add", index_add, _index_add_unsupported, ("", "out"), index_add_, _index_add_inplace_unsupported),
)
