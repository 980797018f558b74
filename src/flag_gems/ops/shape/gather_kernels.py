"""The gather kernels: every output element computes the source element it copies.

A kernel walks an *index space* of ``rank`` dims in tiles of [rows x last dim]; the
row index is split into the outer dims once per row, so index arithmetic is paid per
row, not per element. Along each dim a constexpr *mode* turns the index into the
source coordinate (identity, shifted with a fill value outside, wrapped, reflected or
clamped), and an optional *pair condition* between two dims (lower or upper triangle,
one diagonal) sends the rest to the fill value. A kernel reads up to ``sources``
tensors, each over its own index space and its own range of programs, and writes
them to one output at their own offsets: cat joins all its inputs in one launch.

Sources are generated per (rank, sources), as codegen's pointwise kernels are, and
kept as files so Triton's on-disk cache serves later processes.
"""

import triton
import triton.language as tl

from ...codegen.cache import load_generated
from ...codegen.launch import Launcher

# Modes: what a dim's index i reads from the source (``size``: the source's size
# along the dim, ``shift``: the padding before it or the roll's shift).
IDENTITY = 0
PAD = 1  # i - shift; outside [0, size) reads the fill value (constant_pad_nd)
WRAP = 2  # i - shift, wrapped into [0, size) (roll; 0 <= shift < size)
REFLECT = 3  # i - shift, mirrored at both edges without repeating them (reflection_pad)
CLAMP = 4  # i - shift, clamped into [0, size) (replication_pad)

# Pair conditions between dims P and Q (index j along Q minus index i along P, against k).
NO_PAIR = 0
LOWER = 1  # j - i <= k keeps the element (tril)
UPPER = 2  # j - i >= k keeps the element (triu)
DIAGONAL = 3  # j - i == k keeps the element (diag_embed, diagonal_backward)

_PAD = tl.constexpr(PAD)
_WRAP = tl.constexpr(WRAP)
_REFLECT = tl.constexpr(REFLECT)
_CLAMP = tl.constexpr(CLAMP)
_LOWER = tl.constexpr(LOWER)
_UPPER = tl.constexpr(UPPER)


@triton.jit
def source_coordinate(i, size, shift, MODE: tl.constexpr):
    """The source coordinate read for index ``i`` along a dim of mode MODE."""
    if MODE == _WRAP:
        j = i - shift
        j = tl.where(j < 0, j + size, j)
    elif MODE == _REFLECT:
        j = tl.abs(i - shift)
        j = tl.where(j >= size, 2 * (size - 1) - j, j)
    elif MODE == _CLAMP:
        j = tl.minimum(tl.maximum(i - shift, 0), size - 1)
    elif MODE == _PAD:
        j = i - shift
    else:
        j = i
    return j


@triton.jit
def pair_holds(i, j, k, PAIR: tl.constexpr):
    """Whether the element at index i along P and j along Q keeps its value."""
    if PAIR == _LOWER:
        holds = j - i <= k
    elif PAIR == _UPPER:
        holds = j - i >= k
    else:
        holds = j - i == k
    return holds


def _tile_source(rank):
    """``copy_tile``: one tile of one source copied (each source's branch calls it, so no
    name is defined in two branches of the kernel's ``if``, where Triton would need one
    type for it)."""
    last = rank - 1
    dims = range(rank)
    params = ["pid", "out", "src", "fill_value", "pair_k", *_shared_params(rank), *_per_source(rank, "")]
    lines = [
        "@triton.jit",
        f"def copy_tile({', '.join(params)},",
        f"              {', '.join(f'{name}: tl.constexpr' for name in _tile_constexprs(rank))}):",
        "tile = pid - first",
        "if INDEX64:",
        "    tile = tile.to(tl.int64)",
        f"col_blocks = tl.cdiv(size{last}, BLOCK_C)",
        "rows = (tile // col_blocks) * BLOCK_R + tl.arange(0, BLOCK_R)",
        "cols = (tile % col_blocks) * BLOCK_C + tl.arange(0, BLOCK_C)",
        f"mask = (rows < row_count)[:, None] & (cols < size{last})[None, :]",
        "src_row = rows * 0 + base",
        "out_row = rows * 0 + out_base",
        "keep_row = rows >= 0",
        "rest = rows",
    ]
    for d in range(last - 1, -1, -1):
        if d > 0:
            lines += [f"i{d} = rest % size{d}", f"rest = rest // size{d}"]
        else:
            lines.append(f"i{d} = rest")
        lines += [
            f"j{d} = source_coordinate(i{d}, map_size{d}, shift{d}, MODE{d})",
            f"if MODE{d} == {PAD}:",
            f"    keep_row = keep_row & (j{d} >= 0) & (j{d} < map_size{d})",
            f"src_row += j{d} * st{d}",
            f"out_row += i{d} * out_st{d}",
            f"i{d} = i{d}[:, None]",  # from here on, as a column of the tile
        ]
    lines += [
        f"j{last} = source_coordinate(cols, map_size{last}, shift{last}, MODE{last})",
        "keep = mask & keep_row[:, None]",
        f"if MODE{last} == {PAD}:",
        f"    keep = keep & ((j{last} >= 0) & (j{last} < map_size{last}))[None, :]",
        f"i{last} = cols[None, :]",
        f"if PAIR != {NO_PAIR}:",
    ]
    for d in dims:
        lines += [f"    if PAIR_P == {d}:", f"        pair_i = i{d}",
                  f"    if PAIR_Q == {d}:", f"        pair_j = i{d}"]
    lines += [
        "    keep = keep & pair_holds(pair_i, pair_j, pair_k, PAIR)",
        f"src_at = src_row[:, None] + (j{last} * st{last})[None, :]",
        f"out_at = out_row[:, None] + (cols * out_st{last})[None, :]",
        "value = tl.load(src + src_at, mask=keep, other=0).to(out.dtype.element_ty)",
        "tl.store(out + out_at, tl.where(keep, value, fill_value), mask=mask)",
    ]
    return lines[:3] + ["    " + line for line in lines[3:]]


