"""Compaction: the elements a mask selects, in row-major order, packed to the front.

Three launches: each program counts its block's set elements (reading the mask through its
strides), one program turns the counts into each block's first output position (an exclusive
prefix sum, with the total at the end), and after the host has read the total (the output's
size: native synchronizes here too) each program writes its set elements at their positions.
What it writes is the *mode*: ``coords`` (``nonzero``: one row of coordinates per element),
``select`` (``masked_select``: self's values), ``scatter`` (``masked_scatter``: self's
element takes the source's next value), ``positions`` (of a 1-d mask: each set element's
index plus a bias), ``ranks`` (of a 1-d mask: for every element, how many set elements come
up to it, minus one). The counting and writing kernels are generated per rank, as the
walk's are (see ``walk``).
"""

import torch
import triton
import triton.language as tl

from ...codegen.cache import load_generated
from ...codegen.launch import Launcher
from ...utils.layout import INT32_LIMIT, cdiv

BLOCK = 1024


def compaction_source(rank, mode):
    """The module of the ``mode`` kernel over a mask of ``rank`` dims (``rank`` >= 1)."""
    sizes = [f"size{d}" for d in range(rank)]
    tensors = ["mask"] + (["self"] if mode in ("select", "scatter") else [])
    strides = [f"{t}_st{d}" for t in tensors for d in range(rank)]
    head = {"count": "counts", "coords": "offsets, out, out_st0, out_st1", "select": "self, offsets, out, out_st0",
            "scatter": "self, offsets, source", "positions": "offsets, out, bias", "ranks": "offsets, out"}[mode]
    lines = [
        "import triton",
        "import triton.language as tl",
        "",
        "",
        "@triton.jit",
        f"def kernel(mask, {head}, n, {', '.join(sizes + strides)}, BLOCK: tl.constexpr, INDEX64: tl.constexpr):",
        "    pid = tl.program_id(0)",
        "    if INDEX64:",
        "        pid = pid.to(tl.int64)",
        "    lin = pid * BLOCK + tl.arange(0, BLOCK)",
        "    inside = lin < n",
        "    rest = lin",
    ]
    lines += [f"    {t}_at = lin * 0" for t in tensors]
    for d in range(rank - 1, -1, -1):
        lines += [f"    c{d} = rest % size{d}", f"    rest = rest // size{d}"] if d else ["    c0 = rest"]
        lines += [f"    {t}_at += c{d} * {t}_st{d}" for t in tensors]
    lines += ["    value = tl.load(mask + mask_at, mask=inside, other=0)",
              "    if value.dtype == tl.bfloat16:",
              "        value = value.to(tl.float32)  # the interpreter compares bf16 as raw bits: -0.0 != 0",
              "    chosen = (value != 0) & inside"]
    if mode == "count":
        lines.append("    tl.store(counts + pid, tl.sum(chosen.to(tl.int32), 0))")
        return "\n".join(lines) + "\n"
    lines += ["    flags = chosen.to(tl.int64)",
              "    at = tl.load(offsets + pid) + tl.cumsum(flags, 0) - flags"]
    if mode == "coords":
        lines += [f"    tl.store(out + at * out_st0 + {d} * out_st1, c{d}, mask=chosen)" for d in range(rank)]
    elif mode == "select":
        lines.append("    tl.store(out + at * out_st0, tl.load(self + self_at, mask=chosen), mask=chosen)")
    elif mode == "positions":
        lines.append("    tl.store(out + at, (lin + bias).to(out.dtype.element_ty), mask=chosen)")
    elif mode == "ranks":
        lines.append("    tl.store(out + lin, at + flags - 1, mask=inside)")
    else:
        lines.append("    tl.store(self + self_at, tl.load(source + at, mask=chosen), mask=chosen)")
    return "\n".join(lines) + "\n"


@triton.jit
def _offsets_kernel(counts, offsets, total, programs, TILE: tl.constexpr):
    """offsets[p] = counts[0] + ... + counts[p - 1], and the total."""
    carry = tl.zeros([], tl.int64)
    for start in range(0, programs, TILE):
        at = start + tl.arange(0, TILE)
        count = tl.load(counts + at, mask=at < programs, other=0).to(tl.int64)
        tl.store(offsets + at, carry + tl.cumsum(count, 0) - count, mask=at < programs)
        carry += tl.sum(count, 0)
    tl.store(total, carry)


_OFFSETS = Launcher(_offsets_kernel)
_launchers = {}


def _launcher(rank, mode):
    launcher = _launchers.get((rank, mode))
    if launcher is None:
        module = load_generated("indexing", f"compaction_r{rank}_{mode}", compaction_source(rank, mode))
        launcher = _launchers[(rank, mode)] = Launcher(module.kernel)
    return launcher


class Compaction:
    """The positions of ``mask``'s set elements (read at ``strides`` over ``shape``, which
    other operands of the compaction share): ``count`` is their number, read on the host."""

    def __init__(self, mask, shape, strides):
        self.shape = tuple(shape) or (1,)
        self.mask, self.mask_strides = mask, tuple(strides) or (0,)
        self.numel = 1
        for size in self.shape:
            self.numel *= size
        self.programs = cdiv(self.numel, BLOCK)
        self.index64 = self.numel + BLOCK >= INT32_LIMIT
        self.count = 0
        if self.programs:
            counts = torch.empty(self.programs, dtype=torch.int32, device=mask.device)
            self.offsets = torch.empty(self.programs, dtype=torch.int64, device=mask.device)
            total = torch.empty((), dtype=torch.int64, device=mask.device)
            self._launch("count", (counts,), ())
            _OFFSETS((1,), counts, self.offsets, total, self.programs, TILE=1024)
            self.count = total.item()  # the output's size: the host must know it

    def _launch(self, mode, head, other_strides):
        _launcher(len(self.shape), mode)((self.programs,), self.mask, *head, self.numel, *self.shape,
                                         *self.mask_strides, *other_strides, BLOCK=BLOCK, INDEX64=self.index64)

    def coordinates(self, out):
        """Each set element's coordinates as a row of ``out`` ([count, rank])."""
        if self.count:
            self._launch("coords", (self.offsets, out, *out.stride()), ())
        return out

    def select(self, self_, self_strides, out):
        """``self_``'s set elements (read at ``self_strides``) into the 1-d ``out``."""
        if self.count:
            self._launch("select", (self_, self.offsets, out, out.stride(0)), tuple(self_strides) or (0,))
        return out

    def scatter(self, self_, self_strides, source):
        """``self_``'s set elements take the contiguous ``source``'s first ``count`` values."""
        if self.count:
            self._launch("scatter", (self_, self.offsets, source), tuple(self_strides) or (0,))
        return self_


    def positions(self, out, bias=0):
        """Each set element's index plus ``bias`` into the contiguous ``out`` (a 1-d mask)."""
        if self.count:
            self._launch("positions", (self.offsets, out, bias), ())
        return out

    def ranks(self, out):
        """For every element of a 1-d mask, the number of set elements up to it, minus one,
        into the contiguous int64 ``out``."""
        if self.programs:
            self._launch("ranks", (self.offsets, out), ())
        return out


def nonzero_of(mask):
    """``torch.nonzero(mask)``: an int64 [count, mask.dim()] tensor."""
    found = Compaction(mask, mask.shape, mask.stride())
    out = torch.empty((found.count, mask.dim()), dtype=torch.int64, device=mask.device)
    if mask.dim():
        found.coordinates(out)
    return out
