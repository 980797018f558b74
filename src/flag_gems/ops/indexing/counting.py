"""Counting values: ``bincount`` (+out), ``_unique2`` / ``_unique`` (what ``torch.unique``
runs without ``dim``) and ``unique_consecutive`` (without ``dim``). Their output sizes come
from the data, so the host reads them (as native does): the largest value for ``bincount``,
the number of distinct values for the others.

``bincount`` is a histogram: atomic adds of one (or of the weight) into the value's bin.
``unique`` of integers needs no sort: a histogram over [min, max] marks the values present,
and a compaction of the bins lists them in order (with their counts, and each element's rank
for ``return_inverse``); where max - min is far larger than the input (or for floats, which
need a real sort) native takes the call. ``unique_consecutive`` marks each element that
differs from the one before it and compacts those.
"""

import torch
import triton
import triton.language as tl

from ...codegen.launch import Launcher
from ...dispatch import aten_rows
from ...utils.layout import INT32_LIMIT, cdiv
from ..movement.copy import fill_
from .common import SUPPORTED, flat, on_one_device, separate_output_reason
from .compaction import Compaction

__all__ = ["bincount", "unique2", "unique", "unique_consecutive"]

BLOCK = 1024
_INTEGRAL = frozenset(d for d in SUPPORTED if not d.is_floating_point and d != torch.bool)
_INT64_MIN = -(2**63)
MANY_BINS = 1 << 16  # bins a unique may use whatever its input's size (else 4 per element)


@triton.jit
def _extremes_kernel(x, stride, n, extremes, BLOCK: tl.constexpr, INDEX64: tl.constexpr):
    """extremes[0] = max(~x) (that is ~min(x), without overflow), extremes[1] = max(x): atomic
    maxima over programs, into int64 cells that start at their minimum."""
    pid = tl.program_id(0)
    if INDEX64:
        pid = pid.to(tl.int64)
    at = pid * BLOCK + tl.arange(0, BLOCK)
    inside = at < n
    value = tl.load(x + at * stride, mask=inside, other=0).to(tl.int64)
    tl.atomic_max(extremes, tl.max(tl.where(inside, ~value, -9223372036854775808), 0))
    tl.atomic_max(extremes + 1, tl.max(tl.where(inside, value, -9223372036854775808), 0))


@triton.jit
def _histogram_kernel(x, stride, weights, weight_stride, counts, n, low, HAS_WEIGHTS: tl.constexpr,
                      BLOCK: tl.constexpr, INDEX64: tl.constexpr):
    """counts[x[i] - low] += weights[i] (or 1), for every i < n."""
    pid = tl.program_id(0)
    if INDEX64:
        pid = pid.to(tl.int64)
    at = pid * BLOCK + tl.arange(0, BLOCK)
    inside = at < n
    bins = tl.load(x + at * stride, mask=inside, other=0).to(tl.int64) - low
    if HAS_WEIGHTS:
        amount = tl.load(weights + at * weight_stride, mask=inside, other=0).to(counts.dtype.element_ty)
    else:
        amount = tl.full([BLOCK], 1, counts.dtype.element_ty)
    tl.atomic_add(counts + bins, amount, mask=inside, sem="relaxed")


@triton.jit
def _lookup_kernel(x, table, out, n, low, BLOCK: tl.constexpr, INDEX64: tl.constexpr):
    """out[i] = table[x[i] - low] (x and out contiguous)."""
    pid = tl.program_id(0)
    if INDEX64:
        pid = pid.to(tl.int64)
    at = pid * BLOCK + tl.arange(0, BLOCK)
    inside = at < n
    bins = tl.load(x + at, mask=inside, other=0).to(tl.int64) - low
    tl.store(out + at, tl.load(table + bins, mask=inside), mask=inside)


@triton.jit
def _boundaries_kernel(x, flags, n, BLOCK: tl.constexpr, INDEX64: tl.constexpr):
    """flags[i] = x[i] starts a run: it is the first element or differs from the one before."""
    pid = tl.program_id(0)
    if INDEX64:
        pid = pid.to(tl.int64)
    at = pid * BLOCK + tl.arange(0, BLOCK)
    inside = at < n
    value = tl.load(x + at, mask=inside)
    before = tl.load(x + at - 1, mask=inside & (at > 0))
    if value.dtype == tl.bfloat16:  # the interpreter compares bf16 as raw bits: -0.0 != 0
        value, before = value.to(tl.float32), before.to(tl.float32)
    tl.store(flags + at, (at == 0) | (value != before), mask=inside)


_EXTREMES, _HISTOGRAM = Launcher(_extremes_kernel), Launcher(_histogram_kernel)
_LOOKUP, _BOUNDARIES = Launcher(_lookup_kernel), Launcher(_boundaries_kernel)


def _grid(n):
    return (cdiv(n, BLOCK),), {"BLOCK": BLOCK, "INDEX64": n + BLOCK >= INT32_LIMIT}


def _extremes(x):
    """(min, max) of the non-empty 1-d ``x``, read on the host."""
    extremes = fill_(torch.empty(2, dtype=torch.int64, device=x.device), _INT64_MIN)
    grid, blocks = _grid(x.numel())
    _EXTREMES(grid, x, x.stride(0), x.numel(), extremes, **blocks)
    low, high = extremes.tolist()
    return ~low, high


