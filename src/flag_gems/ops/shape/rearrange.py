"""flip, roll, repeat and pixel_unshuffle: gathers whose source index follows from the
output's index dim by dim. A flip reads its dims with negated strides, a roll wraps
them, a repeat reads each dim as (copy, position) with the copy's stride 0, and
pixel_unshuffle reads the input's rows and columns regrouped into
(channel, row phase, column phase, row, column)."""

import torch

from ...codegen.launch import layout_key, planned
from ...dispatch import aten_rows
from .common import dtype_reason, out_reason, wrapped_dim, wrapped_dims
from .gather import Dim, GatherPlan, one_source
from .gather_kernels import WRAP

__all__ = ["flip", "roll", "repeat", "pixel_unshuffle"]

_plans = {}


def _run(key, make_plan, out, *sources):
    """``out`` written by the plan of this call layout."""
    if out.numel():
        planned(_plans, (*key, *map(layout_key, (out, *sources))), make_plan)(out, sources)
    return out


def _flip_plan(self, dims, out):
    strides, base = list(self.stride()), 0
    for d in dims:
        base += (self.shape[d] - 1) * strides[d]
        strides[d] = -strides[d]
    return GatherPlan(one_source(self.shape, strides, out.stride()), bases=(base,))


def flip(self, dims, *, out=None):
    """``self`` with the order of its elements along ``dims`` reversed."""
    dims = tuple(wrapped_dims(dims, self.dim())) if self.dim() else ()
    result = torch.empty_like(self) if out is None else out
    return _run(("flip", dims), lambda: _flip_plan(self, dims, result), result, self)


def _flip_unsupported(self, dims, *, out=None):
    if wrapped_dims(dims, self.dim()) is None:
        return "invalid or repeated dims"
    return dtype_reason(self) or out_reason(out, self.shape, self.dtype, self)


def _roll_shifts(self, shifts, dims):
    """{dim: shift in [1, size)} of a roll over ``dims`` (shifts of one dim add up)."""
    total = {}
    for shift, dim in zip(shifts, dims):
        dim = wrapped_dim(dim, self.dim())
        total[dim] = total.get(dim, 0) + shift
    return {d: s % self.shape[d] for d, s in sorted(total.items()) if s % self.shape[d]}


def _roll_plan(self, shifts, out):
    modes = {d: (WRAP, self.shape[d], shift) for d, shift in shifts.items()}
    return GatherPlan(one_source(self.shape, self.stride(), out.stride(), modes))


def roll(self, shifts, dims=(), *, out=None):
    """``self`` rotated by ``shifts`` along ``dims`` (along the flattened tensor without dims)."""
    result = torch.empty(self.shape, dtype=self.dtype, device=self.device) if out is None else out
    if not result.numel():
        return result
    if dims:
        by_dim = _roll_shifts(self, shifts, dims)
        return _run(("roll", tuple(by_dim.items())), lambda: _roll_plan(self, by_dim, result), result, self)
    numel = self.numel()  # a flattened roll: self and the result are contiguous
    modes = {0: (WRAP, numel, shifts[0] % numel)}
    return _run(("roll", shifts[0] % numel), lambda: GatherPlan(one_source((numel,), (1,), (1,), modes)),
                result, self)


def _roll_unsupported(self, shifts, dims=(), *, out=None):
    if dims:
        if len(shifts) != len(dims) or any(wrapped_dim(d, self.dim()) is None for d in dims) or not self.dim():
            return "shifts and dims do not align"
    elif len(shifts) != 1:
        return "a flattened roll takes one shift"
    elif not self.is_contiguous() or (out is not None and not out.is_contiguous()):
        return "the flattened roll of a non-contiguous tensor (native flattens it first)"
    return dtype_reason(self) or out_reason(out, self.shape, self.dtype, self)


def _repeat_plan(self, repeats, out):
    pad = len(repeats) - self.dim()
    sizes, strides = [1] * pad + list(self.shape), [0] * pad + list(self.stride())
    dims = []
    for times, size, stride, out_stride in zip(repeats, sizes, strides, out.stride()):
        dims += [Dim((times,), (0,), out_stride * size), Dim((size,), (stride,), out_stride)]
    return GatherPlan(dims)


def _repeated_shape(self, repeats):
    sizes = [1] * (len(repeats) - self.dim()) + list(self.shape)
    return [times * size for times, size in zip(repeats, sizes)]


def repeat(self, repeats, *, out=None):
    """``self`` tiled ``repeats`` times along each dim (leading repeats add dims)."""
    repeats = tuple(repeats)
    result = torch.empty(_repeated_shape(self, repeats), dtype=self.dtype, device=self.device) if out is None else out
    return _run(("repeat", repeats), lambda: _repeat_plan(self, repeats, result), result, self)


def _repeat_unsupported(self, repeats, *, out=None):
    if len(repeats) < self.dim() or any(times < 0 for times in repeats):
        return "fewer repeats than dims, or a negative one"
    return dtype_reason(self) or out_reason(out, _repeated_shape(self, repeats), self.dtype, self)


def _unshuffled_shape(self, factor):
    *batch, channels, height, width = self.shape
    return [*batch, channels * factor * factor, height // factor, width // factor]


def _unshuffle_plan(self, factor, out):
    *batch, channels, height, width = self.shape
    *batch_strides, channel_stride, row_stride, col_stride = self.stride()
    *out_batch_strides, out_channel, out_row, out_col = out.stride()
    dims = [Dim((size,), (stride,), out_stride)
            for size, stride, out_stride in zip(batch, batch_strides, out_batch_strides)]
    dims += [Dim((channels,), (channel_stride,), out_channel * factor * factor),
             Dim((factor,), (row_stride,), out_channel * factor),
             Dim((factor,), (col_stride,), out_channel),
             Dim((height // factor,), (row_stride * factor,), out_row),
             Dim((width // factor,), (col_stride * factor,), out_col)]
    return GatherPlan(dims)


def pixel_unshuffle(self, downscale_factor, *, out=None):
    """Each ``downscale_factor`` x ``downscale_factor`` block of pixels moved into channels."""
    factor = downscale_factor
    result = torch.empty(_unshuffled_shape(self, factor), dtype=self.dtype, device=self.device) if out is None \
        else out
    return _run(("pixel_unshuffle", factor), lambda: _unshuffle_plan(self, factor, result), result, self)


def _pixel_unshuffle_unsupported(self, downscale_factor, *, out=None):
    factor = downscale_factor
    if self.dim() < 3 or factor <= 0 or self.shape[-1] % factor or self.shape[-2] % factor:
        return "invalid shape or factor"
    if not self.numel():
        return "PyTorch's kernel returns an empty input's shape"
    return dtype_reason(self) or out_reason(out, _unshuffled_shape(self, factor), self.dtype, self)


ATEN = (*aten_rows("flip", flip, _flip_unsupported, ("", "out")),
        *aten_rows("roll", roll, _roll_unsupported, ("", "out")),
        *aten_rows("repeat", repeat, _repeat_unsupported, ("", "out")),
        *aten_rows("pixel_unshuffle", pixel_unshuffle, _pixel_unshuffle_unsupported, ("", "out")))
