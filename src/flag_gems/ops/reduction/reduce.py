"""Reductions: sum, mean, prod, amax/amin, max/min, argmax/argmin, aminmax,
var/std (and their _mean forms), norms, all/any, count_nonzero, logsumexp.

Each is a few ``@triton.jit`` hooks for ``codegen.reduction.Reduction``, which
reads any dims of the input in place as [A, N, K] and splits long reductions
across programs. The extremum, arg and aminmax combines propagate NaN as
PyTorch does, and the arg combines keep the first index among equals (the
first NaN wins). Variance merges per-tile moments (Chan et al.), logsumexp
per-tile maxima and shifted sums: both read the input once and stay stable
for long rows.
"""

import builtins
import math

import numpy
import torch
import triton
import triton.language as tl

from ... import runtime
from ...codegen.launch import fp32_exact
from ...codegen.reduction import Reduction, identity_extreme, interpreted_reduce, normalize_dims, reduced_shape, valid_dims
from ...dispatch import Row
from ...codegen import tl_math
from ...codegen.tl_math import INTERPRETED

__all__ = ["sum", "sum_dim", "mean", "mean_dim", "prod", "prod_dim", "amax", "amin", "max", "min", "max_dim",
           "min_dim", "argmax", "argmin", "aminmax", "var", "std", "var_mean", "std_mean", "linalg_vector_norm",
           "norm", "all", "all_dims", "any", "any_dims", "count_nonzero", "logsumexp"]

_SUPPORTED = runtime.supported_dtypes()
_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_INT32_MAX = 2**31 - 1
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


SUM = Reduction("sum", _add, _keep, lift=_value)
PROD = Reduction("prod", _mul, _keep, lift=_value)
MEAN = Reduction("mean", _add, _mean, lift=_value)
AMAX = Reduction("amax", _max, _keep, lift=_value)
AMIN = Reduction("amin", _min, _keep, lift=_value)
ALL = Reduction("all", _min, _is_nonzero, lift=_nonzero)
ANY = Reduction("any", _max, _is_nonzero, lift=_nonzero)
COUNT_NONZERO = Reduction("count_nonzero", _add, _keep, lift=_nonzero)
ABS_SUM = Reduction("abs_sum", _add, _keep, lift=_abs)
ABS_MAX = Reduction("abs_max", _max, _keep, lift=_abs)
ABS_MIN = Reduction("abs_min", _min, _keep, lift=_abs)
EUCLIDEAN = Reduction("euclidean", _add, _sqrt, lift=_square)
P_NORM = Reduction("p_norm", _add, _root, lift=_abs_pow)
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


# Host side: dtypes, shapes, out=.

def _accumulator(dtype):
    if dtype.is_floating_point:
        return torch.float64 if dtype == torch.float64 else torch.float32
    return torch.int64


def _extreme_state(dtype):
    """What extremes (and their indices) are kept in: any type holds them exactly, and half
    types compare two to a register on the GPU; the interpreter keeps them in fp32, as its
    bfloat16 arithmetic is wrong (DESIGN.md section 4)."""
    if dtype in (torch.float16, torch.bfloat16) and not INTERPRETED:
        return dtype
    return _accumulator(dtype)


def _load_dtype(self, dtype=None):
    """What the kernel converts loaded elements to: dtype= as PyTorch casts first, else
    the input's own type (half types read exactly in fp32)."""
    if dtype is not None:
        return dtype
    return torch.float32 if self.dtype in (torch.float16, torch.bfloat16) else self.dtype


def _reduced_count(self, dims):
    return math.prod(self.shape[d] for d in dims) if self.dim() else 1


def _index_dtype(n):
    return torch.int32 if n <= _INT32_MAX else torch.int64


def _run(reduction, self, dims, keepdim, result_dtypes, outs, states, identities, cast=None, param=0.0):
    """Results of ``reduction`` over ``dims``, written into ``outs`` (None or tensors) where given."""
    shape = reduced_shape(self.shape, dims, keepdim)
    results = [out if out is not None and out.is_contiguous() else torch.empty(shape, dtype=dtype, device=self.device)
               for dtype, out in zip(result_dtypes, outs)]
    reduction(self, dims, results, cast or _load_dtype(self), states, identities, param)
    for result, out in zip(results, outs):
        if out is not None and result is not out:
            out.copy_(result)
    return [result if out is None else out for result, out in zip(results, outs)]


