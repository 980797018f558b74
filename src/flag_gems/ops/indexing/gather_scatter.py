"""``gather`` and the scatters: ``scatter`` (a tensor or a number, with or without the old
``reduce=``), ``scatter_add`` and ``scatter_reduce`` (sum, prod, mean, amax, amin, with or
without self's values), each with its in-place and ``out=`` forms.

Both walk the index's shape: ``gather`` reads ``self`` moved by the index along ``dim``, a
scatter writes there. A plain scatter stores (with duplicate indices one of the values wins,
as natively); reductions use atomic writes: add, max, min, and a compare-and-swap product,
through a wider buffer for half and narrow integer dtypes (``common.update``). Without
``include_self`` the scattered positions first take the reduction's identity; a mean also
counts the values each position receives and divides at the end. ``gather``'s backward
(CompositeImplicitAutograd) is a ``scatter_add`` on zeros.
"""

import torch

from ...dispatch import Row, aten_rows
from ...utils.dtypes import COMPUTE_DTYPE
from ..movement.copy import fill_
from .common import (MEAN, index_reason, inplace_reason, kernel_number, operands_reason, out_reason,
                     sizes_of, update, without, wrap_dim)
from .walk import Index, walk

__all__ = ["gather", "scatter", "scatter_", "scatter_add", "scatter_add_", "scatter_reduce", "scatter_reduce_"]

_WRITES = {"add": "atomic_add", "multiply": "atomic_mul", "sum": "atomic_add", "prod": "atomic_mul",
           "mean": "atomic_add", "amax": "atomic_max", "amin": "atomic_min"}
_OLD_REDUCTIONS = ("add", "multiply")  # scatter's reduce=
_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")  # scatter_reduce's


def _index_along(index, target, dim):
    """The walk's ``Index`` of a gather or scatter index into ``target`` along ``dim``."""
    shape, strides = sizes_of(target)
    return Index(index, sizes_of(index)[1], strides[dim], shape[dim])


def gather(self, dim, index, *, sparse_grad=False, out=None):
    """``out[i][j][k] = self[index[i][j][k]][j][k]`` (for dim 0), shaped as ``index``."""
    dim = wrap_dim(dim, self.dim())
    if out is None:
        out = torch.empty(index.shape, dtype=self.dtype, device=self.device)
    shape, out_strides = sizes_of(out)
    walk(shape, out, out_strides, (_index_along(index, self, dim),),
         src=self, src_strides=without(sizes_of(self)[1], dim))
    return out


def _shapes_reason(self, dim, index, src=None):
    """Why ``index`` (and ``src``) do not fit ``self`` for a gather or scatter along ``dim``."""
    dim = wrap_dim(dim, self.dim())
    if dim is None:
        return "invalid dim"
    if not isinstance(index, torch.Tensor):
        return "index is not a tensor"
    self_shape, index_shape = sizes_of(self)[0], sizes_of(index)[0]
    if len(index_shape) != len(self_shape) or any(
            i > s for d, (i, s) in enumerate(zip(index_shape, self_shape)) if d != dim):
        return "index does not fit self"
    if src is not None and (len(sizes_of(src)[0]) != len(index_shape)
                            or any(i > s for i, s in zip(index_shape, sizes_of(src)[0]))):
        return "index does not fit src"
    return index_reason(index, self_shape[dim], self.device)


def _gather_unsupported(self, dim, index, *, sparse_grad=False, out=None):
    reason = operands_reason(self) or _shapes_reason(self, dim, index)
    if reason is None and out is not None:
        return out_reason(out, index.shape, self.dtype, self, index)
    return reason


def _scatter_walk(target, dim, index, src, write):
    """``src`` (a tensor, or a number as the kernel takes it) written into ``target`` at
    ``index`` along ``dim``."""
    tensor = isinstance(src, torch.Tensor)
    walk(sizes_of(index)[0], target, without(sizes_of(target)[1], dim), (_index_along(index, target, dim),),
         src=src if tensor else None, src_strides=sizes_of(src)[1] if tensor else None,
         value=None if tensor else src, scatter=True, write=write)


def _identity(reduce, dtype):
    """What a reduction starts from where ``include_self`` is off."""
    if reduce in ("sum", "mean"):
        return 0
    if reduce == "prod":
        return 1
    if dtype.is_floating_point:
        return float("-inf") if reduce == "amax" else float("inf")
    info = torch.iinfo(dtype)
    return info.min if reduce == "amax" else info.max


