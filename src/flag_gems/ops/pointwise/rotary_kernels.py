"""The rotary embedding kernel and its launch plans.

Every caller reduces to one picture: q and k as rows of ``head_dim`` elements indexed by
three row dims (missing leading dims have size 1), and, per row, where its cos/sin row
starts: ``i0 * index_0 + i1 * index_1 + i2 * index_2`` either directly (cos/sin broadcast
over some row dims, stride 0 there) or through a position id read from ``positions`` at
that index (times the table's row stride). The first ``2 * half`` elements of a row are
rotated, pairs (j, j + half) or, interleaved, (2j, 2j + 1); the rest is copied.

A pair (x1, x2) with the cos/sin of each member (c1, s1) and (c2, s2) becomes
(x1 c1 - x2 s1, x2 c2 + x1 s2); the backward is the transposed map, which for the usual
shared angle (c1 = c2, s1 = s2) is the rotation by minus the angle. FlagGems' tables hold
one angle per pair (second_half = 0); Hugging Face's hold a value per element, the second
half ``second_half`` elements of the table further on.
"""

from typing import NamedTuple

import torch
import triton
import triton.language as tl

from ... import runtime
from ...codegen.launch import Launcher, Replay
from ...codegen.pointwise import TL_DTYPE
from ...utils.layout import cdiv, contiguous_strides, next_power_of_2