def _reason(self, dim=None, keepdim=False, outs=(), expected=(), empty_means_all=True, dtypes=None):
    """None when the kernels take this call; ``outs`` must match ``expected`` dtypes exactly."""
    if self.dtype not in (dtypes or _SUPPORTED):
        return f"dtype {self.dtype} is not supported"
    if not valid_dims(dim, self.dim()):
        return "invalid dim"
    if builtins.any(o is not None for o in outs):
        dims = normalize_dims(dim, self.dim(), empty_means_all)
        shape = reduced_shape(self.shape, dims, keepdim)
        for out, dtype in zip(outs, expected):
            if out.dtype != dtype:
                return "out dtype differs"
            if out.device != self.device:
                return "out on another device"
            if list(out.shape) != shape:
                return "out needs resizing"
    return None


def _reason_nonempty(self, dim=None, keepdim=False, outs=(), expected=(), dtypes=None):
    """As ``_reason``, for reductions PyTorch refuses over no elements."""
    reason = _reason(self, dim, keepdim, outs, expected, dtypes=dtypes)
    if reason is None and _reduced_count(self, normalize_dims(dim, self.dim())) == 0:
        return "reduction over no elements"
    return reason


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
    return _run(reduction, self, dims, keepdim, [result_dtype], [out], [_accumulator(result_dtype)], [identity],
                cast=_load_dtype(self, dtype))[0]


def _dtype_argument_reason(dtype):
    if dtype is not None and (dtype not in _SUPPORTED or dtype == torch.bool):
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
        if out.dtype not in _SUPPORTED or out.dtype == torch.bool:
            return f"out dtype {out.dtype} is not supported"
    return _reason(self, dim, keepdim, [out], [None if out is None else out.dtype])


def _sum_all_unsupported(self, *, dtype=None, out=None):
    return _sum_unsupported(self, None, False, dtype=dtype, out=out)


def prod_dim(self, dim, keepdim=False, *, dtype=None, out=None):
    return _fold(PROD, 1, self, dim, keepdim, dtype, out, _summed_dtype(self, dtype))


def prod(self, *, dtype=None, out=None):
    return prod_dim(self, None, False, dtype=dtype, out=out)


def _prod_unsupported(self, dim=None, keepdim=False, *, dtype=None, out=None):
    if _dtype_argument_reason(dtype):
        return _dtype_argument_reason(dtype)
    return _reason(self, dim, keepdim, [out], [_summed_dtype(self, dtype)])


def _prod_all_unsupported(self, *, dtype=None, out=None):
    return _prod_unsupported(self, None, False, dtype=dtype, out=out)


def mean_dim(self, dim=None, keepdim=False, *, dtype=None, out=None):
    return _fold(MEAN, 0, self, dim, keepdim, dtype, out, dtype or self.dtype)


def mean(self, *, dtype=None, out=None):
    return mean_dim(self, None, False, dtype=dtype, out=out)


def _mean_unsupported(self, dim=None, keepdim=False, *, dtype=None, out=None):
    if (dtype or self.dtype) not in _FLOATS or (dtype is not None and dtype not in _SUPPORTED):
        return "mean needs a floating result"
    return _reason(self, dim, keepdim, [out], [dtype or self.dtype])


def _mean_all_unsupported(self, *, dtype=None, out=None):
    return _mean_unsupported(self, None, False, dtype=dtype, out=out)


# extrema and their indices

def _extreme(reduction, self, dim, keepdim, out, largest):
    dims = normalize_dims(dim, self.dim())
    acc = _extreme_state(self.dtype)
    return _run(reduction, self, dims, keepdim, [self.dtype], [out], [acc], [identity_extreme(acc, not largest)],
                cast=acc)[0]


def amax(self, dim=(), keepdim=False, *, out=None):
    return _extreme(AMAX, self, dim, keepdim, out, True)


def amin(self, dim=(), keepdim=False, *, out=None):
    return _extreme(AMIN, self, dim, keepdim, out, False)


def _amax_unsupported(self, dim=(), keepdim=False, *, out=None):
    return _reason_nonempty(self, dim, keepdim, [out], [self.dtype])


def max(self, *, out=None):
    return amax(self, out=out)


def min(self, *, out=None):
    return amin(self, out=out)


