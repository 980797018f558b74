"""Planning gathers on the host: from an operator's description of its index space to
the launches of ``gather_kernels``, kept per call layout and replayed.

An operator describes its output as an index space of ``Dim``s (outermost first): per
dim, each source's size and stride, the output's stride, the mode that maps an index to
the source coordinate, and whether the dim takes part in the pair condition. Planning
orders the dims so that the output's fastest dim is the tile's last, drops size-1 dims,
merges neighbours that every tensor reads as one, and picks tiles.
"""

import math
import struct

import torch

from ... import runtime
from ...codegen.launch import Replay
from ...utils.layout import INT32_LIMIT, cdiv, next_power_of_2
from .gather_kernels import IDENTITY, NO_PAIR, gather_launcher

# Sources one launch reads; cat of more inputs launches once per group of this many.
MOST_SOURCES = 8


class Dim:
    """One dim of an index space: ``sizes`` and ``strides`` per source, the output's
    ``out_stride``, and the ``mode`` mapping an index to the source coordinate (with the
    source's ``map_size`` and ``shift`` along the dim). ``pair``: "P" or "Q" for the dims
    of the pair condition."""

    __slots__ = ("sizes", "strides", "out_stride", "mode", "map_size", "shift", "pair")

    def __init__(self, sizes, strides, out_stride, mode=IDENTITY, map_size=0, shift=0, pair=None):
        self.sizes, self.strides, self.out_stride = tuple(sizes), tuple(strides), out_stride
        self.mode, self.map_size, self.shift, self.pair = mode, map_size, shift, pair

    @property
    def fixed(self):
        """Kept as it is: never dropped or merged."""
        return self.mode != IDENTITY or self.pair is not None

    def absorbs(self, inner):
        """Whether this dim and the next one, ``inner``, read as one dim in every tensor."""
        if self.fixed or inner.fixed:
            return False
        return all(st == inner_st * size and self.out_stride == inner.out_stride * size
                   for st, inner_st, size in zip(self.strides, inner.strides, inner.sizes))

    def merged(self, inner):
        return Dim([a * b for a, b in zip(self.sizes, inner.sizes)], inner.strides, inner.out_stride)


def one_source(shape, strides, out_strides, modes=None, pairs=None):
    """The dims of a gather from one source whose index space is the output's ``shape``;
    ``modes``: {dim: (mode, map_size, shift)}, ``pairs``: {dim: "P" or "Q"}."""
    modes, pairs = modes or {}, pairs or {}
    return [Dim((size,), (stride,), out_stride, *modes.get(d, ()), pair=pairs.get(d))
            for d, (size, stride, out_stride) in enumerate(zip(shape, strides, out_strides))]


def collapse(dims, sources):
    """``dims`` ordered by the output's strides (fastest last), size-1 dims dropped and
    mergeable neighbours merged; at least one dim."""
    ordered = sorted(dims, key=lambda dim: -abs(dim.out_stride))
    kept = [dim for dim in ordered if dim.fixed or any(size != 1 for size in dim.sizes)]
    if not kept:
        return [Dim([1] * sources, [0] * sources, 0)]
    result = [kept[0]]
    for dim in kept[1:]:
        if result[-1].absorbs(dim):
            result[-1] = result[-1].merged(dim)
        else:
            result.append(dim)
    return result


def gather_config(rows, cols, transposed):
    """(BLOCK_R, BLOCK_C, num_warps) for tiles of at most ``rows`` x ``cols`` (powers of
    two); ``transposed``: the last dim is not contiguous in every tensor."""
    block_c = min(cols, 64 if transposed else 4096)
    block_r = min(rows, max(1, 4096 // block_c))
    return block_r, block_c, 4 if block_r * block_c <= 2048 else 8


def _needs_int64(dims, bases, out_bases, live):
    """Whether an offset into a source or the output may pass int32."""
    def extent(dim, k):
        size = dim.map_size if dim.mode != IDENTITY else dim.sizes[k]
        return max(size - 1, 0) * abs(dim.strides[k])

    for k in live:
        source = abs(bases[k]) + sum(extent(dim, k) for dim in dims)
        out = out_bases[k] + sum((dim.sizes[k] - 1) * abs(dim.out_stride) for dim in dims)
        if max(source, out, math.prod(dim.sizes[k] for dim in dims)) >= INT32_LIMIT:
            return True
    return False


def fill_argument(value, dtype):
    """(argument, FILL_BITS): the fill value as the kernel takes it; an fp64 value goes
    as its bits, since Triton passes Python floats as fp32."""
    if dtype == torch.float64:
        return struct.unpack("<q", struct.pack("<d", float(value)))[0], True
    if dtype == torch.bool:
        return int(bool(value)), False
    return (float(value) if dtype.is_floating_point else int(value)), False


class _Launch:
    """One launch of a gather kernel over a group of sources."""

    __slots__ = ("replay", "sources", "ints")

    def __init__(self, replay, sources, ints):
        self.replay, self.sources, self.ints = replay, sources, ints


class GatherPlan:
    """The launches of a gather, decided once per call layout. ``bases``: per source the
    element offset of its index space's origin; ``out_bases``: where its part of the
    output starts; ``pair``: (condition, k)."""

    def __init__(self, dims, bases=(0,), out_bases=(0,), fill=(0, False), pair=(NO_PAIR, 0)):
        count = len(bases)
        dims = collapse(dims, count)
        rank = len(dims)
        last = dims[-1]
        rows = [math.prod(dim.sizes[k] for dim in dims[:-1]) for k in range(count)]
        live = [k for k in range(count) if rows[k] * last.sizes[k] > 0]
        transposed = abs(last.out_stride) != 1 or any(abs(last.strides[k]) > 1 for k in live)
        block_r, block_c, warps = runtime.config("gather", gather_config)(
            next_power_of_2(max((rows[k] for k in live), default=1)),
            next_power_of_2(max((last.sizes[k] for k in live), default=1)), transposed)
        pair_kind, pair_k = pair
        positions = {dim.pair: d for d, dim in enumerate(dims) if dim.pair is not None}
        constexprs = dict(
            {f"MODE{d}": dim.mode for d, dim in enumerate(dims)},
            PAIR=pair_kind, PAIR_P=positions.get("P", -1), PAIR_Q=positions.get("Q", -1), FILL_BITS=fill[1],
            BLOCK_R=block_r, BLOCK_C=block_c, INDEX64=_needs_int64(dims, bases, out_bases, live), num_warps=warps)
        shared = (fill[0], pair_k, *(dim.out_stride for dim in dims), *(dim.map_size for dim in dims),
                  *(dim.shift for dim in dims))
        self.launches = []
        for start in range(0, len(live), MOST_SOURCES):
            group = live[start:start + MOST_SOURCES]
            ints, first = list(shared), 0
            for k in group:
                ints += [dim.sizes[k] for dim in dims] + [dim.strides[k] for dim in dims]
                ints += [bases[k], out_bases[k], rows[k], first]
                first += cdiv(rows[k], block_r) * cdiv(last.sizes[k], block_c)
            replay = Replay(gather_launcher(rank, len(group)), (first,), constexprs)
            self.launches.append(_Launch(replay, tuple(group), tuple(ints)))

    def __call__(self, out, sources):
        for launch in self.launches:
            launch.replay(out, *(sources[k] for k in launch.sources), *launch.ints)
        return out
