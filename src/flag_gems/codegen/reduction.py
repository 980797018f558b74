"""One generator for every reduction.

An input is seen as [A, N, K] (kept dims before the reduced ones, the reduced
dims, kept dims after them) through its strides, so reducing any dim, the last
or not, reads the tensor in place; only dims that cannot be merged into one
stride cost a contiguous copy. A reduction is a handful of ``@triton.jit``
hooks over a *state* of k values per output (a sum: one value; an argmax:
value and index; a variance: count, mean and squared deviations):

- ``combine(*a, *b) -> state``: associative; also the tree reduction's combine;
- either ``lift(x, index, param) -> state`` (mode ``"accumulate"``): every
  lane of the tile folds its own elements in with ``combine``, and one tree
  reduction finishes the row, the cheapest for sums, extrema and argmax;
- or ``tile_stats(x, mask, axis) -> state`` (mode ``"blockwise"``): the
  statistics of a whole tile at once, merged into a running state per output,
  for states whose per-element update would cost a division or an exp
  (Welford variance, logsumexp);
- ``finish(*state, count, param) -> outputs``: the results from the final state;
- optionally ``step(*state, *element) -> state`` (mode ``"accumulate"``): what a
  lane folds the next element of a whole tile in with, instead of ``combine``; it
  may assume the state holds elements earlier in the reduction order, never the
  identity (the first whole tile seeds the states), which spares an argmax its
  tie-breaking compares;
- optionally ``reduce_tile(*state, *identities, axis) -> state`` (mode
  ``"accumulate"``): the lanes' states reduced along ``axis`` at once, instead of a
  tree of ``combine`` (an argmax: the extreme, then the first index holding it, two
  trees of one value each).

In mode ``"accumulate"`` the lanes first walk the whole tiles, masked only by the
outputs kept (a lane of an output never stored may fold in anything); only the
last, partial tile selects identities for the elements past the end.

``param`` (a norm's order, a variance's correction) reaches the kernel as fp32,
as Triton passes every Python float: hooks cast it to the state's type before
arithmetic, and an operator whose fp64 result needs a value fp32 cannot hold
sends that call to native (``codegen.launch.fp32_exact``).

``Reduction`` writes a rows kernel (K == 1: [BLOCK_A, BLOCK_N] tiles along
contiguous rows) and a cols kernel (K > 1: [BLOCK_N, BLOCK_K] tiles, coalesced
along K) from these hooks. Long reductions with few outputs split N across
programs; each writes its state, and a second pass of the same kernels
combines the states and finishes, deterministically.

Block sizes, warps and programs per multiprocessor come from the tuners
``reduce_rows`` and ``reduce_cols`` (``flag_gems.tuning``): an untuned key runs
``rows_config`` / ``cols_config``, which a vendor overrides with
``configs["reduce_rows"]`` / ``configs["reduce_cols"]`` (same arguments, the
same 4-tuples).
"""

import builtins
import math

import numpy
import torch
import triton.language as tl

from .. import runtime, tuning
from ..utils.layout import INT32_LIMIT, cdiv, contiguous_strides, merge_dims, next_power_of_2
from .cache import load_generated
from .launch import INTERPRETED, Launcher, Replay, layout_key, planned
from .pointwise import TL_DTYPE



def _group(sizes, strides, groups):
    return [merge_dims([sizes[d] for d in g], [strides[d] for d in g]) for g in groups]


def ank_layout(shape, strides, dims, any_order=False):
    """How to read a tensor of ``shape`` and ``strides`` as [A, N, K] for reducing
    sorted ``dims`` (none: every element is its own reduction of one): (order, copy,
    [(A, stride), (N, stride), (K, stride)]): permute by ``order`` (None: as it is),
    then copy to contiguous if ``copy``. ``any_order``: the reduction does not depend
    on the order of elements, so reduced dims that do not merge as they stand may be
    visited in memory order instead."""
    nd = len(shape)
    kept = [d for d in range(nd) if d not in dims]
    if not dims:
        order, groups = None, (range(0, nd), range(nd, nd), range(nd, nd))
    elif dims == list(range(dims[0], dims[-1] + 1)):
        order = None
        groups = (range(0, dims[0]), range(dims[0], dims[-1] + 1), range(dims[-1] + 1, nd))
    else:
        order = kept + dims
        groups = (range(0, len(kept)), range(len(kept), nd), range(nd, nd))

    def arranged(order):
        return (shape, strides) if order is None else ([shape[d] for d in order], [strides[d] for d in order])

    sizes, walked = arranged(order)
    if math.prod(shape) == 0:  # nothing is read; any strides of an empty tensor count as contiguous
        return order, False, [(math.prod(sizes[d] for d in g), 0) for g in groups]
    merged = _group(sizes, walked, groups)
    if None in merged and any_order and dims:
        order = kept + sorted(dims, key=lambda d: -strides[d])
        groups = (range(0, len(kept)), range(len(kept), nd), range(nd, nd))
        sizes, walked = arranged(order)
        merged = _group(sizes, walked, groups)
    if None in merged:
        return order, True, _group(sizes, contiguous_strides(sizes), groups)
    return order, False, merged