def _max_unsupported(self, *, out=None):
    return _reason_nonempty(self, None, False, [out], [self.dtype])


def _indexed(reduction, self, dim, keepdim, outs, largest, outputs):
    dims = normalize_dims(dim, self.dim())
    acc = _extreme_state(self.dtype)
    n = _reduced_count(self, dims)
    index = _index_dtype(n)
    identities = [identity_extreme(acc, not largest), identity_extreme(index, True)]
    dtypes = [self.dtype, torch.int64][-outputs:]
    return _run(reduction, self, dims, keepdim, dtypes, outs, [acc, index], identities, cast=acc)


def max_dim(self, dim, keepdim=False, *, max=None, max_values=None):
    return tuple(_indexed(MAX_DIM, self, dim, keepdim, [max, max_values], True, 2))


def min_dim(self, dim, keepdim=False, *, min=None, min_indices=None):
    return tuple(_indexed(MIN_DIM, self, dim, keepdim, [min, min_indices], False, 2))


def _max_dim_unsupported(self, dim, keepdim=False, *, max=None, max_values=None):
    return _reason_nonempty(self, dim, keepdim, [max, max_values], [self.dtype, torch.int64])


def _min_dim_unsupported(self, dim, keepdim=False, *, min=None, min_indices=None):
    return _reason_nonempty(self, dim, keepdim, [min, min_indices], [self.dtype, torch.int64])


def argmax(self, dim=None, keepdim=False, *, out=None):
    return _indexed(ARGMAX, self, dim, keepdim, [out], True, 1)[0]


def argmin(self, dim=None, keepdim=False, *, out=None):
    return _indexed(ARGMIN, self, dim, keepdim, [out], False, 1)[0]


def _argmax_unsupported(self, dim=None, keepdim=False, *, out=None):
    if self.dtype == torch.bool:
        return "bool input"
    return _reason_nonempty(self, dim, keepdim, [out], [torch.int64])


def _aminmax_keeps_dims(self, dim, keepdim):
    # CUDA's native whole-tensor aminmax drops kept dims (0-d results); the CPU keeps them.
    return keepdim and not (dim is None and self.device.type == "cuda")


def aminmax(self, *, dim=None, keepdim=False, min=None, max=None):
    dims = normalize_dims(dim, self.dim())
    acc = _extreme_state(self.dtype)
    identities = [identity_extreme(acc, True), identity_extreme(acc, False)]
    return tuple(_run(AMINMAX, self, dims, _aminmax_keeps_dims(self, dim, keepdim), [self.dtype] * 2, [min, max],
                      [acc, acc], identities, cast=acc))


def _aminmax_unsupported(self, *, dim=None, keepdim=False, min=None, max=None):
    return _reason_nonempty(self, dim, _aminmax_keeps_dims(self, dim, keepdim), [min, max], [self.dtype] * 2)


# variance and standard deviation

def _moments_call(reduction, self, dim, correction, keepdim, outs):
    dims = normalize_dims(dim, self.dim())
    acc = _accumulator(self.dtype)
    correction = 1 if correction is None else correction
    return _run(reduction, self, dims, keepdim, [self.dtype] * len(outs), outs, [acc] * 3, [0, 0, 0],
                param=correction)


def var(self, dim=None, *, correction=None, keepdim=False, out=None):
    return _moments_call(VAR, self, dim, correction, keepdim, [out])[0]


def std(self, dim=None, *, correction=None, keepdim=False, out=None):
    return _moments_call(STD, self, dim, correction, keepdim, [out])[0]


def var_mean(self, dim=None, *, correction=None, keepdim=False, out0=None, out1=None):
    return tuple(_moments_call(VAR_MEAN, self, dim, correction, keepdim, [out0, out1]))


def std_mean(self, dim=None, *, correction=None, keepdim=False, out0=None, out1=None):
    return tuple(_moments_call(STD_MEAN, self, dim, correction, keepdim, [out0, out1]))


def _moments_reason(self, dim, correction, keepdim, outs):
    if correction is not None and type(correction) not in (int, float):
        return "correction is not a real number"
    reason = _reason(self, dim, keepdim, outs, [self.dtype] * len(outs), dtypes=_SUPPORTED & set(_FLOATS))
    if reason is None and _reduced_count(self, normalize_dims(dim, self.dim())) - (
            1 if correction is None else correction) <= 0:
        return "no degrees of freedom (PyTorch warns)"
    if reason is None and self.dtype == torch.float64 and not fp32_exact(correction or 0):
        return "an fp64 variance with a correction fp32 cannot hold"
    return reason


