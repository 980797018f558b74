"""The kernels that group, batch, instance and weight norm are built from, and the host
code that sizes and launches them.

Every operator of those modules reduces a tensor per "row" and then applies a
per-row affine map, so three streaming kernels serve them all. Each sees its
tensors as [R, A, B] through strides (R the rows the statistics belong to, A
and B the two dims reduced over), so NCHW, channels_last and 2-d inputs are
read in place:

- ``_moments_kernel``: partial count / mean / M2 per row (each lane's sums
  shifted by its own first element, lanes merged once by Chan's combination:
  stable for any count, no per-element division, no reduction inside the loop);
- ``_sums_kernel``: partial sum(dy) and sum(dy * (x - center)) per row;
- ``_affine_kernel``: out = coef_dy * dy + coef_x * (x - center) + bias.

Long reductions are split over programs; small finishing kernels (also here,
as they share the partials' helpers) combine the partials in a fixed order
(deterministic, no atomics) and compute the per-row coefficients. Forward
passes thus read the input twice and write it once.
"""

import torch
import triton
import triton.language as tl

from ... import runtime
from ...codegen.launch import Launcher
from ...codegen.pointwise import TL_DTYPE
from ...utils.dtypes import float_accumulator
from ...utils.layout import INT32_LIMIT, cdiv, next_power_of_2



# ----------------------------------------------------------------------------------------------
# Streaming kernels over [R, A, B] views


@triton.jit
def _offsets(r, a, b, s_r, s_a, s_b, INDEX64: tl.constexpr):
    if INDEX64:
        r, a, b = r.to(tl.int64), a.to(tl.int64), b.to(tl.int64)
    return r * s_r + a * s_a + b * s_b