def _shared_params(rank):
    """What every source shares per dim: the output's strides and the modes' parameters."""
    return ([f"out_st{d}" for d in range(rank)] + [f"map_size{d}" for d in range(rank)]
            + [f"shift{d}" for d in range(rank)])


def _per_source(rank, prefix):
    """A source's parameters: its index space's sizes, its strides, the offset of its
    origin, where its part of the output starts, its rows and its first program."""
    return ([f"{prefix}size{d}" for d in range(rank)] + [f"{prefix}st{d}" for d in range(rank)]
            + [f"{prefix}{name}" for name in ("base", "out_base", "row_count", "first")])


def _tile_constexprs(rank):
    return [f"MODE{d}" for d in range(rank)] + ["PAIR", "PAIR_P", "PAIR_Q", "BLOCK_R", "BLOCK_C", "INDEX64"]


def gather_source(rank, sources):
    """The kernel's source for an index space of ``rank`` dims and ``sources`` inputs."""
    params = ["out", *(f"src{k}" for k in range(sources)), "fill", "pair_k", *_shared_params(rank)]
    for k in range(sources):
        params += _per_source(rank, f"s{k}_")
    constexprs = _tile_constexprs(rank) + ["FILL_BITS"]
    lines = [
        "import triton",
        "import triton.language as tl",
        f"from {__name__} import pair_holds, source_coordinate",
        "",
        "",
        *_tile_source(rank),
        "",
        "",
        '@triton.jit(do_not_specialize=["fill", "pair_k"])',
        f"def kernel({', '.join(params)},",
        f"           {', '.join(f'{name}: tl.constexpr' for name in constexprs)}):",
        "    pid = tl.program_id(0)",
        "    if FILL_BITS:  # an fp64 fill value, passed as its bits",
        "        fill_value = fill.to(tl.int64).to(tl.float64, bitcast=True)",
        "    else:",
        "        fill_value = tl.cast(fill, out.dtype.element_ty)",
    ]
    shared = ", ".join(_shared_params(rank))
    settings = ", ".join(f"{name}={name}" for name in _tile_constexprs(rank))
    for k in range(sources):
        if sources == 1:
            branch = None
        elif k == 0:
            branch = "    if pid < s1_first:"
        elif k < sources - 1:
            branch = f"    elif pid < s{k + 1}_first:"
        else:
            branch = "    else:"
        if branch is not None:
            lines.append(branch)
        lines.append(f"{'        ' if branch else '    '}copy_tile(pid, out, src{k}, fill_value, pair_k, {shared}, "
                     f"{', '.join(_per_source(rank, f's{k}_'))}, {settings})")
    return "\n".join(lines) + "\n"


_launchers = {}


def gather_launcher(rank, sources):
    """The Launcher of the gather kernel for ``rank`` dims and ``sources`` inputs."""
    key = (rank, sources)
    launcher = _launchers.get(key)
    if launcher is None:
        module = load_generated("shape", f"gather_rank{rank}_sources{sources}", gather_source(rank, sources))
        launcher = _launchers[key] = Launcher(module.kernel)
    return launcher
