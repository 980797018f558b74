"""Extremes: amax/amin, max/min (whole tensor and with indices), argmax/argmin, aminmax.

The host side of ``reduce``'s AMAX, AMIN, ARGMAX, ARGMIN, MAX_DIM, MIN_DIM and
AMINMAX (their hooks live with every other reduction's in ``reduce``). Extremes
are kept in ``extreme_state``: exact in any type. NaN propagates as in PyTorch,
and indices are those of the first extreme (the first NaN wins).
"""

import torch

from ...codegen.reduction import identity_extreme, normalize_dims
from .common import extreme_state, reason_nonempty, reduced_count, rows_sharing_check, run
from .reduce import AMAX, AMIN, AMINMAX, ARGMAX, ARGMIN, MAX_DIM, MIN_DIM

__all__ = ["amax", "amin", "max", "min", "max_dim", "min_dim", "argmax", "argmin", "aminmax"]

_INT32_MAX = 2**31 - 1


def _index_dtype(n):
    return torch.int32 if n <= _INT32_MAX else torch.int64


def _extreme(reduction, self, dim, keepdim, out, largest):
    dims = normalize_dims(dim, self.dim())
    acc = extreme_state(self.dtype)
    return run(reduction, self, dims, keepdim, [self.dtype], [out], [acc], [identity_extreme(acc, not largest)],
               cast=acc)[0]


def amax(self, dim=(), keepdim=False, *, out=None):
    return _extreme(AMAX, self, dim, keepdim, out, True)


def amin(self, dim=(), keepdim=False, *, out=None):
    return _extreme(AMIN, self, dim, keepdim, out, False)


def _amax_unsupported(self, dim=(), keepdim=False, *, out=None):
    return reason_nonempty(self, dim, keepdim, [out], [self.dtype])


def max(self, *, out=None):
    return amax(self, out=out)


def min(self, *, out=None):
    return amin(self, out=out)


def _max_unsupported(self, *, out=None):
    return reason_nonempty(self, None, False, [out], [self.dtype])


def _indexed(reduction, self, dim, keepdim, outs, largest, outputs):
    dims = normalize_dims(dim, self.dim())
    acc = extreme_state(self.dtype)
    n = reduced_count(self, dims)
    index = _index_dtype(n)
    identities = [identity_extreme(acc, not largest), identity_extreme(index, True)]
    dtypes = [self.dtype, torch.int64][-outputs:]
    return run(reduction, self, dims, keepdim, dtypes, outs, [acc, index], identities, cast=acc)


def max_dim(self, dim, keepdim=False, *, max=None, max_values=None):
    return tuple(_indexed(MAX_DIM, self, dim, keepdim, [max, max_values], True, 2))


def min_dim(self, dim, keepdim=False, *, min=None, min_indices=None):
    return tuple(_indexed(MIN_DIM, self, dim, keepdim, [min, min_indices], False, 2))


def _max_dim_unsupported(self, dim, keepdim=False, *, max=None, max_values=None):
    return reason_nonempty(self, dim, keepdim, [max, max_values], [self.dtype, torch.int64])


def _min_dim_unsupported(self, dim, keepdim=False, *, min=None, min_indices=None):
    return reason_nonempty(self, dim, keepdim, [min, min_indices], [self.dtype, torch.int64])


def argmax(self, dim=None, keepdim=False, *, out=None):
    return _indexed(ARGMAX, self, dim, keepdim, [out], True, 1)[0]


def argmin(self, dim=None, keepdim=False, *, out=None):
    return _indexed(ARGMIN, self, dim, keepdim, [out], False, 1)[0]


def _argmax_unsupported(self, dim=None, keepdim=False, *, out=None):
    if self.dtype == torch.bool:
        return "bool input"
    return reason_nonempty(self, dim, keepdim, [out], [torch.int64])


def _aminmax_keeps_dims(self, dim, keepdim):
    # CUDA's native whole-tensor aminmax drops kept dims (0-d results); the CPU keeps them.
    return keepdim and not (dim is None and self.device.type == "cuda")


def aminmax(self, *, dim=None, keepdim=False, min=None, max=None):
    dims = normalize_dims(dim, self.dim())
    acc = extreme_state(self.dtype)
    identities = [identity_extreme(acc, True), identity_extreme(acc, False)]
    return tuple(run(AMINMAX, self, dims, _aminmax_keeps_dims(self, dim, keepdim), [self.dtype] * 2, [min, max],
                     [acc, acc], identities, cast=acc))


def _aminmax_unsupported(self, *, dim=None, keepdim=False, min=None, max=None):
    return reason_nonempty(self, dim, _aminmax_keeps_dims(self, dim, keepdim), [min, max], [self.dtype] * 2)


ATEN = (
    rows_sharing_check(_amax_unsupported, (amax, "amax", "amax.out"), (amin, "amin", "amin.out"))
    + rows_sharing_check(_max_unsupported, (max, "max", "max.unary_out"), (min, "min", "min.unary_out"))
    + rows_sharing_check(_max_dim_unsupported, (max_dim, "max.dim", "max.dim_max"))
    + rows_sharing_check(_min_dim_unsupported, (min_dim, "min.dim", "min.dim_min"))
    + rows_sharing_check(_argmax_unsupported, (argmax, "argmax", "argmax.out"), (argmin, "argmin", "argmin.out"))
    + rows_sharing_check(_aminmax_unsupported, (aminmax, "aminmax", "aminmax.out"))
)