@triton.jit
def _rotate_rows(x, out, cos, sin, positions, program, rows, n1, n2, xs0, xs1, xs2, xsd, os0, os1, os2, osd,
                 index_0, index_1, index_2, cos_row_stride, cos_col_stride, second_half, positions_limit, half,
                 rest, BLOCK_ROWS: tl.constexpr, BLOCK_HALF: tl.constexpr, BLOCK_REST: tl.constexpr,
                 INTERLEAVED: tl.constexpr, HAS_POSITIONS: tl.constexpr, BACKWARD: tl.constexpr,
                 COPY_REST: tl.constexpr, ACC: tl.constexpr):
    """Rotates rows [program * BLOCK_ROWS, ...) of ``x`` into ``out`` (see the module's docstring)."""
    r = program.to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    row_mask = r < rows
    i2 = r % n2
    i1 = (r // n2) % n1
    i0 = r // n2 // n1
    index = i0 * index_0 + i1 * index_1 + i2 * index_2
    if HAS_POSITIONS:
        position = tl.load(positions + index, mask=row_mask, other=0).to(tl.int64)
        in_table = (position >= 0) & (position < positions_limit)
        tl.device_assert(in_table | ~row_mask, "position id out of range of the cos/sin table")
        table_rows = position * cos_row_stride
        # An id out of range (with device asserts off) gives NaN, never a read out of bounds.
        table_mask = row_mask & in_table
    else:
        table_rows = index
        table_mask = row_mask
    pair = tl.arange(0, BLOCK_HALF)
    mask = row_mask[:, None] & (pair < half)[None, :]
    table = table_rows[:, None] + (pair * cos_col_stride)[None, :]
    table_mask = table_mask[:, None] & mask
    c1 = tl.load(cos + table, mask=table_mask, other=float("nan")).to(ACC)
    s1 = tl.load(sin + table, mask=table_mask, other=float("nan")).to(ACC)
    c2 = tl.load(cos + table + second_half, mask=table_mask, other=float("nan")).to(ACC)
    s2 = tl.load(sin + table + second_half, mask=table_mask, other=float("nan")).to(ACC)
    if INTERLEAVED:
        first = pair * 2
        second = first + 1
    else:
        first = pair
        second = pair + half
    x_rows = (i0 * xs0 + i1 * xs1 + i2 * xs2)[:, None]
    out_rows = (i0 * os0 + i1 * os1 + i2 * os2)[:, None]
    x1 = tl.load(x + x_rows + (first * xsd)[None, :], mask=mask).to(ACC)
    x2 = tl.load(x + x_rows + (second * xsd)[None, :], mask=mask).to(ACC)
    if BACKWARD:
        y1 = x1 * c1 + x2 * s2
        y2 = x2 * c2 - x1 * s1
    else:
        y1 = x1 * c1 - x2 * s1
        y2 = x2 * c2 + x1 * s2
    tl.store(out + out_rows + (first * osd)[None, :], y1, mask=mask)
    tl.store(out + out_rows + (second * osd)[None, :], y2, mask=mask)
    if COPY_REST:
        column = 2 * half + tl.arange(0, BLOCK_REST)
        rest_mask = row_mask[:, None] & (column < 2 * half + rest)[None, :]
        values = tl.load(x + x_rows + (column * xsd)[None, :], mask=rest_mask)
        tl.store(out + out_rows + (column * osd)[None, :], values, mask=rest_mask)


@triton.jit
def _rotary_kernel(q, k, q_out, k_out, cos, sin, positions, q_programs,
                   q_rows, q_n1, q_n2, qs0, qs1, qs2, qsd, qos0, qos1, qos2, qosd,
                   k_rows, k_n1, k_n2, ks0, ks1, ks2, ksd, kos0, kos1, kos2, kosd,
                   index_0, index_1, index_2, cos_row_stride, cos_col_stride, second_half, positions_limit,
                   half, rest, BLOCK_ROWS: tl.constexpr, BLOCK_HALF: tl.constexpr, BLOCK_REST: tl.constexpr,
                   INTERLEAVED: tl.constexpr, HAS_POSITIONS: tl.constexpr, BACKWARD: tl.constexpr,
                   COPY_REST: tl.constexpr, ACC: tl.constexpr):
    """q and k in one launch: the first ``q_programs`` programs take q's rows, the others k's."""
    program = tl.program_id(0)
    if program < q_programs:
        _rotate_rows(q, q_out, cos, sin, positions, program, q_rows, q_n1, q_n2, qs0, qs1, qs2, qsd,
                     qos0, qos1, qos2, qosd, index_0, index_1, index_2, cos_row_stride, cos_col_stride,
                     second_half, positions_limit, half, rest, BLOCK_ROWS, BLOCK_HALF, BLOCK_REST,
                     INTERLEAVED, HAS_POSITIONS, BACKWARD, COPY_REST, ACC)
    else:
        _rotate_rows(k, k_out, cos, sin, positions, program - q_programs, k_rows, k_n1, k_n2, ks0, ks1, ks2, ksd,
                     kos0, kos1, kos2, kosd, index_0, index_1, index_2, cos_row_stride, cos_col_stride,
                     second_half, positions_limit, half, rest, BLOCK_ROWS, BLOCK_HALF, BLOCK_REST,
                     INTERLEAVED, HAS_POSITIONS, BACKWARD, COPY_REST, ACC)


_ROTARY = Launcher(_rotary_kernel)


class Geometry(NamedTuple):
    """Where each row's cos/sin are (see the module's docstring): the same for q and k."""

    index: tuple  # (index_0, index_1, index_2): per row dim, into cos/sin or into positions
    has_positions: bool
    cos_row_stride: int  # what a position id steps in cos/sin
    cos_col_stride: int
    second_half: int  # where the second half's cos/sin start, relative to the first's
    positions_limit: int  # the table's rows
    half: int  # rotary_dim // 2
    interleaved: bool
    acc: torch.dtype  # what the kernel computes in


def rotary_config(rows, half, rest):
    """(BLOCK_ROWS, BLOCK_HALF, BLOCK_REST, num_warps): about 1024 pairs per program, each pair
    holding six values (x1, x2 and the cos/sin of both) in registers."""
    block_half = next_power_of_2(half)
    return max(1, min(next_power_of_2(rows), 1024 // block_half)), block_half, max(1, next_power_of_2(rest)), 4


def _row_dims(shape, strides):
    """(sizes, strides) of the three row dims of a [..., head_dim] layout of rank 2 to 4, and the
    last dim's stride: missing leading dims have size 1."""
    pad = 4 - len(shape)
    return (1,) * pad + tuple(shape[:-1]), (0,) * pad + tuple(strides[:-1]), strides[-1]


def _tensor_ints(shape, strides, out_strides):
    sizes, row_strides, last = _row_dims(shape, strides)
    _, out_row_strides, out_last = _row_dims(shape, out_strides)
    return (sizes[0] * sizes[1] * sizes[2], sizes[1], sizes[2], *row_strides, last, *out_row_strides, out_last)


class RotaryLaunch:
    """One launch layout of the kernel, decided once: ``launch(q, k, q_out, k_out, cos, sin,
    positions)`` replays it. q and k have rank 2 to 4 and one head_dim; the outputs are q and k
    themselves (``in_place``) or contiguous. The caller keys its launches on everything Triton
    specializes on (the tensors' layouts, dtypes and alignment)."""

    __slots__ = ("ints", "replay")

    def __init__(self, geometry, q, k, in_place=False, backward=False):
        q_ints, k_ints = (_tensor_ints(t.shape, t.stride(), t.stride() if in_place else contiguous_strides(t.shape))
                          for t in (q, k))
        rest = q.shape[-1] - 2 * geometry.half
        block_rows, block_half, block_rest, warps = runtime.config("rotary", rotary_config)(
            max(q_ints[0], k_ints[0]), geometry.half, rest)
        q_programs = cdiv(q_ints[0], block_rows)
        programs = q_programs + cdiv(k_ints[0], block_rows)
        self.ints = (q_programs, *q_ints, *k_ints, *geometry.index, geometry.cos_row_stride, geometry.cos_col_stride,
                     geometry.second_half, geometry.positions_limit, geometry.half, rest)
        self.replay = None if programs == 0 else Replay(_ROTARY, (programs,), dict(
            BLOCK_ROWS=block_rows, BLOCK_HALF=block_half, BLOCK_REST=block_rest,
            INTERLEAVED=geometry.interleaved, HAS_POSITIONS=geometry.has_positions, BACKWARD=backward,
            COPY_REST=rest > 0 and not in_place, ACC=TL_DTYPE[geometry.acc], num_warps=warps))

    def __call__(self, q, k, q_out, k_out, cos, sin, positions):
        if self.replay is not None:
            self.replay(q, k, q_out, k_out, cos, sin, cos if positions is None else positions, *self.ints)
