"""The reduction kernels and the simple folds: sum, prod, mean, all/any, count_nonzero.

Every reduction of the family (here, ``extremes`` and ``statistics``) is a few
``@triton.jit`` hooks for ``codegen.reduction.Reduction``, which reads any dims
of the input in place as [A, N, K] and splits long reductions across programs.
The hooks and the ``Reduction`` objects all live here, in definition order: the
generated kernels import their hooks from this module, and the order of the
hooks is part of the reduction tuners' source hash. The extremum, arg and
aminmax combines propagate NaN as PyTorch does, and the arg combines keep the
first index among equals (the first NaN wins). Variance merges per-tile moments
(Chan et al.), logsumexp per-tile maxima and shifted sums: both read the input
once and stay stable for long rows.
"""

import numpy
import torch
import triton
import triton.language as tl

from ...codegen import tl_math
from ...codegen.reduction import Reduction, interpreted_reduce, normalize_dims
from ...codegen.tl_math import INTERPRETED
from ...utils.dtypes import FLOAT_DTYPES, accumulator
from .common import SUPPORTED, load_dtype, reason, rows_sharing_check, run

__all__ = ["sum", "sum_dim", "mean", "mean_dim", "prod", "prod_dim", "all", "all_dims", "any", "any_dims",
           "count_nonzero"]

_pow = tl_math.device_math("pow", numpy.power)


# Hooks: lift(x, index, param) -> state, combine(*a, *b) -> state, finish(*state, count, param) -> outputs.

@triton.jit
def _value(x, index, param):
    return x


@triton.jit
def _abs(x, index, param):
    return tl.abs(x)


@triton.jit
def _square(x, index, param):
    return x * x


@triton.jit
def _abs_pow(x, index, param):
    return _pow(tl.abs(x), tl.cast(param, x.dtype))


@triton.jit
def _nonzero(x, index, param):
    return x != 0


@triton.jit
def _with_index(x, index, param):
    return x, index


@triton.jit
def _twice(x, index, param):
    return x, x


@triton.jit
def _add(a, b):
    return a + b


@triton.jit
def _mul(a, b):
    return a * b


@triton.jit
def _max(a, b):
    # One max.NaN per element on the GPU; triton 3.5-3.6 compute half types in fp32.
    return tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL).to(a.dtype)


@triton.jit
def _min(a, b):
    return tl.minimum(a, b, propagate_nan=tl.PropagateNan.ALL).to(a.dtype)


@triton.jit
def _min_max(low_a, high_a, low_b, high_b):
    return _min(low_a, low_b), _max(high_a, high_b)


@triton.jit
def _first_extreme(a_wins, va, ia, vb, ib):
    """(value, index) of a if it wins, ties with a lower index, or is the first NaN."""
    keep = a_wins | ((va == vb) & (ia < ib)) | ((va != va) & ((vb == vb) | (ia < ib)))
    return tl.where(keep, va, vb), tl.where(keep, ia, ib)


@triton.jit
def _later_extreme(v_wins_or_nan, s, si, v, vi):
    """(value, index) of a lane's running extreme s after element v, which comes later in
    the row. v takes over if it wins or is NaN (``v_wins_or_nan``: one unordered compare)
    while s is not NaN (the first NaN stays)."""
    take = v_wins_or_nan & (s == s)
    return tl.where(take, v, s), tl.where(take, vi, si)


@triton.jit
def _argmax_step(s, si, v, vi):
    return _later_extreme(~(v <= s), s, si, v, vi)


@triton.jit
def _argmin_step(s, si, v, vi):
    return _later_extreme(~(v >= s), s, si, v, vi)


if INTERPRETED:
    # The interpreter runs a custom combine once per element; interpreted_reduce vectorises it.
    def _max_along(values, axis):
        return interpreted_reduce(_max, axis, values)

    def _min_along(values, axis):
        return interpreted_reduce(_min, axis, values)
else:
    @triton.jit
    def _max_along(values, axis):
        """The largest along ``axis``, NaN where any is NaN (``tl.max`` skips NaN)."""
        return tl.reduce(values, axis, _max)

    @triton.jit
    def _min_along(values, axis):
        return tl.reduce(values, axis, _min)