def _var_unsupported(self, dim=None, *, correction=None, keepdim=False, out=None):
    return _moments_reason(self, dim, correction, keepdim, [out])


def _var_mean_unsupported(self, dim=None, *, correction=None, keepdim=False, out0=None, out1=None):
    return _moments_reason(self, dim, correction, keepdim, [out0, out1])


# norms

def linalg_vector_norm(self, ord=2, dim=None, keepdim=False, *, dtype=None, out=None):
    result_dtype = dtype or self.dtype
    dims = normalize_dims(dim, self.dim())
    acc = _accumulator(result_dtype)
    ord = float(ord)
    if ord == 0:
        reduction, identity = COUNT_NONZERO, 0
    elif ord == 1:
        reduction, identity = ABS_SUM, 0
    elif ord == 2:
        reduction, identity = EUCLIDEAN, 0
    elif ord == math.inf:
        reduction, identity = ABS_MAX, 0
    elif ord == -math.inf:
        reduction, identity = ABS_MIN, math.inf
    else:
        reduction, identity = P_NORM, 0
    # dtype= never narrows (see _norm_reason): loading as the input's own type, or in fp32 for
    # half types (squares and powers taken in fp32, as PyTorch does), is the same as casting first.
    cast = _load_dtype(self, None if dtype in (torch.float16, torch.bfloat16) else dtype)
    return _run(reduction, self, dims, keepdim, [result_dtype], [out], [acc], [identity], cast=cast, param=ord)[0]


def _norm_reason(self, ord, dim, keepdim, dtype, out):
    if type(ord) not in (int, float):
        return "ord is not a real number"
    floats = _SUPPORTED & set(_FLOATS)
    if self.dtype not in floats or (dtype is not None and dtype not in floats):
        return "norms of floating types only"
    if dtype is not None and torch.promote_types(self.dtype, dtype) != dtype:
        return "dtype= narrows the input (PyTorch refuses)"
    if (dtype or self.dtype) == torch.float64 and not fp32_exact(ord):
        return "an fp64 norm of an order fp32 cannot hold"
    if (ord < 0 or ord == math.inf) and _reduced_count(self, normalize_dims(dim, self.dim())) == 0:
        return "this norm of no elements is undefined"
    return _reason(self, dim, keepdim, [out], [dtype or self.dtype])


def _vector_norm_unsupported(self, ord=2, dim=None, keepdim=False, *, dtype=None, out=None):
    return _norm_reason(self, ord, dim, keepdim, dtype, out)


def norm(self, p=2, dim=None, keepdim=False, *, dtype=None, out=None):
    """Every ``aten::norm`` overload: a vector norm (p None means 2)."""
    return linalg_vector_norm(self, 2 if p is None else p, dim, keepdim, dtype=dtype, out=out)


def _norm_unsupported(self, p=2, dim=None, keepdim=False, *, dtype=None, out=None):
    return _norm_reason(self, 2 if p is None else p, dim, keepdim, dtype, out)


def _norm_all(self, p=2, *, dtype=None, out=None):
    return norm(self, p, None, False, dtype=dtype, out=out)


def _norm_all_unsupported(self, p=2, *, dtype=None, out=None):
    return _norm_unsupported(self, p, None, False, dtype=dtype, out=out)


# all, any, count_nonzero

def _logical_dtype(self):
    return torch.uint8 if self.dtype == torch.uint8 else torch.bool


def all_dims(self, dim=None, keepdim=False, *, out=None):
    dims = normalize_dims(dim, self.dim(), empty_means_all=False)
    return _run(ALL, self, dims, keepdim, [_logical_dtype(self)], [out], [torch.int32], [1])[0]


def any_dims(self, dim=None, keepdim=False, *, out=None):
    dims = normalize_dims(dim, self.dim(), empty_means_all=False)
    return _run(ANY, self, dims, keepdim, [_logical_dtype(self)], [out], [torch.int32], [0])[0]


def all(self, *, out=None):
    return all_dims(self, out=out)


def any(self, *, out=None):
    return any_dims(self, out=out)


