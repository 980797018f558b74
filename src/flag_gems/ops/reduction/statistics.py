"""Statistics: var/std and their _mean forms, vector norms (linalg_vector_norm, norm),
logsumexp.

The host side of ``reduce``'s VAR, STD, VAR_MEAN, STD_MEAN, the norm folds
(COUNT_NONZERO, ABS_SUM, EUCLIDEAN, ABS_MAX, ABS_MIN, P_NORM) and LOGSUMEXP
(their hooks live with every other reduction's in ``reduce``). Variance merges
per-tile moments (Chan et al.), logsumexp per-tile maxima and shifted sums:
both read the input once and stay stable for long rows. A norm's order and a
variance's correction reach the kernels as fp32: fp64 calls whose value fp32
cannot hold go native.
"""

import math

import torch

from ... import runtime
from ...codegen.launch import fp32_exact
from ...codegen.reduction import normalize_dims
from ...utils.dtypes import HALF_DTYPES, accumulator
from .common import load_dtype, reason, reduced_count, rows_sharing_check, run
from .reduce import (ABS_MAX, ABS_MIN, ABS_SUM, COUNT_NONZERO, EUCLIDEAN, LOGSUMEXP, P_NORM, STD, STD_MEAN, VAR,
                     VAR_MEAN)

__all__ = ["var", "std", "var_mean", "std_mean", "linalg_vector_norm", "norm", "logsumexp"]

_FLOATS = runtime.supported_float_dtypes()


# variance and standard deviation

def _moments_call(reduction, self, dim, correction, keepdim, outs):
    dims = normalize_dims(dim, self.dim())
    acc = accumulator(self.dtype)
    correction = 1 if correction is None else correction
    return run(reduction, self, dims, keepdim, [self.dtype] * len(outs), outs, [acc] * 3, [0, 0, 0],
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
    why = reason(self, dim, keepdim, outs, [self.dtype] * len(outs), dtypes=_FLOATS)
    if why is None and reduced_count(self, normalize_dims(dim, self.dim())) - (
            1 if correction is None else correction) <= 0:
        return "no degrees of freedom (PyTorch warns)"
    if why is None and self.dtype == torch.float64 and not fp32_exact(correction or 0):
        return "an fp64 variance with a correction fp32 cannot hold"
    return why


def _var_unsupported(self, dim=None, *, correction=None, keepdim=False, out=None):
    return _moments_reason(self, dim, correction, keepdim, [out])


def _var_mean_unsupported(self, dim=None, *, correction=None, keepdim=False, out0=None, out1=None):
    return _moments_reason(self, dim, correction, keepdim, [out0, out1])


# norms

def linalg_vector_norm(self, ord=2, dim=None, keepdim=False, *, dtype=None, out=None):
    result_dtype = dtype or self.dtype
    dims = normalize_dims(dim, self.dim())
    acc = accumulator(result_dtype)
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
    cast = load_dtype(self, None if dtype in HALF_DTYPES else dtype)
    return run(reduction, self, dims, keepdim, [result_dtype], [out], [acc], [identity], cast=cast, param=ord)[0]


def _norm_reason(self, ord, dim, keepdim, dtype, out):
    if type(ord) not in (int, float):
        return "ord is not a real number"
    if self.dtype not in _FLOATS or (dtype is not None and dtype not in _FLOATS):
        return "norms of floating types only"
    if dtype is not None and torch.promote_types(self.dtype, dtype) != dtype:
        return "dtype= narrows the input (PyTorch refuses)"
    if (dtype or self.dtype) == torch.float64 and not fp32_exact(ord):
        return "an fp64 norm of an order fp32 cannot hold"
    if (ord < 0 or ord == math.inf) and reduced_count(self, normalize_dims(dim, self.dim())) == 0:
        return "this norm of no elements is undefined"
    return reason(self, dim, keepdim, [out], [dtype or self.dtype])


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


# logsumexp

def logsumexp(self, dim, keepdim=False, *, out=None):
    dims = normalize_dims(dim, self.dim())
    return run(LOGSUMEXP, self, dims, keepdim, [self.dtype], [out], [accumulator(self.dtype)] * 2,
               [-math.inf, 0])[0]


def _logsumexp_unsupported(self, dim, keepdim=False, *, out=None):
    if isinstance(dim, (list, tuple)) and not dim and self.dim():
        return "no dims"
    return reason(self, dim, keepdim, [out], [self.dtype], dtypes=_FLOATS)


ATEN = (
    # var/std(.dim/.out) and their _mean forms without ``correction`` are composite: they call these.
    rows_sharing_check(_var_unsupported, (var, "var.correction", "var.correction_out"),
              (std, "std.correction", "std.correction_out"))
    + rows_sharing_check(_var_mean_unsupported, (var_mean, "var_mean.correction", "var_mean.correction_out"),
                (std_mean, "std_mean.correction", "std_mean.correction_out"))
    + rows_sharing_check(_vector_norm_unsupported, (linalg_vector_norm, "linalg_vector_norm", "linalg_vector_norm.out"))
    + rows_sharing_check(_norm_unsupported, (norm, "norm.ScalarOpt_dim", "norm.ScalarOpt_dim_dtype", "norm.dtype_out",
                                    "norm.out"))
    + rows_sharing_check(_norm_all_unsupported, (_norm_all, "norm.Scalar", "norm.ScalarOpt_dtype", "norm.ScalarOpt_dtype_out",
                                        "norm.Scalar_out"))
    + rows_sharing_check(_logsumexp_unsupported, (logsumexp, "logsumexp", "logsumexp.out"))
)
