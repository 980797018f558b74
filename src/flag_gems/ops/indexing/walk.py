"""The kernel every indexing operator runs: a walk over an iteration shape, through index tensors.

A *walk* visits every element of a shape (any rank, any strides per operand) and moves one
value per element: ``dst[d_off] <- src[s_off]`` (or a number), where the offsets are the
element's coordinates dotted with each operand's strides, and the values of the index tensors
(read at their own strides over the same shape) add ``index * step`` to one side: the source
for a gather (``index_select``, ``gather``, ``embedding``, ``index``), the destination for a
scatter (``scatter*``, ``index_add``, ``index_put``, the embedding gradient). How the value
lands is a *write*: a store, or an atomic add, max, min or product.

Each (rank, index count, side, value kind, write) has its own kernel, generated like the
pointwise ones (``codegen.pointwise``): mergeable dims are collapsed first, the shape is tiled
as [rows x last dim] so the coordinate arithmetic is paid per row, and an index constant
along the last dim (an ``index_select``'s or an embedding's) is loaded once per row.

Index values outside their range fail a ``tl.device_assert`` (compiled in, as native CUDA
kernels assert) and are masked, so no lane reads or writes outside its tensor. On the CPU
device the operators check their indices on the host first and send bad ones to the native
kernel, which raises PyTorch's own error.
"""

from collections import namedtuple

import triton
import triton.language as tl

from ... import runtime
from ...codegen.cache import load_generated
from ...codegen.launch import Launcher, planned
from ...codegen.pointwise import collapse, tile_lines
from ...utils.layout import INT32_LIMIT, cdiv, next_power_of_2

# Keep tl.device_assert in the compiled kernels (Triton drops it unless debug is on), without
# the integer overflow checks debug mode would add to every 32-bit operation.
ASSERTS = {"debug": True, "sanitize_overflow": False}


@triton.jit
def store(base, offsets, value, mask):
    tl.store(base + offsets, value.to(base.dtype.element_ty), mask=mask)


@triton.jit
def atomic_add(base, offsets, value, mask):
    tl.atomic_add(base + offsets, value.to(base.dtype.element_ty), mask=mask, sem="relaxed")


@triton.jit
def _combined(current, value, OP: tl.constexpr):
    if OP == 0:
        result = current * value
    elif OP == 1:
        result = tl.maximum(current, value, propagate_nan=tl.PropagateNan.ALL)
    else:
        result = tl.minimum(current, value, propagate_nan=tl.PropagateNan.ALL)
    return result


@triton.jit
def _compare_and_swap(base, offsets, value, mask, OP: tl.constexpr):
    """``OP`` (0 product, 1 max, 2 min: NaN wins, as in aten) by compare-and-swap on the
    element's bits, so a NaN compares equal to itself. Masked-off lanes and lanes whose
    element already holds the result swap their element with itself."""
    element = base.dtype.element_ty
    if element.primitive_bitwidth == 64:
        bits = (base + tl.where(mask, offsets, 0)).to(tl.pointer_type(tl.int64), bitcast=True)
    else:
        bits = (base + tl.where(mask, offsets, 0)).to(tl.pointer_type(tl.int32), bitcast=True)
    operand = value.to(element)
    seen = tl.load(bits)
    wanted = tl.where(mask, _combined(seen.to(element, bitcast=True), operand, OP).to(seen.dtype, bitcast=True), seen)
    pending = wanted != seen
    while tl.max(pending.to(tl.int32)) > 0:
        before = tl.atomic_cas(bits, seen, wanted, sem="relaxed")
        pending = pending & (before != seen)
        seen = before
        combined = _combined(seen.to(element, bitcast=True), operand, OP).to(seen.dtype, bitcast=True)
        wanted = tl.where(pending, combined, seen)
        pending = pending & (wanted != seen)


@triton.jit
def atomic_mul(base, offsets, value, mask):
    _compare_and_swap(base, offsets, value, mask, 0)


@triton.jit
def atomic_max(base, offsets, value, mask):
    if base.dtype.element_ty.is_floating():
        _compare_and_swap(base, offsets, value, mask, 1)  # Triton's float atomic_max loses NaNs
    else:
        tl.atomic_max(base + offsets, value.to(base.dtype.element_ty), mask=mask, sem="relaxed")