def _arranged(x, order, copy):
    if order is not None:
        x = x.permute(order)
    return x.contiguous() if copy else x


def normalize_dims(dim, ndim, empty_means_all=True):
    """Sorted, non-negative dims to reduce (``dim`` already validated)."""
    if dim is None or (empty_means_all and isinstance(dim, (list, tuple)) and len(dim) == 0):
        return list(range(ndim))
    dims = [dim] if isinstance(dim, int) else list(dim)
    rank = builtins.max(ndim, 1)
    return sorted({d % rank for d in dims}) if ndim else []


def valid_dims(dim, ndim):
    """Whether ``dim`` (an int or a list) names distinct dims of a rank-``ndim`` tensor."""
    if dim is None:
        return True
    dims = [dim] if isinstance(dim, int) else list(dim)
    rank = builtins.max(ndim, 1)
    return all(-rank <= d < rank for d in dims) and len({d % rank for d in dims}) == len(dims)


def reduced_shape(shape, dims, keepdim):
    if keepdim:
        return [1 if d in dims else s for d, s in enumerate(shape)]
    return [s for d, s in enumerate(shape) if d not in dims]


def rows_config(A, N, stride_n, itemsize, states, blockwise):
    """(BLOCK_A, BLOCK_N, num_warps, programs per multiprocessor) for K == 1."""
    # Times on an H100, bf16 16384x4096 over the last dim, with L2 flushed by a write before
    # each call (the benchmarks' ms column): a row per program in 2K-element tiles of 8 warps
    # read at 2.58-2.65 TB/s for sum, amax and argmax; 1K tiles of 4 warps at 2.48-2.55.
    # Blockwise states (var, logsumexp) reduce every tile: over long half-precision rows,
    # 2x256 tiles of 2 warps read at 2.6-2.8 TB/s (2.2-2.5 with 1K tiles). Rows of less than
    # 2K, and fp32 rows, did best with 1K tiles. Long rows split 8 programs per SM.
    if not blockwise and A >= 1024 and N >= 2048 and stride_n == 1:
        return 1, 2048, 8, 8
    if blockwise and states > 1 and itemsize < 4 and N >= 2048 and stride_n == 1:
        return builtins.min(next_power_of_2(A), 2), 256, 2, 8
    block_n = builtins.min(next_power_of_2(builtins.max(N, 1)), 1024 if stride_n == 1 else 256)
    block_a = builtins.min(next_power_of_2(A), builtins.max(1, 1024 // block_n))
    return block_a, block_n, 4, 8


def cols_config(A, N, K, stride_k):
    """(BLOCK_N, BLOCK_K, num_warps, programs per multiprocessor) for K > 1."""
    # Kernel times on an H100 (fp32 4096x8192 over dim 0): 32x64 tiles, 4 warps, 8 programs
    # per SM read at 2.7 TB/s for sum and amax and 1.8 for var (native: 2.4 and 1.4); the
    # 16x256 tiles of 8 warps had var at 1.05.
    block_k = builtins.min(next_power_of_2(K), 64 if stride_k == 1 else 32)
    block_n = builtins.min(next_power_of_2(builtins.max(N, 1)), builtins.max(1, 2048 // block_k))
    return block_n, block_k, 4, 8


def _split(outputs, n, block_n, device_index, programs_per_sm):
    """How many programs share each reduction, so the device stays busy."""
    target = runtime.multiprocessor_count(device_index) * programs_per_sm
    if outputs >= target or n <= 4 * block_n:
        return 1
    return builtins.min(cdiv(target, outputs), cdiv(n, 4 * block_n), 1024)


# -- tuning: the rows and cols kernels of every reduction share two tuners --------------------
#
# A raw key is (reduction name, sizes, strides, input element size, state dtype, state count);
# the bucket keeps the name (an argmax or variance combine costs registers a sum does not),
# powers of two of the sizes, whether the walked strides are 1, and the element sizes.

TUNED_FROM = 1 << 16  # elements: smaller reductions are one short launch, left to the heuristic
_MAX_STATE_REGISTERS = 128  # 32-bit registers a thread may hold for tiles and states; more spills
_HOOKS = {}  # every Reduction's hooks, in definition order: part of the tuners' source hash


def rows_space():
    """(BLOCK_A, BLOCK_N, num_warps, programs per SM), likeliest first: the measured
    programs per SM, mid-sized tiles and the longest rows first."""
    configs = []
    for programs in (8, 4, 16):
        for tile in (4096, 8192, 2048, 16384):
            for block_n in (1 << i for i in range(tile.bit_length() - 1, -1, -1)):
                for warps in (8, 4) if tile <= 4096 else (8, 16):
                    configs.append((tile // block_n, block_n, warps, programs))
    return configs


def cols_space():
    """(BLOCK_N, BLOCK_K, num_warps, programs per SM), likeliest first."""
    configs = []
    for programs in (4, 8, 2):
        for tile in (4096, 2048, 8192, 1024):
            for block_k in (256, 128, 512, 64, 32, 16, 8, 4, 2):
                for warps in (8, 4) if tile <= 4096 else (8, 16):
                    configs.append((builtins.max(1, tile // block_k), block_k, warps, programs))
    return configs


def _rows_heuristic(name, A, N, stride_n, itemsize, state, states):
    blockwise = _REDUCTIONS[name].mode == "blockwise"
    return runtime.config("reduce_rows", rows_config)(A, N, stride_n, itemsize, states, blockwise)


def _cols_heuristic(name, A, N, K, stride_n, stride_k, itemsize, state, states):
    return runtime.config("reduce_cols", cols_config)(A, N, K, stride_k)


def _bucket(*sizes):
    """Powers of two of the sizes; zeros for a problem too small to tune (one bucket)."""
    if math.prod(sizes) < TUNED_FROM:
        return (0,) * len(sizes)
    return tuple(next_power_of_2(size) for size in sizes)


def _rows_key(name, A, N, stride_n, itemsize, state, states):
    return (name, states, *_bucket(A, N), stride_n == 1, itemsize, state.itemsize)


def _cols_key(name, A, N, K, stride_n, stride_k, itemsize, state, states):
    return (name, states, *_bucket(A, N, K), stride_n == 1, stride_k == 1, itemsize, state.itemsize)


def _fits_registers(tile, warps, states, state_size):
    # "accumulate" reductions keep a tile-shaped state per value beside the loaded tile.
    per_thread = builtins.max(1, tile // (warps * 32))
    return per_thread * (states + 1) * builtins.max(1, state_size // 4) <= _MAX_STATE_REGISTERS


def _programs_matter(outputs, n, block_n, programs, default):
    """Whether ``programs`` per SM splits differently from ``default`` (else a duplicate)."""
    return programs == default or _split(outputs, n, block_n, 0, programs) != _split(outputs, n, block_n, 0, default)


def _rows_fit(key, config):
    _, states, A, N, unit_n, _, state_size = key
    block_a, block_n, warps, programs = config
    if block_a > A or block_n > N:
        return False
    # Along contiguous rows a warp's loads coalesce only over 32 elements or more; along
    # strided ones each element is its own transaction, so long rows only cost registers.
    if (block_n < builtins.min(N, 32)) if unit_n else block_n > 256:
        return False
    return _fits_registers(block_a * block_n, warps, states, state_size) and _programs_matter(
        cdiv(A, block_a), N, block_n, programs, 8)


def _cols_fit(key, config):
    _, states, A, N, K, _, unit_k, _, state_size = key
    block_n, block_k, warps, programs = config
    if block_n > N or block_k > K:
        return False
    if (block_k < builtins.min(K, 32)) if unit_k else block_k > 64:  # as for rows, along K
        return False
    return _fits_registers(block_n * block_k, warps, states, state_size) and _programs_matter(
        A * cdiv(K, block_k), N, block_n, programs, 4)


def _tuned_sources():
    return [kernel_source, _hook_imports, *_HOOKS]


_REDUCTIONS = {}  # every Reduction, by name


def _forget_plans():
    """The tuners forgot their choices: plans made from them go too."""
    for reduction in _REDUCTIONS.values():
        reduction._plans.clear()


ROWS_FIELDS = ("BLOCK_A", "BLOCK_N", "num_warps", "programs_per_sm")
COLS_FIELDS = ("BLOCK_N", "BLOCK_K", "num_warps", "programs_per_sm")
ROWS_TUNER = tuning.Tuner("reduce_rows", heuristic=_rows_heuristic, space=rows_space, key=_rows_key,
                          prune=_rows_fit, sources=_tuned_sources, fields=ROWS_FIELDS,
                          on_forget=_forget_plans)
COLS_TUNER = tuning.Tuner("reduce_cols", heuristic=_cols_heuristic, space=cols_space, key=_cols_key,
                          prune=_cols_fit, sources=_tuned_sources, fields=COLS_FIELDS,
                          on_forget=_forget_plans)


def _hook_imports(hooks):
    lines = ["import triton", "import triton.language as tl"]
    if INTERPRETED:
        lines.append(f"from {__name__} import interpreted_reduce")
    for alias, fn in hooks.items():
        fn = getattr(fn, "fn", fn)
        lines.append(f"from {fn.__module__} import {fn.__qualname__} as {alias}")
    return lines + ["", ""]


def _tup(names):
    return ", ".join(names) if len(names) > 1 else names[0]


def _packed(names):
    return f"({', '.join(names)})" if len(names) > 1 else names[0]


def _reduce_lines(names, cols, indent):
    """Lines reducing the tiles ``names`` along the reduced axis with ``combine``."""
    call = "interpreted_reduce(combine, {axis}, {tiles})" if INTERPRETED else "tl.reduce({packed}, {axis}, combine)"
    call = call.format(axis=0 if cols else 1, tiles=", ".join(names), packed=_packed(names))
    return [f"{' ' * indent}{_tup(names)} = {call}"]


def interpreted_reduce(combine, axis, *tiles):
    """``tl.reduce(tiles, axis, combine)`` under the interpreter, which runs a custom
    combine once per element: here neighbours are combined in order (left first,
    so ties keep the lower index) in log2(length) vectorised steps."""
    from triton.runtime.interpreter import TensorHandle

    def wrap(arrays):
        return [tl.core.tensor(TensorHandle(numpy.ascontiguousarray(a), t.handle.dtype),
                               tl.block_type(t.dtype, list(a.shape))) for a, t in zip(arrays, tiles)]

    data = [numpy.moveaxis(t.handle.data, axis, -1) for t in tiles]
    while data[0].shape[-1] > 1:
        combined = combine.fn(*wrap([d[..., 0::2] for d in data]), *wrap([d[..., 1::2] for d in data]))
        data = [c.handle.data for c in (combined if isinstance(combined, tuple) else (combined,))]
    results = wrap([d[..., 0] for d in data])
    return tuple(results) if len(results) > 1 else results[0]


def kernel_source(mode, k, m, cols, stepped=False, tiled=False):
    """The rows (``cols`` False) or cols kernel of a k-value state with m outputs; ``stepped``:
    the lanes fold their elements in with the ``step`` hook, not ``combine``; ``tiled``: the
    lanes' states reduce with the ``reduce_tile`` hook, not a tree of ``combine``."""
    s = [f"s{j}" for j in range(k)]
    v = [f"v{j}" for j in range(k)]
    dests = [f"dst{j}" for j in range(builtins.max(k, m))]
    sources = [f"src{j}" for j in range(k)]
    consts = [f"S{j}: tl.constexpr, I{j}: tl.constexpr" for j in range(k)]
    axis = 0 if cols else 1
    if cols:
        lines = [
            "@triton.jit",
            f"def kernel({', '.join(sources + dests)}, A, N, K, stride_a, stride_n, stride_k, n_per_split,",
            "           count, param, SPLIT: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,",
            f"           CAST: tl.constexpr, {', '.join(consts)}, FIRST: tl.constexpr, LAST: tl.constexpr,",
            "           INDEX64: tl.constexpr):",
            "    pid = tl.program_id(0)",
            "    k_blocks = tl.cdiv(K, BLOCK_K)",
            "    k = (pid % k_blocks) * BLOCK_K + tl.arange(0, BLOCK_K)",
            "    rest = pid // k_blocks",
            "    split = rest % SPLIT",
            "    a = rest // SPLIT",
            "    if INDEX64:",
            "        a = a.to(tl.int64)",
            "        k = k.to(tl.int64)",
            "    kept = k < K",
            "    base = a * stride_a + k[None, :] * stride_k",
            "    at = (a * SPLIT + split) * K + k",
        ]
        tile, state_shape = "[BLOCK_N, BLOCK_K]", "[BLOCK_K]"
        kept_tile, walked = "kept[None, :]", "(n < end)[:, None]"
        step = [
            "        n = offset + tl.arange(0, BLOCK_N)",
            "        if INDEX64:",
            "            n = n.to(tl.int64)",
            "        offsets = base + n[:, None] * stride_n",
            "        index = n[:, None]",
        ]
    else:
        lines = [
            "@triton.jit",
            f"def kernel({', '.join(sources + dests)}, A, N, stride_a, stride_n, n_per_split, count, param,",
            "           SPLIT: tl.constexpr, BLOCK_A: tl.constexpr, BLOCK_N: tl.constexpr, CAST: tl.constexpr,",
            f"           {', '.join(consts)}, FIRST: tl.constexpr, LAST: tl.constexpr, INDEX64: tl.constexpr):",
            "    rows = tl.program_id(0) * BLOCK_A + tl.arange(0, BLOCK_A)",
            "    split = tl.program_id(1)",
            "    if INDEX64:",
            "        rows = rows.to(tl.int64)",
            "    kept = rows < A",
            "    base = rows[:, None] * stride_a",
            "    at = rows * SPLIT + split",
        ]
        tile, state_shape = "[BLOCK_A, BLOCK_N]", "[BLOCK_A]"
        kept_tile, walked = "kept[:, None]", "(n < end)[None, :]"
        step = [
            "        n = offset + tl.arange(0, BLOCK_N)",
            "        if INDEX64:",
            "            n = n.to(tl.int64)",
            "        offsets = base + n[None, :] * stride_n",
            "        index = n[None, :]",
        ]
    lines += [
        "    start = split * n_per_split",
        "    end = tl.minimum(start + n_per_split, N)",
    ]
    accumulate = mode == "accumulate"
    lines += [f"    s{j} = tl.full({tile if accumulate else state_shape}, I{j}, S{j})" for j in range(k)]
    load_states = [f"            v{j} = tl.where(mask, tl.load(src{j} + offsets, mask=mask).to(S{j}), I{j})"
                   for j in range(k)]
    # The input is read once: evict_first keeps it from pushing other lines out of L2
    # (after a large write, 6-9 us of a 16384x4096 bf16 row sum went to writing those back).
    x = "tl.load(src0 + offsets, mask=mask, other=0, eviction_policy='evict_first').to(CAST)"
    fold = "step" if stepped else "combine"
    if accumulate:
        # Whole tiles first, masked only by the kept outputs: a lane of an output never
        # stored may fold in anything, so the identity selects are left to the last tile.
        # The first whole tile seeds the lanes' states, so ``step`` never meets the identity
        # in a state; the last, partial tile folds in with ``combine``, which may.
        whole = [f"        mask = {kept_tile}", "        if FIRST:", f"            {_tup(v)} = lift({x}, index, param)"]
        lines += [
            "    whole_end = end - tl.maximum(end - start, 0) % BLOCK_N",
            "    if start < whole_end:",
            "        offset = start",
        ] + step + whole + [f"            s{j} = tl.broadcast_to(v{j}.to(S{j}), {tile})" for j in range(k)] + [
            "        else:",
        ] + [f"            s{j} = tl.load(src{j} + offsets, mask=mask).to(S{j})" for j in range(k)] + [
            "    for offset in range(start + BLOCK_N, whole_end, BLOCK_N):",
        ] + step + whole + [f"            v{j} = v{j}.to(S{j})" for j in range(k)] + [
            f"            {_tup(s)} = {fold}({', '.join(s + v)})",
            "        else:",
        ] + [f"            v{j} = tl.load(src{j} + offsets, mask=mask).to(S{j})" for j in range(k)] + [
            f"            {_tup(s)} = combine({', '.join(s + v)})",
            "    for offset in range(whole_end, end, BLOCK_N):",
        ] + step + [
            f"        mask = {kept_tile} & {walked}",
            "        if FIRST:",
            f"            {_tup(v)} = lift({x}, index, param)",
        ] + [f"            v{j} = tl.where(mask, v{j}.to(S{j}), I{j})" for j in range(k)] + [
            "        else:",
        ] + load_states + [
            f"        {_tup(s)} = combine({', '.join(s + v)})",
        ] + (_reduce_lines(s, cols, 4) if not tiled else [
            f"    {_tup(s)} = reduce_tile({', '.join(s + [f'I{j}' for j in range(k)])}, {axis})"])
    else:
        lines += ["    for offset in range(start, end, BLOCK_N):"] + step + [
            f"        mask = {kept_tile} & {walked}",
            "        if FIRST:",
            f"            {_tup(v)} = tile_stats({x}, mask, {axis})",
            "        else:",
        ] + load_states + _reduce_lines(v, cols, 12) + [
            f"        {_tup(s)} = combine({', '.join(s + v)})",
        ]
    results = [f"r{j}" for j in range(m)]
    lines += [
        "    if LAST:",
        f"        {_tup(results)} = finish({', '.join(s)}, count, param)",
    ] + [f"        tl.store(dst{j} + at, r{j}.to(dst{j}.dtype.element_ty), mask=kept)" for j in range(m)] + [
        "    else:",
    ] + [f"        tl.store(dst{j} + at, s{j}.to(dst{j}.dtype.element_ty), mask=kept)" for j in range(k)]
    return "\n".join(lines) + "\n"


class _Pass:
    """One pass of a reduction: its launch and int arguments; ``shape``: that of the
    partial states it writes, None for the pass that writes the results."""

    __slots__ = ("replay", "ints", "shape")

    def __init__(self, launcher, grid, ints, constexprs, shape):
        self.replay, self.ints, self.shape = Replay(launcher, grid, constexprs), ints, shape

    def __call__(self, sources, dests, param):
        self.replay(*sources, *dests, *self.ints, param)


class _Plan:
    """Everything one reduction call decides from its input's layout: how the kernels
    view the input and the passes they run, kept for the next call of that layout."""

    __slots__ = ("order", "copy", "states", "passes")

    def __init__(self, order, copy, states, passes):
        self.order, self.copy, self.states, self.passes = order, copy, states, passes

    def __call__(self, x, results, param):
        sources = [_arranged(x, self.order, self.copy)] * len(self.states)
        for step in self.passes:
            if step.shape is None:
                dests = [*results, *[results[0]] * (len(self.states) - len(results))]
            else:
                dests = [torch.empty(step.shape, dtype=d, device=x.device) for d in self.states]
            step(sources, dests, param)
            sources = dests


class Reduction:
    """A reduction generated from its hooks (see the module's docstring).

    ``reduction(x, dims, results, cast, states, identities, param)`` reduces
    ``x`` over sorted ``dims`` into the contiguous ``results`` (the m outputs,
    each of the kept elements' count), loading ``x`` as ``cast``, keeping the
    state in ``states`` (k torch dtypes) starting from ``identities`` (k numbers
    that ``combine`` leaves unchanged).

    The first call of a layout (shape, strides, dtypes, alignment) plans its
    passes (view, config, split, grids); later calls of that layout replay the
    plan, which is most of the host time saved.
    """

    def __init__(self, name, combine, finish, outputs=1, lift=None, tile_stats=None, indexed=False, step=None,
                 reduce_tile=None):
        self.name = name
        self.indexed = indexed  # results depend on the elements' order
        self.mode = "accumulate" if lift is not None else "blockwise"
        self.hooks = {"combine": combine, "finish": finish}
        self.hooks.update({"lift": lift} if lift is not None else {"tile_stats": tile_stats})
        self.hooks.update({"step": step} if step is not None else {})
        self.hooks.update({"reduce_tile": reduce_tile} if reduce_tile is not None else {})
        self.outputs = outputs
        self._kernels = {}
        self._plans = {}
        _HOOKS.update(dict.fromkeys(self.hooks.values()))
        _REDUCTIONS[name] = self

    def _launcher(self, k, cols):
        key = (k, cols)
        launcher = self._kernels.get(key)
        if launcher is None:
            source = "\n".join(_hook_imports(self.hooks)) + kernel_source(
                self.mode, k, self.outputs, cols, "step" in self.hooks, "reduce_tile" in self.hooks)
            module = load_generated("reduction", f"{self.name}_{'cols' if cols else 'rows'}", source)
            launcher = self._kernels[key] = Launcher(module.kernel)
        return launcher

    def __call__(self, x, dims, results, cast, states, identities, param=0.0):
        if results[0].numel() == 0:
            return
        key = (layout_key(x), x.device, tuple(dims), cast, tuple(states), tuple(identities),
               *map(layout_key, results))
        plan = planned(self._plans, key, lambda: self._plan(x, dims, results, cast, states, identities, float(param)))
        plan(x, results, float(param))

    def _plan(self, x, dims, results, cast, states, identities, param):
        order, copy, (a, n, k) = ank_layout(x.shape, x.stride(), dims, any_order=not self.indexed)
        constexprs = {f"S{j}": TL_DTYPE[dtype] for j, dtype in enumerate(states)}
        constexprs.update({f"I{j}": value for j, value in enumerate(identities)})
        constexprs["CAST"] = TL_DTYPE[cast]
        tuner, raw = self._tuner(a, n, k, x.element_size(), states)
        config = tuner.cached(raw)
        if config is None:
            run = None
            if a[0] * n[0] * k[0] >= TUNED_FROM:
                scratch = [torch.empty_like(result) for result in results]  # never the caller's out

                def run(candidate):
                    passes = self._passes(candidate, a, n, k, states, constexprs, n[0], x.device, True)
                    _Plan(order, copy, states, passes)(x, scratch, param)

            config = tuner.resolve(raw, run)
        return _Plan(order, copy, states, self._passes(config, a, n, k, states, constexprs, n[0], x.device, True))

    def _tuner(self, a, n, k, itemsize, states):
        (A, _), (N, sn), (K, sk) = a, n, k
        if K == 1:
            return ROWS_TUNER, (self.name, A, N, sn, itemsize, states[0], len(states))
        return COLS_TUNER, (self.name, A, N, K, sn, sk, itemsize, states[0], len(states))

    def _passes(self, config, a, n, k, states, constexprs, count, device, first):
        """The passes reducing [A, N, K] with ``config``: one, or a split one and the
        passes combining its partial states (with the heuristic's config)."""
        (A, sa), (N, sn), (K, sk) = a, n, k
        span = (A - 1) * sa + (N - 1) * sn + (K - 1) * sk
        index64 = builtins.max(span, A * N * K, count) >= INT32_LIMIT
        common = dict(constexprs, INDEX64=index64, FIRST=first)
        if K == 1:
            block_a, block_n, warps, programs_per_sm = config
            split = _split(cdiv(A, block_a), N, block_n, device.index or 0, programs_per_sm)
            first_pass = _Pass(self._launcher(len(states), False), (cdiv(A, block_a), split),
                               (A, N, sa, sn, cdiv(N, split), count),
                               dict(common, SPLIT=split, BLOCK_A=block_a, BLOCK_N=block_n, LAST=split == 1,
                                    num_warps=warps),
                               None if split == 1 else (A, split))
            rest = (A, split), (split, 1), (1, 0)
        else:
            block_n, block_k, warps, programs_per_sm = config
            programs = A * cdiv(K, block_k)
            split = _split(programs, N, block_n, device.index or 0, programs_per_sm)
            first_pass = _Pass(self._launcher(len(states), True), (programs * split,),
                               (A, N, K, sa, sn, sk, cdiv(N, split), count),
                               dict(common, SPLIT=split, BLOCK_N=block_n, BLOCK_K=block_k, LAST=split == 1,
                                    num_warps=warps),
                               None if split == 1 else (A, split, K))
            rest = (A, split * K), (split, K), (K, 1)
        if split == 1:
            return [first_pass]
        tuner, raw = self._tuner(*rest, states[0].itemsize, states)
        # the second pass reads few short rows of states: never tuned
        return [first_pass] + self._passes(tuner.heuristic(*raw), *rest, states, constexprs, count, device, False)


def identity_extreme(dtype, largest):
    """The identity of max (``largest`` False: its lowest value) or min in ``dtype``."""
    if dtype.is_floating_point:
        return math.inf if largest else -math.inf
    info = torch.iinfo(dtype)
    return info.max if largest else info.min