@triton.jit
def _split_range(split, SPLIT_B: tl.constexpr, A, B, a_per, b_per):
    """The [a_lo, a_hi) x [b_lo, b_hi) rectangle of the reduction this program covers."""
    a_lo = (split // SPLIT_B) * a_per
    b_lo = (split % SPLIT_B) * b_per
    return a_lo, tl.minimum(a_lo + a_per, A), b_lo, tl.minimum(b_lo + b_per, B)


@triton.jit
def _tile(t, b_tiles, a_lo, b_lo, BLOCK_A: tl.constexpr, BLOCK_B: tl.constexpr):
    """The a and b indices of tile ``t`` of a split's rectangle, b fastest. The kernels walk the
    tiles in one flat, software-pipelined loop: loads of later tiles are in flight while one
    is summed (1.3x over nested a and b loops on the H100)."""
    a = a_lo + (t // b_tiles) * BLOCK_A + tl.arange(0, BLOCK_A)[None, :, None]
    b = b_lo + (t % b_tiles) * BLOCK_B + tl.arange(0, BLOCK_B)[None, None, :]
    return a, b


@triton.jit
def _moments_kernel(x, partials, R, A, B, s_r, s_a, s_b, a_per, b_per, SPLIT_B: tl.constexpr,
                    BLOCK_R: tl.constexpr, BLOCK_A: tl.constexpr, BLOCK_B: tl.constexpr,
                    ACC: tl.constexpr, INDEX64: tl.constexpr):
    """partials[k, split, r] (k: count, mean, M2) of x[r, a, b] over this split's rectangle; the
    mean is taken relative to x[r, 0, 0], so that fp32 keeps its precision for offset data.

    Each lane sums its elements' offsets from its own first element (shifted sums: the
    cancellation in M2 = S2 - S1^2 / n is bounded by the lane's own spread), and the lanes
    merge once, at the end: the loop itself has no cross-warp reduction to wait on."""
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    split = tl.program_id(1)
    a_lo, a_hi, b_lo, b_hi = _split_range(split, SPLIT_B, A, B, a_per, b_per)
    r = rows[:, None, None]
    a_lane = tl.arange(0, BLOCK_A)[None, :, None]
    b_lane = tl.arange(0, BLOCK_B)[None, None, :]
    first = tl.load(x + rows.to(tl.int64) * s_r, mask=rows < R, other=0).to(ACC)[:, None, None]
    lane_mask = (r < R) & (a_lo + a_lane < a_hi) & (b_lo + b_lane < b_hi)
    shift = tl.load(x + _offsets(r, a_lo + a_lane, b_lo + b_lane, s_r, s_a, s_b, INDEX64), mask=lane_mask,
                    other=0).to(ACC)
    s1 = tl.zeros([BLOCK_R, BLOCK_A, BLOCK_B], ACC)
    s2 = tl.zeros([BLOCK_R, BLOCK_A, BLOCK_B], ACC)
    b_tiles = tl.cdiv(b_hi - b_lo, BLOCK_B)
    for t in tl.range(0, tl.cdiv(a_hi - a_lo, BLOCK_A) * b_tiles, num_stages=3):
        a, b = _tile(t, b_tiles, a_lo, b_lo, BLOCK_A, BLOCK_B)
        mask = (r < R) & (a < a_hi) & (b < b_hi)
        v = tl.load(x + _offsets(r, a, b, s_r, s_a, s_b, INDEX64), mask=mask, other=0).to(ACC)
        d = tl.where(mask, v - shift, 0)
        s1 += d
        s2 += d * d
    # Elements per lane: the tiles whose a and b reach it.
    n_a = (tl.maximum(a_hi - a_lo - a_lane, 0) + BLOCK_A - 1) // BLOCK_A
    n_b = (tl.maximum(b_hi - b_lo - b_lane, 0) + BLOCK_B - 1) // BLOCK_B
    n = tl.where(r < R, n_a * n_b, 0).to(ACC)
    some = n > 0
    per = 1 / tl.maximum(n, 1)
    lane_mean = tl.where(some, (shift - first) + s1 * per, 0)
    lane_m2 = tl.where(some, tl.maximum(s2 - s1 * s1 * per, 0), 0)
    # Chan et al. over the lanes: M2 = sum(M2_lane) + sum(n_lane * (mean_lane - mean)^2).
    count = tl.sum(tl.sum(n, axis=2), axis=1)
    mean = tl.sum(tl.sum(n * lane_mean, axis=2), axis=1) / tl.maximum(count, 1)
    spread = lane_mean - mean[:, None, None]
    m2 = tl.sum(tl.sum(lane_m2 + n * spread * spread, axis=2), axis=1)
    out = partials + split * R + rows
    stride = tl.num_programs(1) * R
    mask = rows < R
    tl.store(out, count, mask=mask)
    tl.store(out + stride, mean, mask=mask)
    tl.store(out + 2 * stride, m2, mask=mask)


@triton.jit
def _sums_kernel(dy, x, center, partials, R, A, B, dy_r, dy_a, dy_b, x_r, x_a, x_b, a_per, b_per,
                 center_div, SPLIT_B: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_A: tl.constexpr,
                 BLOCK_B: tl.constexpr, HAS_CENTER: tl.constexpr, ACC: tl.constexpr, INDEX64: tl.constexpr):
    """partials[0, split, r] = sum(dy), partials[1, split, r] = sum(dy * (x - center[r // center_div]))."""
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    split = tl.program_id(1)
    a_lo, a_hi, b_lo, b_hi = _split_range(split, SPLIT_B, A, B, a_per, b_per)
    r = rows[:, None, None]
    if HAS_CENTER:
        c = tl.load(center + rows // center_div, mask=rows < R, other=0).to(ACC)[:, None, None]
    sum_dy = tl.zeros([BLOCK_R, BLOCK_A, BLOCK_B], ACC)
    sum_dyx = tl.zeros([BLOCK_R, BLOCK_A, BLOCK_B], ACC)
    b_tiles = tl.cdiv(b_hi - b_lo, BLOCK_B)
    for t in tl.range(0, tl.cdiv(a_hi - a_lo, BLOCK_A) * b_tiles, num_stages=3):
        a, b = _tile(t, b_tiles, a_lo, b_lo, BLOCK_A, BLOCK_B)
        mask = (r < R) & (a < a_hi) & (b < b_hi)
        g = tl.load(dy + _offsets(r, a, b, dy_r, dy_a, dy_b, INDEX64), mask=mask, other=0).to(ACC)
        v = tl.load(x + _offsets(r, a, b, x_r, x_a, x_b, INDEX64), mask=mask, other=0).to(ACC)
        if HAS_CENTER:
            v = tl.where(mask, v - c, 0)
        sum_dy += g
        sum_dyx += g * v
    out = partials + split * R + rows
    mask = rows < R
    tl.store(out, tl.sum(tl.sum(sum_dy, axis=2), axis=1), mask=mask)
    tl.store(out + tl.num_programs(1) * R, tl.sum(tl.sum(sum_dyx, axis=2), axis=1), mask=mask)


@triton.jit
def _affine_kernel(out, dy, x, coefs, R, A, B, o_r, o_a, o_b, dy_r, dy_a, dy_b, x_r, x_a, x_b,
                   BLOCK_R: tl.constexpr, BLOCK_A: tl.constexpr, BLOCK_B: tl.constexpr,
                   HAS_DY: tl.constexpr, HAS_BIAS: tl.constexpr, ACC: tl.constexpr, INDEX64: tl.constexpr):
    """out = coef_dy[r] * dy + coef_x[r] * (x - center[r]) + bias[r], coefs = [coef_dy, coef_x, center, bias]."""
    pid = tl.program_id(0)
    r_blocks = tl.cdiv(R, BLOCK_R)
    a_blocks = tl.cdiv(A, BLOCK_A)
    rows = (pid % r_blocks) * BLOCK_R + tl.arange(0, BLOCK_R)
    rest = pid // r_blocks
    r = rows[:, None, None]
    a = ((rest % a_blocks) * BLOCK_A + tl.arange(0, BLOCK_A))[None, :, None]
    b = ((rest // a_blocks) * BLOCK_B + tl.arange(0, BLOCK_B))[None, None, :]
    mask = (r < R) & (a < A) & (b < B)
    row_mask = rows < R
    coef_x = tl.load(coefs + R + rows, mask=row_mask, other=0)[:, None, None]
    center = tl.load(coefs + 2 * R + rows, mask=row_mask, other=0)[:, None, None]
    v = tl.load(x + _offsets(r, a, b, x_r, x_a, x_b, INDEX64), mask=mask, other=0).to(ACC)
    result = coef_x * (v - center)
    if HAS_DY:
        coef_dy = tl.load(coefs + rows, mask=row_mask, other=0)[:, None, None]
        g = tl.load(dy + _offsets(r, a, b, dy_r, dy_a, dy_b, INDEX64), mask=mask, other=0).to(ACC)
        result += coef_dy * g
    if HAS_BIAS:
        result += tl.load(coefs + 3 * R + rows, mask=row_mask, other=0)[:, None, None]
    tl.store(out + _offsets(r, a, b, o_r, o_a, o_b, INDEX64), result.to(out.dtype.element_ty), mask=mask)


# ----------------------------------------------------------------------------------------------
# Finishing kernels: combine partials, per-row coefficients, parameter gradients


@triton.jit
def _combine_moments(partials, stats, mask, S, R, BLOCK_S: tl.constexpr, ACC: tl.constexpr):
    """(count, mean, M2) of ``stats`` from their S partial moments: exact two-pass combination.
    Loops accumulate whole [rows, BLOCK_S] tiles and reduce once after them: a reduction inside
    a loop whose result is used twice trips Triton 3.6's OptimizeThreadLocality pass."""
    totals = tl.zeros([stats.shape[0], BLOCK_S], ACC)
    weighted = tl.zeros([stats.shape[0], BLOCK_S], ACC)
    for s0 in range(0, S, BLOCK_S):
        s = s0 + tl.arange(0, BLOCK_S)[None, :]
        m = mask[:, None] & (s < S)
        at = partials + s * R + stats[:, None]
        count = tl.load(at, mask=m, other=0)
        totals += count
        weighted += count * tl.load(at + S * R, mask=m, other=0)
    total = tl.sum(totals, axis=1)
    mean = tl.sum(weighted, axis=1) / tl.maximum(total, 1)
    m2s = tl.zeros([stats.shape[0], BLOCK_S], ACC)
    for s0 in range(0, S, BLOCK_S):
        s = s0 + tl.arange(0, BLOCK_S)[None, :]
        m = mask[:, None] & (s < S)
        at = partials + s * R + stats[:, None]
        delta = tl.load(at + S * R, mask=m, other=0) - mean[:, None]
        m2s += tl.load(at + 2 * S * R, mask=m, other=0) + tl.load(at, mask=m, other=0) * delta * delta
    return total, mean, tl.sum(m2s, axis=1)


@triton.jit
def _sum_partials(partials, index, mask, S, R, BLOCK_S: tl.constexpr, ACC: tl.constexpr):
    """sum over s of partials[s, index] (tiles accumulated, reduced once: see _combine_moments)."""
    acc = tl.zeros([index.shape[0], BLOCK_S], ACC)
    for s0 in range(0, S, BLOCK_S):
        s = s0 + tl.arange(0, BLOCK_S)[None, :]
        acc += tl.load(partials + s * R + index[:, None], mask=mask[:, None] & (s < S), other=0)
    return tl.sum(acc, axis=1)


@triton.jit
def _load_or(pointer, index, mask, default, PRESENT: tl.constexpr, ACC: tl.constexpr):
    if PRESENT:
        return tl.load(pointer + index, mask=mask, other=default).to(ACC)
    return tl.full(index.shape, default, ACC)


@triton.jit
def _norm_coefficients_kernel(partials, x, coefs, mean_out, rstd_out, weight, bias, running_mean, running_var,
                              Q, C, group, S, R, x_stat_stride, momentum, eps,
                              HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr, FROM_RUNNING: tl.constexpr,
                              UPDATE_RUNNING: tl.constexpr, BLOCK_Q: tl.constexpr, BLOCK_S: tl.constexpr,
                              ACC: tl.constexpr):
    """Per affine row q (statistic q // group, channel q % C): mean and rstd from the partial
    moments (relative to the statistic's first element, at x + stat * x_stat_stride) or the
    running stats, the affine coefficients, and the running-stat update."""
    q = tl.program_id(0) * BLOCK_Q + tl.arange(0, BLOCK_Q)
    mask = q < Q
    stat = q // group
    channel = q % C
    if FROM_RUNNING:
        mean = tl.load(running_mean + channel, mask=mask, other=0).to(ACC)
        var = tl.load(running_var + channel, mask=mask, other=1).to(ACC)
    else:
        count, mean, m2 = _combine_moments(partials, stat, mask, S, R, BLOCK_S, ACC)
        mean += tl.load(x + stat.to(tl.int64) * x_stat_stride, mask=mask, other=0).to(ACC)
        var = m2 / count
    rstd = 1.0 / tl.sqrt(var + eps)
    first = mask & (q % group == 0)
    tl.store(mean_out + stat, mean.to(mean_out.dtype.element_ty), mask=first)
    tl.store(rstd_out + stat, rstd.to(rstd_out.dtype.element_ty), mask=first)
    if UPDATE_RUNNING:
        old_mean = tl.load(running_mean + channel, mask=mask, other=0).to(ACC)
        old_var = tl.load(running_var + channel, mask=mask, other=0).to(ACC)
        unbiased = var * (count / (count - 1))
        tl.store(running_mean + channel, ((1 - momentum) * old_mean + momentum * mean)
                 .to(running_mean.dtype.element_ty), mask=mask)
        tl.store(running_var + channel, ((1 - momentum) * old_var + momentum * unbiased)
                 .to(running_var.dtype.element_ty), mask=mask)
    tl.store(coefs + Q + q, rstd * _load_or(weight, channel, mask, 1.0, HAS_WEIGHT, ACC), mask=mask)
    tl.store(coefs + 2 * Q + q, mean, mask=mask)
    tl.store(coefs + 3 * Q + q, _load_or(bias, channel, mask, 0.0, HAS_BIAS, ACC), mask=mask)


@triton.jit
def _param_grads_kernel(partials, coefs, mean, rstd, weight, grad_weight, grad_bias, C, J, S, R, stat_rows,
                        groups, group_size, count, eps, RSTD_FROM_VAR: tl.constexpr, HAS_WEIGHT: tl.constexpr,
                        BATCH_NORM: tl.constexpr, TRAIN: tl.constexpr, WANT_WEIGHT: tl.constexpr,
                        WANT_BIAS: tl.constexpr,
                        BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr, ACC: tl.constexpr):
    """Per channel c: sums over rows j of partial sums at [s, j * C + c], each scaled by the rstd of
    its statistic (j % stat_rows) * groups + c // group_size, giving grad_weight / grad_bias.
    Batch norm (one row, one statistic per channel) also writes its input-gradient coefficients;
    in eval mode (not TRAIN) the statistics are constants: dx = w * rstd * dy."""
    c = tl.program_id(0) * BLOCK_C + tl.arange(0, BLOCK_C)
    mask = c < C
    sum_dy = tl.zeros([BLOCK_C], ACC)
    sum_dyx = tl.zeros([BLOCK_C], ACC)
    for j in range(0, J):
        index = j * C + c
        stat = (j % stat_rows) * groups + c // group_size
        scale = tl.load(rstd + stat, mask=mask, other=1).to(ACC)
        if RSTD_FROM_VAR:
            scale = 1.0 / tl.sqrt(scale + eps)
        sum_dy += _sum_partials(partials, index, mask, S, R, BLOCK_S, ACC)
        sum_dyx += _sum_partials(partials + S * R, index, mask, S, R, BLOCK_S, ACC) * scale
    if WANT_WEIGHT:
        tl.store(grad_weight + c, sum_dyx.to(grad_weight.dtype.element_ty), mask=mask)
    if WANT_BIAS:
        tl.store(grad_bias + c, sum_dy.to(grad_bias.dtype.element_ty), mask=mask)
    if BATCH_NORM:
        rstd_c = tl.load(rstd + c, mask=mask, other=1).to(ACC)
        if RSTD_FROM_VAR:
            rstd_c = 1.0 / tl.sqrt(rstd_c + eps)
        coef_dy = rstd_c * _load_or(weight, c, mask, 1.0, HAS_WEIGHT, ACC)
        tl.store(coefs + c, coef_dy, mask=mask)
        if TRAIN:
            tl.store(coefs + C + c, -coef_dy * rstd_c * sum_dyx / count, mask=mask)
            tl.store(coefs + 2 * C + c, tl.load(mean + c, mask=mask, other=0).to(ACC), mask=mask)
            tl.store(coefs + 3 * C + c, -coef_dy * sum_dy / count, mask=mask)
        else:
            tl.store(coefs + C + c, tl.zeros([BLOCK_C], ACC), mask=mask)
            tl.store(coefs + 2 * C + c, tl.zeros([BLOCK_C], ACC), mask=mask)


@triton.jit
def _group_grad_coefficients_kernel(partials, coefs, mean, rstd, weight, C, group_size, S, R, count,
                                    HAS_WEIGHT: tl.constexpr, BLOCK_G: tl.constexpr, BLOCK_S: tl.constexpr,
                                    ACC: tl.constexpr):
    """Group norm input gradient per (n, c) row: with S1 = sum_c w_c sum(dy), S2 = sum_c w_c
    sum(dy (x - mean)) over the group, dx = rstd w_c dy - rstd^3 S2 / D (x - mean) - rstd S1 / D."""
    stat = tl.program_id(0)
    first = stat * group_size
    groups = C // group_size
    channel0 = (stat % groups) * group_size
    m = tl.load(mean + stat).to(ACC)
    r = tl.load(rstd + stat).to(ACC)
    s1 = tl.zeros([BLOCK_G], ACC)
    s2 = tl.zeros([BLOCK_G], ACC)
    for i in range(0, group_size, BLOCK_G):
        offs = i + tl.arange(0, BLOCK_G)
        mask = offs < group_size
        w = _load_or(weight, channel0 + offs, mask, 1.0, HAS_WEIGHT, ACC)
        s1 += w * _sum_partials(partials, first + offs, mask, S, R, BLOCK_S, ACC)
        s2 += w * _sum_partials(partials + S * R, first + offs, mask, S, R, BLOCK_S, ACC)
    coef_x = -r * r * r * tl.sum(s2, axis=0) / count
    bias = -r * tl.sum(s1, axis=0) / count
    for i in range(0, group_size, BLOCK_G):
        offs = i + tl.arange(0, BLOCK_G)
        mask = offs < group_size
        w = _load_or(weight, channel0 + offs, mask, 1.0, HAS_WEIGHT, ACC)
        q = first + offs
        tl.store(coefs + q, r * w, mask=mask)
        tl.store(coefs + R + q, tl.zeros([BLOCK_G], ACC) + coef_x, mask=mask)
        tl.store(coefs + 2 * R + q, tl.zeros([BLOCK_G], ACC) + m, mask=mask)
        tl.store(coefs + 3 * R + q, tl.zeros([BLOCK_G], ACC) + bias, mask=mask)


@triton.jit
def _weight_norm_coefficients_kernel(partials, coefs, g, norms, grad_g, R, S, BACKWARD: tl.constexpr,
                                     BLOCK_R: tl.constexpr, BLOCK_S: tl.constexpr, ACC: tl.constexpr):
    """Forward: norms = sqrt(sum v^2), w = g / norm * v. Backward, with P = sum(grad_w v):
    grad_g = P / norm, grad_v = g / norm * grad_w - g P / norm^3 * v."""
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    mask = rows < R
    gain = tl.load(g + rows, mask=mask, other=0).to(ACC)
    products = _sum_partials(partials + S * R, rows, mask, S, R, BLOCK_S, ACC)
    if BACKWARD:
        norm = tl.load(norms + rows, mask=mask, other=1).to(ACC)
        tl.store(grad_g + rows, (products / norm).to(grad_g.dtype.element_ty), mask=mask)
        tl.store(coefs + rows, gain / norm, mask=mask)
        tl.store(coefs + R + rows, -gain * products / (norm * norm * norm), mask=mask)
    else:
        norm = tl.sqrt(products)
        tl.store(norms + rows, norm.to(norms.dtype.element_ty), mask=mask)
        tl.store(coefs + R + rows, gain / norm, mask=mask)
    tl.store(coefs + 2 * R + rows, tl.zeros([BLOCK_R], ACC), mask=mask)


_MOMENTS = Launcher(_moments_kernel)
_SUMS = Launcher(_sums_kernel)
_AFFINE = Launcher(_affine_kernel)
NORM_COEFFICIENTS = Launcher(_norm_coefficients_kernel)
PARAM_GRADS = Launcher(_param_grads_kernel)
GROUP_GRAD_COEFFICIENTS = Launcher(_group_grad_coefficients_kernel)
WEIGHT_NORM_COEFFICIENTS = Launcher(_weight_norm_coefficients_kernel)


# ----------------------------------------------------------------------------------------------
# Tiles, splits and launches


def norm_tiles(R, A, B, rows_inner, budget):
    """(BLOCK_R, BLOCK_A, BLOCK_B) of about ``budget`` elements: the contiguous dim widest,
    so that loads coalesce (R when rows are innermost, as with channels_last, else B)."""
    p2 = next_power_of_2
    if rows_inner:
        block_r = min(p2(R), 64)
        block_b = min(p2(B), max(1, budget // block_r))
        block_a = min(p2(A), max(1, budget // (block_r * block_b)))
    else:
        block_b = min(p2(B), budget)
        block_a = min(p2(A), max(1, budget // block_b))
        block_r = min(p2(R), max(1, budget // (block_a * block_b)))
    return block_r, block_a, block_b


def _tiles(sizes, strides, budget):
    R, A, B = sizes
    rows_inner = R > 1 and strides[0] == 1 and B > 1
    return runtime.config("norm_tiles", norm_tiles)(R, A, B, rows_inner, budget)


def _index64(sizes, strides_list):
    span = max(sum((n - 1) * s for n, s in zip(sizes, strides)) for strides in strides_list)
    return max(span, sizes[0] * sizes[1] * sizes[2]) >= INT32_LIMIT


def _splits(sizes, tiles, device):
    """(SPLIT_A, SPLIT_B, a_per, b_per): enough programs per row block to fill the device."""
    (R, A, B), (block_r, block_a, block_b) = sizes, tiles
    programs = cdiv(R, block_r)
    target = runtime.multiprocessor_count(device.index or 0) * 4
    work = cdiv(A, block_a) * cdiv(B, block_b)
    if programs >= target or work < 8:
        return 1, 1, A, B
    want = min(cdiv(target, programs), cdiv(work, 4), 1024)
    split_a = min(want, cdiv(A, block_a))
    split_b = min(cdiv(want, split_a), cdiv(B, block_b))
    a_per = cdiv(cdiv(A, split_a), block_a) * block_a
    b_per = cdiv(cdiv(B, split_b), block_b) * block_b
    return cdiv(A, a_per), cdiv(B, b_per), a_per, b_per


_REDUCE_BUDGET = 4096
_AFFINE_BUDGET = 4096


def partial_moments(x, sizes, strides):
    """Partial (count, mean, M2) per row of the [R, A, B] view: ([3, S, R] tensor, S)."""
    acc = float_accumulator(x.dtype)
    tiles = _tiles(sizes, strides, _REDUCE_BUDGET)
    split_a, split_b, a_per, b_per = _splits(sizes, tiles, x.device)
    partials = torch.empty((3, split_a * split_b, sizes[0]), dtype=acc, device=x.device)
    _MOMENTS((cdiv(sizes[0], tiles[0]), split_a * split_b), x, partials, *sizes, *strides, a_per, b_per,
             SPLIT_B=split_b, BLOCK_R=tiles[0], BLOCK_A=tiles[1], BLOCK_B=tiles[2], ACC=TL_DTYPE[acc],
             INDEX64=_index64(sizes, [strides]), num_warps=4)
    return partials, split_a * split_b


def partial_sums(dy, x, center, center_div, sizes, dy_strides, x_strides):
    """Partial sum(dy) and sum(dy * (x - center[r // center_div])) per row: ([2, S, R], S)."""
    acc = float_accumulator(x.dtype)
    tiles = _tiles(sizes, x_strides, _REDUCE_BUDGET // 2)
    split_a, split_b, a_per, b_per = _splits(sizes, tiles, x.device)
    partials = torch.empty((2, split_a * split_b, sizes[0]), dtype=acc, device=x.device)
    _SUMS((cdiv(sizes[0], tiles[0]), split_a * split_b), dy, x, x if center is None else center, partials,
          *sizes, *dy_strides, *x_strides, a_per, b_per, center_div, SPLIT_B=split_b, BLOCK_R=tiles[0],
          BLOCK_A=tiles[1], BLOCK_B=tiles[2], HAS_CENTER=center is not None, ACC=TL_DTYPE[acc],
          INDEX64=_index64(sizes, [dy_strides, x_strides]),
          num_warps=8 if tiles[0] * tiles[1] * tiles[2] >= 1024 else 4)
    return partials, split_a * split_b


def affine(out, dy, x, coefs, sizes, out_strides, dy_strides, x_strides, has_bias):
    """out = coef_dy * dy + coef_x * (x - center) + bias per row (dy None: no dy term)."""
    tiles = _tiles(sizes, x_strides, _AFFINE_BUDGET)
    blocks = [cdiv(n, b) for n, b in zip(sizes, tiles)]
    acc = coefs.dtype
    _AFFINE((blocks[0] * blocks[1] * blocks[2],), out, x if dy is None else dy, x, coefs, *sizes, *out_strides,
            *(x_strides if dy is None else dy_strides), *x_strides, BLOCK_R=tiles[0], BLOCK_A=tiles[1],
            BLOCK_B=tiles[2], HAS_DY=dy is not None, HAS_BIAS=has_bias, ACC=TL_DTYPE[acc],
            INDEX64=_index64(sizes, [out_strides, x_strides] + ([] if dy is None else [dy_strides])),
            num_warps=8 if tiles[0] * tiles[1] * tiles[2] >= 2048 else 4)


def block(n, most):
    """``n`` rounded up to a power of two, at most ``most``."""
    return min(next_power_of_2(max(n, 1)), most)


def finish_block(rows, splits):
    """Rows per finishing program, keeping its [rows, BLOCK_S] accumulator tiles in registers."""
    return block(rows, min(256, max(16, 2048 // block(splits, 64))))