def _logical_unsupported(self, dim=None, keepdim=False, *, out=None):
    if isinstance(dim, (list, tuple)) and not dim:
        return "no dims"
    return _reason(self, dim, keepdim, [out], [_logical_dtype(self)])


def _logical_all_unsupported(self, *, out=None):
    return _logical_unsupported(self, out=out)


def count_nonzero(self, dim=None, *, out=None):
    dims = normalize_dims(dim, self.dim())
    return _run(COUNT_NONZERO, self, dims, False, [torch.int64], [out], [torch.int64], [0])[0]


def _count_nonzero_unsupported(self, dim=None, *, out=None):
    return _reason(self, dim, False, [out], [torch.int64])


# logsumexp

def logsumexp(self, dim, keepdim=False, *, out=None):
    dims = normalize_dims(dim, self.dim())
    return _run(LOGSUMEXP, self, dims, keepdim, [self.dtype], [out], [_accumulator(self.dtype)] * 2,
                [-math.inf, 0])[0]


def _logsumexp_unsupported(self, dim, keepdim=False, *, out=None):
    if isinstance(dim, (list, tuple)) and not dim and self.dim():
        return "no dims"
    return _reason(self, dim, keepdim, [out], [self.dtype], dtypes=_SUPPORTED & set(_FLOATS))


def _rows(names, impl, unsupported):
    return tuple(Row(name, impl, unsupported) for name in names)


ATEN = (
    _rows(("sum", "sum.out"), sum, _sum_all_unsupported)
    + _rows(("sum.dim_IntList", "sum.IntList_out"), sum_dim, _sum_unsupported)
    + _rows(("prod", "prod.out"), prod, _prod_all_unsupported)
    + _rows(("prod.dim_int", "prod.int_out"), prod_dim, _prod_unsupported)
    + _rows(("mean", "mean.dtype_out"), mean, _mean_all_unsupported)
    + _rows(("mean.dim", "mean.out"), mean_dim, _mean_unsupported)
    + _rows(("amax", "amax.out"), amax, _amax_unsupported)
    + _rows(("amin", "amin.out"), amin, _amax_unsupported)
    + _rows(("max", "max.unary_out"), max, _max_unsupported)
    + _rows(("min", "min.unary_out"), min, _max_unsupported)
    + _rows(("max.dim", "max.dim_max"), max_dim, _max_dim_unsupported)
    + _rows(("min.dim", "min.dim_min"), min_dim, _min_dim_unsupported)
    + _rows(("argmax", "argmax.out"), argmax, _argmax_unsupported)
    + _rows(("argmin", "argmin.out"), argmin, _argmax_unsupported)
    + _rows(("aminmax", "aminmax.out"), aminmax, _aminmax_unsupported)
    # var/std(.dim/.out) and their _mean forms without ``correction`` are composite: they call these.
    + _rows(("var.correction", "var.correction_out"), var, _var_unsupported)
    + _rows(("std.correction", "std.correction_out"), std, _var_unsupported)
    + _rows(("var_mean.correction", "var_mean.correction_out"), var_mean, _var_mean_unsupported)
    + _rows(("std_mean.correction", "std_mean.correction_out"), std_mean, _var_mean_unsupported)
    + _rows(("linalg_vector_norm", "linalg_vector_norm.out"), linalg_vector_norm, _vector_norm_unsupported)
    + _rows(("norm.ScalarOpt_dim", "norm.ScalarOpt_dim_dtype", "norm.dtype_out", "norm.out"), norm,
            _norm_unsupported)
    + _rows(("norm.Scalar", "norm.ScalarOpt_dtype", "norm.ScalarOpt_dtype_out", "norm.Scalar_out"), _norm_all,
            _norm_all_unsupported)
    + _rows(("all", "all.all_out"), all, _logical_all_unsupported)
    + _rows(("all.dim", "all.out", "all.dims", "all.dims_out"), all_dims, _logical_unsupported)
    + _rows(("any", "any.all_out"), any, _logical_all_unsupported)
    + _rows(("any.dim", "any.out", "any.dims", "any.dims_out"), any_dims, _logical_unsupported)
    + _rows(("count_nonzero", "count_nonzero.out", "count_nonzero.dim_IntList", "count_nonzero.dim_IntList_out"),
            count_nonzero, _count_nonzero_unsupported)
    + _rows(("logsumexp", "logsumexp.out"), logsumexp, _logsumexp_unsupported)
)