@triton.jit
def atomic_min(base, offsets, value, mask):
    if base.dtype.element_ty.is_floating():
        _compare_and_swap(base, offsets, value, mask, 2)
    else:
        tl.atomic_min(base + offsets, value.to(base.dtype.element_ty), mask=mask, sem="relaxed")


WRITES = ("store", "atomic_add", "atomic_max", "atomic_min", "atomic_mul")


def walk_source(rank, n_indices, scatter, scalar_value, write):
    """A walk kernel's module source. ``scatter``: the indices move the destination (else the
    source); ``scalar_value``: the value is a number (``value``), not a tensor (``src``)."""
    assert write in WRITES
    tensors = ["dst"] + ([] if scalar_value else ["src"]) + [f"ix{k}" for k in range(n_indices)]
    moved = "dst" if scatter else "src"
    last = rank - 1
    sizes = [f"size{d}" for d in range(rank)]
    strides = [f"{t}_st{d}" for t in tensors for d in range(rank)]
    steps = [f"step{k}" for k in range(n_indices)] + [f"bound{k}" for k in range(n_indices)]
    unspecialized = ["dst_offset", "alpha", "skip"] + (["value"] if scalar_value else [])
    flags = "".join(f" ROW_IX{k}: tl.constexpr," for k in range(n_indices))
    lines = [
        "import triton",
        "import triton.language as tl",
        f"from {__name__} import {write} as write",
        "",
        "",
        f"@triton.jit(do_not_specialize={unspecialized!r})",
        f"def kernel(dst, {', '.join(['value' if scalar_value else 'src'] + tensors[len(tensors) - n_indices:])},",
        f"           {', '.join(sizes + strides + steps)}, n_rows, dst_offset, alpha, skip,",
        f"           BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,{flags} WRAP: tl.constexpr,",
        "           HAS_ALPHA: tl.constexpr, HAS_SKIP: tl.constexpr, INDEX64: tl.constexpr):",
    ]
    lines += tile_lines(rank, tensors) + ["    dst_row += dst_offset"]
    lines += [f"    {t}_at = {t}_row[:, None] + cols[None, :] * {t}_st{last}" for t in ("dst", "src")
              if t in tensors]
    lines.append("    ok = mask")
    for k in range(n_indices):
        lines += [
            f"    if ROW_IX{k}:",
            f"        i{k} = tl.load(ix{k} + ix{k}_row, mask=row_mask, other=0).to(tl.int64)[:, None]",
            "    else:",
            f"        i{k} = tl.load(ix{k} + (ix{k}_row[:, None] + cols[None, :] * ix{k}_st{last}), mask=mask,",
            "                     other=0).to(tl.int64)",
            "    if WRAP:",
            f"        i{k} = tl.where(i{k} < 0, i{k} + bound{k}, i{k})",
            f"    inside = (i{k} >= 0) & (i{k} < bound{k})",
            "    tl.device_assert(inside | ~mask, \"index out of bounds\")",
            "    ok = ok & inside",
            f"    {moved}_at = {moved}_at + i{k} * step{k}",
        ]
    if n_indices:
        lines += ["    if HAS_SKIP:", "        ok = ok & (i0 != skip)"]
    if scalar_value:
        lines.append("    v = value")
    else:
        lines.append(f"    v = tl.load(src + src_at, mask={'mask' if scatter else 'ok'}, other=0)")
    # in the destination's dtype first: no half-precision math (the interpreter's bf16 is wrong)
    lines += ["    if HAS_ALPHA:", "        v = v.to(dst.dtype.element_ty) * alpha",
              f"    write(dst, dst_at, v, {'ok' if scatter else 'mask'})"]
    return "\n".join(lines) + "\n"


Index = namedtuple("Index", "tensor strides step bound")
Index.__doc__ = """One index tensor of a walk: read at ``strides`` over the walk's shape, each
unit of its value moves the indexed side by ``step`` elements; values lie in [0, bound)
(or [-bound, bound) in a walk that wraps negative indices)."""