@triton.jit
def _first_of(values, indices, extreme, no_index, axis):
    """(extreme, index) along ``axis`` of the first lane holding ``extreme`` (NaN where a
    lane is: then the first NaN): two trees of one value each, where a tree of
    ``_first_extreme`` carries pairs through five compares."""
    take = (values == tl.expand_dims(extreme, axis)) | (values != values)
    return extreme, tl.min(tl.where(take, indices, no_index), axis)


@triton.jit
def _argmax_tile(values, indices, lowest, no_index, axis):
    return _first_of(values, indices, _max_along(values, axis), no_index, axis)


@triton.jit
def _argmin_tile(values, indices, highest, no_index, axis):
    return _first_of(values, indices, _min_along(values, axis), no_index, axis)


@triton.jit
def _argmax_combine(va, ia, vb, ib):
    return _first_extreme(va > vb, va, ia, vb, ib)


@triton.jit
def _argmin_combine(va, ia, vb, ib):
    return _first_extreme(va < vb, va, ia, vb, ib)


@triton.jit
def _keep(state, count, param):
    return state


@triton.jit
def _keep_both(a, b, count, param):
    return a, b


@triton.jit
def _index(value, index, count, param):
    return index


@triton.jit
def _is_nonzero(state, count, param):
    return state != 0


@triton.jit
def _mean(total, count, param):
    return total / count


@triton.jit
def _sqrt_rn(x):
    # tl.sqrt is approximate in fp32; fp64's is exact (and sqrt_rn takes fp32 only).
    if x.dtype == tl.float64:
        return tl.sqrt(x)
    else:
        return tl.sqrt_rn(x)


@triton.jit
def _sqrt(total, count, param):
    return _sqrt_rn(total)


@triton.jit
def _root(total, count, param):
    # 1 / p in the state's type: an fp64 norm needs more than fp32's reciprocal.
    return _pow(total, tl.cast(1.0, total.dtype) / tl.cast(param, total.dtype))


@triton.jit
def _moments(x, mask, axis):
    """Count, mean and summed squared deviations of a tile's rows (centred in registers)."""
    count = tl.sum(mask.to(x.dtype), axis)
    mean = tl.sum(tl.where(mask, x, 0), axis) / tl.maximum(count, 1)
    deviation = tl.where(mask, x - tl.expand_dims(mean, axis), 0)
    return count, mean, tl.sum(deviation * deviation, axis)


@triton.jit
def _merge_moments(count_a, mean_a, m2_a, count_b, mean_b, m2_b):
    count = count_a + count_b
    share_b = tl.where(count > 0, count_b / tl.maximum(count, 1), 0)
    delta = mean_b - mean_a
    return count, mean_a + delta * share_b, m2_a + m2_b + delta * delta * count_a * share_b


@triton.jit
def _variance(count, mean, m2, n, correction):
    return m2 / (n - tl.cast(correction, m2.dtype))


@triton.jit
def _deviation(count, mean, m2, n, correction):
    return _sqrt_rn(_variance(count, mean, m2, n, correction))


@triton.jit
def _variance_mean(count, mean, m2, n, correction):
    return _variance(count, mean, m2, n, correction), mean


@triton.jit
def _deviation_mean(count, mean, m2, n, correction):
    return _deviation(count, mean, m2, n, correction), mean


@triton.jit
def _finite_or_zero(top):
    # A sum of exps is kept relative to its maximum, or to 0 when that is infinite.
    return tl.where(tl.abs(top) == float("inf"), 0, top)


@triton.jit
def _exp_sums(x, mask, axis):
    top = tl.max(tl.where(mask, x, float("-inf")), axis)  # a NaN makes the sum NaN regardless
    shifted = x - tl.expand_dims(_finite_or_zero(top), axis)
    return top, tl.sum(tl.where(mask, tl.exp(shifted), 0), axis)


@triton.jit
def _rescale(top, total, new_top):
    return tl.where(top == new_top, total, total * tl.exp(top - new_top))


@triton.jit
def _merge_exp_sums(top_a, total_a, top_b, total_b):
    top = _max(top_a, top_b)
    return top, _rescale(top_a, total_a, top) + _rescale(top_b, total_b, top)


@triton.jit
def _log_sum_exp(top, total, count, param):
    return tl.log(total) + _finite_or_zero(top)