def _scatter_into(result, initial, dim, index, src, reduce=None, include_self=True):
    """``result`` set to ``initial`` (None: it holds self already), then ``src`` scattered."""
    dim = wrap_dim(dim, result.dim())
    if not isinstance(src, torch.Tensor):
        src = kernel_number(src, result.dtype)  # converted as aten converts it to self's dtype

    def reduce_into(target):
        if reduce is None:
            _scatter_walk(target, dim, index, src, "store")
            return
        if not include_self:
            _scatter_walk(target, dim, index, _identity(reduce, target.dtype), "store")
        _scatter_walk(target, dim, index, src, _WRITES[reduce])
        if reduce == "mean":
            counts = fill_(torch.empty(target.shape, dtype=torch.int32, device=target.device), int(include_self))
            _scatter_walk(counts, dim, index, 1, "atomic_add")
            MEAN(target, COMPUTE_DTYPE[target.dtype], target, counts)

    return update(result, initial, reduce_into, atomic=reduce is not None)


def _fresh(self, out):
    """Where a functional scatter writes: ``out``, or a new contiguous tensor as aten's."""
    return out if out is not None else torch.empty(self.shape, dtype=self.dtype, device=self.device)


def scatter(self, dim, index, src, *, reduce=None, out=None):
    """``self`` with ``src`` (a tensor or a number) written at ``index`` along ``dim``."""
    return _scatter_into(_fresh(self, out), self, dim, index, src, reduce)


def scatter_(self, dim, index, src, *, reduce=None):
    return _scatter_into(self, None, dim, index, src, reduce)


def scatter_add(self, dim, index, src, *, out=None):
    return _scatter_into(_fresh(self, out), self, dim, index, src, "add")


def scatter_add_(self, dim, index, src):
    return _scatter_into(self, None, dim, index, src, "add")


def scatter_reduce(self, dim, index, src, reduce, *, include_self=True, out=None):
    return _scatter_into(_fresh(self, out), self, dim, index, src, reduce, include_self)


def scatter_reduce_(self, dim, index, src, reduce, *, include_self=True):
    return _scatter_into(self, None, dim, index, src, reduce, include_self)


def _scatter_reason(self, dim, index, src, reduce, reductions):
    """Why the kernels do not take this scatter (``src`` a tensor or a number), or None."""
    tensor = isinstance(src, torch.Tensor)
    reason = operands_reason(self, src) if tensor else operands_reason(self)
    if reason is not None:
        return reason
    if tensor and src.dtype != self.dtype:
        return "src of another dtype"
    if not tensor and kernel_number(src, self.dtype) is None:
        return f"value {src!r} that the kernel cannot take as {self.dtype}"
    if reduce is not None and reduce not in reductions:
        return f"reduction {reduce!r}"
    if reduce == "mean" and self.dtype == torch.bool:
        return "mean of bool"
    return _shapes_reason(self, dim, index, src if tensor else None)


def _out_of_place_unsupported(reductions, default):
    def unsupported(self, dim, index, src, reduce=default, *, include_self=True, out=None):
        reason = _scatter_reason(self, dim, index, src, reduce, reductions)
        if reason is None and out is not None:
            inputs = (self, index, src) if isinstance(src, torch.Tensor) else (self, index)
            return out_reason(out, self.shape, self.dtype, *inputs)
        return reason
    return unsupported


def _in_place_unsupported(reductions, default):
    def unsupported(self, dim, index, src, reduce=default, *, include_self=True):
        reason = _scatter_reason(self, dim, index, src, reduce, reductions)
        inputs = (index, src) if isinstance(src, torch.Tensor) else (index,)
        return reason or inplace_reason(self, *inputs)
    return unsupported


def _old_reduce_unsupported(check):
    """``scatter``'s condition, whose ``reduce`` is keyword-only."""
    def unsupported(self, dim, index, src, *, reduce=None, **out):
        return check(self, dim, index, src, reduce, **out)
    return unsupported


_scatter_unsupported = _old_reduce_unsupported(_out_of_place_unsupported(_OLD_REDUCTIONS, None))
_scatter_inplace_unsupported = _old_reduce_unsupported(_in_place_unsupported(_OLD_REDUCTIONS, None))

ATEN = (
    Row("gather", gather, _gather_unsupported),
    Row("gather.out", gather, _gather_unsupported),
    *aten_rows("scatter", scatter, _scatter_unsupported,
               ("src", "value", "reduce", "value_reduce", "src_out", "value_out", "reduce_out", "value_reduce_out"),
               scatter_, _scatter_inplace_unsupported),
    *aten_rows("scatter_add", scatter_add, _out_of_place_unsupported(_OLD_REDUCTIONS, "add"), ("", "out"),
               scatter_add_, _in_place_unsupported(_OLD_REDUCTIONS, "add")),
    *aten_rows("scatter_reduce", scatter_reduce, _out_of_place_unsupported(_REDUCTIONS, None), ("two", "two_out"),
               scatter_reduce_, _in_place_unsupported(_REDUCTIONS, None)),
)