def walk_config(rows, last):
    """(BLOCK_R, BLOCK_C, num_warps) of a walk over ``rows`` x ``last`` (powers of two)."""
    block_c = min(last, 1024)
    block_r = min(rows, max(1, 4096 // block_c))
    return block_r, block_c, 4 if block_r * block_c <= 2048 else 8


_launchers = {}


def _launcher(rank, n_indices, scatter, scalar_value, write):
    key = (rank, n_indices, scatter, scalar_value, write)
    launcher = _launchers.get(key)
    if launcher is None:
        source = walk_source(*key)
        name = f"walk_r{rank}_i{n_indices}_{'scatter' if scatter else 'gather'}_{'value' if scalar_value else 'src'}"
        launcher = _launchers[key] = Launcher(load_generated("indexing", f"{name}_{write}", source).kernel)
    return launcher


class _Plan:
    """What a walk decides from its layout: its kernel, grid, int arguments and constexprs
    (None for an empty shape), kept for later walks of that layout."""

    __slots__ = ("launcher", "grid", "ints", "constexprs")

    def __init__(self, shape, operand_strides, indices, scatter, scalar, write, wrap, flags, dst_offset):
        numel = 1
        for size in shape:
            numel *= size
        self.launcher = None
        if numel == 0:
            return
        sizes, strides = collapse(list(shape), [list(s) for s in operand_strides])
        n_rows = numel // sizes[-1]
        span = max(sum((s - 1) * abs(st[d]) for d, s in enumerate(sizes)) for st in strides)
        reach = max((bound * abs(step) for _, step, bound in indices), default=0)
        block_r, block_c, warps = runtime.config("indexed_walk", walk_config)(next_power_of_2(n_rows),
                                                                               next_power_of_2(sizes[-1]))
        self.launcher = _launcher(len(sizes), len(indices), scatter, scalar, write)
        self.grid = (cdiv(n_rows, block_r) * cdiv(sizes[-1], block_c),)
        self.ints = (*sizes, *(st for tensor_strides in strides for st in tensor_strides),
                     *(step for _, step, _ in indices), *(bound for _, _, bound in indices), n_rows)
        row_flags = {f"ROW_IX{k}": strides[len(strides) - len(indices) + k][-1] == 0 for k in range(len(indices))}
        self.constexprs = dict(BLOCK_R=block_r, BLOCK_C=block_c, **row_flags, WRAP=wrap, HAS_ALPHA=flags[0],
                               HAS_SKIP=flags[1], INDEX64=max(span + reach + dst_offset, numel) >= INT32_LIMIT,
                               num_warps=warps, **ASSERTS)


_plans = {}


def walk(shape, dst, dst_strides, indices, *, src=None, src_strides=None, value=None, scatter=False,
         write="store", wrap=False, alpha=None, skip=None, dst_offset=0):
    """Move every element of ``shape``: ``dst`` (written at ``dst_strides``) takes ``src`` (read
    at ``src_strides``) or the number ``value``, the ``indices`` (``Index`` tuples) moving
    ``dst`` if ``scatter`` else ``src``. ``alpha`` scales each value; an index equal to
    ``skip`` (of the first index) moves nothing. ``dst`` is written from its element
    ``dst_offset`` on (a slice of it)."""
    operand_strides = (tuple(dst_strides),) + (() if src is None else (tuple(src_strides),)) + tuple(
        tuple(ix.strides) for ix in indices)
    layout = tuple((ix.tensor.dtype, ix.step, ix.bound) for ix in indices)
    flags = (alpha is not None, skip is not None)
    key = (tuple(shape), operand_strides, layout, scatter, src is None, write, wrap, flags, dst_offset)
    plan = planned(_plans, key, lambda: _Plan(shape, operand_strides, layout, scatter, src is None, write, wrap,
                                              flags, dst_offset))
    if plan.launcher is not None:
        plan.launcher(plan.grid, dst, value if src is None else src, *(ix.tensor for ix in indices), *plan.ints,
                      dst_offset, 1 if alpha is None else alpha, 0 if skip is None else skip, **plan.constexprs)