# Every reduction of the family, in this order (the order their hooks first appear in is part of the
# tuners' source hash). The one-value folds, from (name, combine, finish, lift):
SUM, PROD, MEAN, AMAX, AMIN, ALL, ANY, COUNT_NONZERO, ABS_SUM, ABS_MAX, ABS_MIN, EUCLIDEAN, P_NORM = (
    Reduction(name, combine, finish, lift=lift) for name, combine, finish, lift in (
        ("sum", _add, _keep, _value), ("prod", _mul, _keep, _value), ("mean", _add, _mean, _value),
        ("amax", _max, _keep, _value), ("amin", _min, _keep, _value),
        ("all", _min, _is_nonzero, _nonzero), ("any", _max, _is_nonzero, _nonzero),
        ("count_nonzero", _add, _keep, _nonzero),
        ("abs_sum", _add, _keep, _abs), ("abs_max", _max, _keep, _abs), ("abs_min", _min, _keep, _abs),
        ("euclidean", _add, _sqrt, _square), ("p_norm", _add, _root, _abs_pow)))
_LARGEST = dict(combine=_argmax_combine, lift=_with_index, indexed=True, step=_argmax_step, reduce_tile=_argmax_tile)
_SMALLEST = dict(combine=_argmin_combine, lift=_with_index, indexed=True, step=_argmin_step, reduce_tile=_argmin_tile)
ARGMAX = Reduction("argmax", finish=_index, **_LARGEST)
ARGMIN = Reduction("argmin", finish=_index, **_SMALLEST)
MAX_DIM = Reduction("max_dim", finish=_keep_both, outputs=2, **_LARGEST)
MIN_DIM = Reduction("min_dim", finish=_keep_both, outputs=2, **_SMALLEST)
AMINMAX = Reduction("aminmax", _min_max, _keep_both, outputs=2, lift=_twice)
VAR = Reduction("var", _merge_moments, _variance, tile_stats=_moments)
STD = Reduction("std", _merge_moments, _deviation, tile_stats=_moments)
VAR_MEAN = Reduction("var_mean", _merge_moments, _variance_mean, outputs=2, tile_stats=_moments)
STD_MEAN = Reduction("std_mean", _merge_moments, _deviation_mean, outputs=2, tile_stats=_moments)
LOGSUMEXP = Reduction("logsumexp", _merge_exp_sums, _log_sum_exp, tile_stats=_exp_sums)


def _summed_dtype(self, dtype, out=None):
    if dtype is not None:
        return dtype
    if out is not None:
        return out.dtype
    return self.dtype if self.dtype.is_floating_point else torch.int64


# sum, prod, mean

def _fold(reduction, identity, self, dim, keepdim, dtype, out, result_dtype):
    """A one-value reduction accumulated in ``result_dtype``'s accumulator."""
    dims = normalize_dims(dim, self.dim())
    return run(reduction, self, dims, keepdim, [result_dtype], [out], [accumulator(result_dtype)], [identity],
               cast=load_dtype(self, dtype))[0]


def _dtype_argument_reason(dtype):
    if dtype is not None and (dtype not in SUPPORTED or dtype == torch.bool):
        return f"dtype= {dtype} is not supported"
    return None


def sum_dim(self, dim=None, keepdim=False, *, dtype=None, out=None):
    """Sum over ``dim`` (an int, a list, or None/[] for every dim)."""
    return _fold(SUM, 0, self, dim, keepdim, dtype, out, _summed_dtype(self, dtype, out))


def sum(self, *, dtype=None, out=None):
    return sum_dim(self, None, False, dtype=dtype, out=out)


def _sum_unsupported(self, dim=None, keepdim=False, *, dtype=None, out=None):
    if _dtype_argument_reason(dtype):
        return _dtype_argument_reason(dtype)
    if out is not None:
        if dtype is not None and out.dtype != dtype:
            return "out dtype differs from dtype="
        if out.dtype not in SUPPORTED or out.dtype == torch.bool:
            return f"out dtype {out.dtype} is not supported"
    return reason(self, dim, keepdim, [out], [None if out is None else out.dtype])


def _sum_all_unsupported(self, *, dtype=None, out=None):
    return _sum_unsupported(self, None, False, dtype=dtype, out=out)


