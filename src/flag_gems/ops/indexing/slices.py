"""Writes into one slice: ``select_scatter`` / ``slice_scatter`` (+out) copy ``self`` and
write ``src`` into the selected index or the strided slice of ``dim``; ``select_backward`` /
``slice_backward`` (+out), the gradients of ``select`` and of slicing, write the gradient
into zeros. The slice is a walk over ``src`` into the destination from the slice's first
element on, at the destination's strides (times ``step`` along ``dim``). ``src`` converts to
the destination's dtype, as the native ``copy_`` does.

All four are CompositeExplicitAutograd(NonFunctional) in aten: registering them on the
backend key replaces the native decomposition (a clone and a ``copy_`` into a view).
"""

import torch

from ...dispatch import aten_rows
from ..movement.copy import copy_, fill_
from .common import operands_reason, out_reason, wrap_dim
from .walk import walk

__all__ = ["select_scatter", "slice_scatter", "select_backward", "slice_backward"]

_INT64_MAX = 2**63 - 1


def _slice_range(size, start, end, step):
    """(first, length) of ``start:end:step`` over ``size`` elements, clamped as aten's slice."""
    start = 0 if start is None else start
    end = _INT64_MAX if end is None else end
    start, end = start + size if start < 0 else start, end + size if end < 0 else end
    start = min(max(start, 0), size)
    end = min(max(end, start), size)
    return start, -(-(end - start) // step)


def _write(dest, src, dim, first, step=None):
    """``src`` into ``dest``'s index ``first`` of ``dim`` (``step`` None: a selected index,
    which ``src`` lacks), else into ``first::step``."""
    strides = list(dest.stride())
    offset = first * strides[dim]
    if step is None:
        del strides[dim]
    else:
        strides[dim] *= step
    walk(src.shape, dest, strides, (), src=src, src_strides=src.stride(), dst_offset=offset)
    return dest


def _copy_of(self, out):
    """``out`` (or a tensor laid out as ``self``, as a clone) holding ``self``."""
    return copy_(torch.empty_like(self) if out is None else out, self)


def _zeros(sizes, like, out):
    """``out`` (or a contiguous tensor of ``sizes``, ``like``'s dtype and device) zeroed."""
    return fill_(torch.empty(sizes, dtype=like.dtype, device=like.device) if out is None else out, 0)


def select_scatter(self, src, dim, index, *, out=None):
    dim = wrap_dim(dim, self.dim())
    return _write(_copy_of(self, out), src, dim, index % self.shape[dim])


def slice_scatter(self, src, dim=0, start=None, end=None, step=1, *, out=None):
    dim = wrap_dim(dim, self.dim())
    first, _ = _slice_range(self.shape[dim], start, end, step)
    return _write(_copy_of(self, out), src, dim, first, step)


def select_backward(grad_output, input_sizes, dim, index, *, out=None):
    dim = wrap_dim(dim, len(input_sizes))
    return _write(_zeros(input_sizes, grad_output, out), grad_output, dim, index % input_sizes[dim])


def slice_backward(grad_output, input_sizes, dim, start, end, step, *, out=None):
    dim = wrap_dim(dim, len(input_sizes))
    first, _ = _slice_range(input_sizes[dim], start, end, step)
    return _write(_zeros(input_sizes, grad_output, out), grad_output, dim, first, step)


def _target_reason(shape, dtype, src, dim, index=None, start=None, end=None, step=None):
    """Why ``src`` cannot be written at a ``dim`` slice of a ``shape`` tensor of ``dtype``."""
    if len(shape) == 0 or wrap_dim(dim, len(shape)) is None:
        return "a 0-d destination or an invalid dim"
    dim = wrap_dim(dim, len(shape))
    slice_shape = list(shape)
    if step is None:
        if not isinstance(index, int) or not -shape[dim] <= index < shape[dim]:
            return "index out of range"
        del slice_shape[dim]
    else:
        if not all(isinstance(v, int) or v is None for v in (start, end)) or not isinstance(step, int) or step < 1:
            return "start, end or step that aten refuses"
        slice_shape[dim] = _slice_range(shape[dim], start, end, step)[1]
    if list(src.shape) != slice_shape:
        return "src does not match the slice"
    if src.dtype == torch.float64 and dtype in (torch.float16, torch.bfloat16):
        return "fp64 to a half type"  # Triton rounds twice (through fp32)
    return None


def _scatter_reason(self, src, dim, out, **where):
    reason = operands_reason(self, src) or _target_reason(self.shape, self.dtype, src, dim, **where)
    if reason is None and out is not None:
        return out_reason(out, self.shape, self.dtype, self, src)
    return reason


def _backward_reason(grad_output, input_sizes, dim, out, **where):
    if not all(isinstance(s, int) and s >= 0 for s in input_sizes):
        return "input_sizes are not sizes"
    reason = operands_reason(grad_output) or _target_reason(input_sizes, grad_output.dtype, grad_output, dim, **where)
    if reason is None and out is not None:
        return out_reason(out, torch.Size(input_sizes), grad_output.dtype, grad_output)
    return reason


def _select_scatter_unsupported(self, src, dim, index, *, out=None):
    return _scatter_reason(self, src, dim, out, index=index)


def _slice_scatter_unsupported(self, src, dim=0, start=None, end=None, step=1, *, out=None):
    return _scatter_reason(self, src, dim, out, start=start, end=end, step=step)


def _select_backward_unsupported(grad_output, input_sizes, dim, index, *, out=None):
    return _backward_reason(grad_output, input_sizes, dim, out, index=index)


def _slice_backward_unsupported(grad_output, input_sizes, dim, start, end, step, *, out=None):
    return _backward_reason(grad_output, input_sizes, dim, out, start=start, end=end, step=step)


ATEN = (
    *aten_rows("select_scatter", select_scatter, _select_scatter_unsupported, ("", "out")),
    *aten_rows("slice_scatter", slice_scatter, _slice_scatter_unsupported, ("", "out")),
    *aten_rows("select_backward", select_backward, _select_backward_unsupported, ("", "out")),
    *aten_rows("slice_backward", slice_backward, _slice_backward_unsupported, ("", "out")),
)