def _histogram(x, counts, low=0, weights=None):
    """``counts`` (zeroed here) of the 1-d ``x``'s values minus ``low``, weighted."""
    fill_(counts, 0)
    grid, blocks = _grid(x.numel())
    if x.numel():
        _HISTOGRAM(grid, x, x.stride(0), weights if weights is not None else x,
                   weights.stride(0) if weights is not None else 0, counts, x.numel(), low,
                   HAS_WEIGHTS=weights is not None, **blocks)
    return counts


def _bincount_dtype(weights):
    if weights is None:
        return torch.int64
    return torch.float32 if weights.dtype == torch.float32 else torch.float64


def bincount(self, weights=None, minlength=0, *, out=None):
    """How often each value in [0, max(self, minlength - 1)] occurs in the 1-d ``self``."""
    low, high = _extremes(self) if self.numel() else (0, -1)
    if low < 0:
        return torch.ops.aten.bincount(self, weights, minlength)  # native (we are inside): aten's error
    size = max(high + 1, minlength)
    dtype = _bincount_dtype(weights)
    out = torch.empty(size, dtype=dtype, device=self.device) if out is None else out.resize_(size)
    return _histogram(self, out, weights=weights)


def _bincount_unsupported(self, weights=None, minlength=0, *, out=None):
    tensors = [self] + ([weights] if weights is not None else [])
    if not on_one_device(*tensors) or self.dtype not in _INTEGRAL or self.dim() != 1:
        return "self is not a 1-d integer tensor on the vendor's device"
    if weights is not None and (weights.dtype not in SUPPORTED or weights.shape != self.shape):
        return "weights of another length or an unsupported dtype"
    if not isinstance(minlength, int) or minlength < 0:
        return "invalid minlength"
    if out is not None and (out.numel() or out.dtype != _bincount_dtype(weights) or not on_one_device(out, self)):
        return "out= with elements or of another dtype (native resizes it)"
    return None if out is None else separate_output_reason(out, *tensors)


def _nothing(device):
    return torch.empty(0, dtype=torch.int64, device=device)


def unique2(self, sorted=True, return_inverse=False, return_counts=False):
    """(the distinct values in ascending order, each element's index among them (if asked),
    each value's count (if asked)): integers, by a histogram over [min, max]."""
    values = flat(self).view(-1)
    n = values.numel()
    low, high = _extremes(values) if n else (0, -1)
    if high - low >= max(MANY_BINS, 4 * n):
        return torch.ops.aten._unique2(self, sorted, return_inverse, return_counts)  # native sorts
    counts = _histogram(values, torch.empty(high - low + 1, dtype=torch.int64, device=self.device), low)
    found = Compaction(counts, counts.shape, (1,))
    distinct = found.positions(torch.empty(found.count, dtype=self.dtype, device=self.device), low)
    inverse, counted = _nothing(self.device), _nothing(self.device)
    if return_inverse:
        ranks = found.ranks(torch.empty_like(counts))
        inverse = torch.empty(self.shape, dtype=torch.int64, device=self.device)
        if n:
            grid, blocks = _grid(n)
            _LOOKUP(grid, values, ranks, inverse, n, low, **blocks)
    if return_counts:
        counted = found.select(counts, (1,), torch.empty(found.count, dtype=torch.int64, device=self.device))
    return distinct, inverse, counted


def unique(self, sorted=True, return_inverse=False):
    distinct, inverse, _ = unique2(self, sorted, return_inverse, False)
    return distinct, inverse


def _unique_unsupported(self, sorted=True, return_inverse=False, return_counts=False):
    if not isinstance(self, torch.Tensor) or not on_one_device(self) or self.dtype not in _INTEGRAL | {torch.bool}:
        return "not an integer tensor on the vendor's device (floats need a sort)"
    return None


def unique_consecutive(self, return_inverse=False, return_counts=False, dim=None):
    """(the first value of each run of equal elements, each element's run (if asked), each
    run's length (if asked))."""
    values = flat(self).view(-1)
    n = values.numel()
    starts = torch.empty(n, dtype=torch.bool, device=self.device)
    if n:
        grid, blocks = _grid(n)
        _BOUNDARIES(grid, values, starts, n, **blocks)
    found = Compaction(starts, starts.shape, (1,))
    distinct = found.select(values, (1,), torch.empty(found.count, dtype=self.dtype, device=self.device))
    inverse, counted = _nothing(self.device), _nothing(self.device)
    if return_inverse or return_counts:
        runs = found.ranks(torch.empty(self.shape, dtype=torch.int64, device=self.device))
        inverse = runs if return_inverse else inverse
        if return_counts:
            counted = _histogram(runs.view(-1), torch.empty(found.count, dtype=torch.int64, device=self.device))
    return distinct, inverse, counted


def _unique_consecutive_unsupported(self, return_inverse=False, return_counts=False, dim=None):
    if not isinstance(self, torch.Tensor) or not on_one_device(self) or self.dtype not in SUPPORTED:
        return "not a tensor of a supported dtype on the vendor's device"
    return None if dim is None else "along a dim"


ATEN = (
    *aten_rows("bincount", bincount, _bincount_unsupported, ("", "out")),
    *aten_rows("_unique2", unique2, _unique_unsupported, ("",)),
    *aten_rows("_unique", unique, _unique_unsupported, ("",)),
    *aten_rows("unique_consecutive", unique_consecutive, _unique_consecutive_unsupported, ("",)),
)