def prod_dim(self, dim, keepdim=False, *, dtype=None, out=None):
    return _fold(PROD, 1, self, dim, keepdim, dtype, out, _summed_dtype(self, dtype))


def prod(self, *, dtype=None, out=None):
    return prod_dim(self, None, False, dtype=dtype, out=out)


def _prod_unsupported(self, dim=None, keepdim=False, *, dtype=None, out=None):
    if _dtype_argument_reason(dtype):
        return _dtype_argument_reason(dtype)
    return reason(self, dim, keepdim, [out], [_summed_dtype(self, dtype)])


def _prod_all_unsupported(self, *, dtype=None, out=None):
    return _prod_unsupported(self, None, False, dtype=dtype, out=out)


def mean_dim(self, dim=None, keepdim=False, *, dtype=None, out=None):
    return _fold(MEAN, 0, self, dim, keepdim, dtype, out, dtype or self.dtype)


def mean(self, *, dtype=None, out=None):
    return mean_dim(self, None, False, dtype=dtype, out=out)


def _mean_unsupported(self, dim=None, keepdim=False, *, dtype=None, out=None):
    if (dtype or self.dtype) not in FLOAT_DTYPES or (dtype is not None and dtype not in SUPPORTED):
        return "mean needs a floating result"
    return reason(self, dim, keepdim, [out], [dtype or self.dtype])


def _mean_all_unsupported(self, *, dtype=None, out=None):
    return _mean_unsupported(self, None, False, dtype=dtype, out=out)


# all, any, count_nonzero

def _logical_dtype(self):
    return torch.uint8 if self.dtype == torch.uint8 else torch.bool


def all_dims(self, dim=None, keepdim=False, *, out=None):
    dims = normalize_dims(dim, self.dim(), empty_means_all=False)
    return run(ALL, self, dims, keepdim, [_logical_dtype(self)], [out], [torch.int32], [1])[0]


def any_dims(self, dim=None, keepdim=False, *, out=None):
    dims = normalize_dims(dim, self.dim(), empty_means_all=False)
    return run(ANY, self, dims, keepdim, [_logical_dtype(self)], [out], [torch.int32], [0])[0]


def all(self, *, out=None):
    return all_dims(self, out=out)


def any(self, *, out=None):
    return any_dims(self, out=out)


def _logical_unsupported(self, dim=None, keepdim=False, *, out=None):
    if isinstance(dim, (list, tuple)) and not dim:
        return "no dims"
    return reason(self, dim, keepdim, [out], [_logical_dtype(self)])


def _logical_all_unsupported(self, *, out=None):
    return _logical_unsupported(self, out=out)


def count_nonzero(self, dim=None, *, out=None):
    dims = normalize_dims(dim, self.dim())
    return run(COUNT_NONZERO, self, dims, False, [torch.int64], [out], [torch.int64], [0])[0]


def _count_nonzero_unsupported(self, dim=None, *, out=None):
    return reason(self, dim, False, [out], [torch.int64])


ATEN = (
    rows_sharing_check(_sum_all_unsupported, (sum, "sum", "sum.out"))
    + rows_sharing_check(_sum_unsupported, (sum_dim, "sum.dim_IntList", "sum.IntList_out"))
    + rows_sharing_check(_prod_all_unsupported, (prod, "prod", "prod.out"))
    + rows_sharing_check(_prod_unsupported, (prod_dim, "prod.dim_int", "prod.int_out"))
    + rows_sharing_check(_mean_all_unsupported, (mean, "mean", "mean.dtype_out"))
    + rows_sharing_check(_mean_unsupported, (mean_dim, "mean.dim", "mean.out"))
    + rows_sharing_check(_logical_all_unsupported, (all, "all", "all.all_out"))
    + rows_sharing_check(_logical_unsupported, (all_dims, "all.dim", "all.out", "all.dims", "all.dims_out"))
    + rows_sharing_check(_logical_all_unsupported, (any, "any", "any.all_out"))
    + rows_sharing_check(_logical_unsupported, (any_dims, "any.dim", "any.out", "any.dims", "any.dims_out"))
    + rows_sharing_check(_count_nonzero_unsupported, (count_nonzero, "count_nonzero", "count_nonzero.out",
                                             "count_nonzero.dim_IntList", "count_nonzero.dim_IntList_out"))
)
