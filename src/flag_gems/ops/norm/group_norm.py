"""Group norm, batch norm, instance norm and weight norm, forward and backward.

Every operator here reduces a tensor per "row" and then applies a per-row
affine map, so three streaming kernels serve them all. Each sees its tensors
as [R, A, B] through strides (R the rows the statistics belong to, A and B the
two dims reduced over), so NCHW, channels_last and 2-d inputs are read in
place:

- ``_moments_kernel``: partial count / mean / M2 per row (each lane's sums
  shifted by its own first element, lanes merged once by Chan's combination:
  stable for any count, no per-element division, no reduction inside the loop);
- ``_sums_kernel``: partial sum(dy) and sum(dy * (x - center)) per row;
- ``_affine_kernel``: out = coef_dy * dy + coef_x * (x - center) + bias.

Long reductions are split over programs; small finishing kernels combine the
partials in a fixed order (deterministic, no atomics) and compute the per-row
coefficients. Forward passes thus read the input twice and write it once.

Group norm rows are (n, group) for statistics and (n, channel) for the affine
map; batch norm rows are channels; weight norm rows are the slices along dim.
"""

import torch
import triton
import triton.language as tl

from ... import runtime
from ...codegen.launch import Launcher
from ...utils.layout import cdiv, next_power_of_2
from ...codegen.pointwise import TL_DTYPE
from ...dispatch import Row

__all__ = [
    "native_group_norm", "native_group_norm_backward", "native_batch_norm", "native_batch_norm_out",
    "native_batch_norm_legit", "native_batch_norm_legit_no_stats", "native_batch_norm_backward",
    "weight_norm_interface", "weight_norm_interface_backward", "instance_norm",
]

_FLOATS = {torch.float16, torch.bfloat16, torch.float32, torch.float64} & runtime.supported_dtypes()
_HALVES = (torch.float16, torch.bfloat16)
_INT32_LIMIT = 2**31


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


@triton.jit
def _weight_norm_rows_kernel(v, g, norms, out, grad_w, grad_g, R, N, stride_v, stride_gw, BACKWARD: tl.constexpr,
                             BLOCK_R: tl.constexpr, BLOCK_N: tl.constexpr, ACC: tl.constexpr):
    """Weight norm over dim 0 with contiguous rows, each read once into registers (the
    coefficients below, without the partial sums). Writes the contiguous ``out``: w, or
    grad_v when BACKWARD (``grad_w`` given; ``grad_g`` written)."""
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    row_mask = rows < R
    cols = tl.arange(0, BLOCK_N)[None, :]
    mask = row_mask[:, None] & (cols < N)
    rows_64 = rows.to(tl.int64)[:, None]
    x = tl.load(v + rows_64 * stride_v + cols, mask=mask, other=0).to(ACC)
    gain = tl.load(g + rows, mask=row_mask, other=0).to(ACC)
    if BACKWARD:
        norm = tl.load(norms + rows, mask=row_mask, other=1).to(ACC)
        dw = tl.load(grad_w + rows_64 * stride_gw + cols, mask=mask, other=0).to(ACC)
        products = tl.sum(dw * x, axis=1)
        tl.store(grad_g + rows, (products / norm).to(grad_g.dtype.element_ty), mask=row_mask)
        result = (gain / norm)[:, None] * dw - (gain * products / (norm * norm * norm))[:, None] * x
    else:
        norm = tl.sqrt(tl.sum(x * x, axis=1))
        tl.store(norms + rows, norm.to(norms.dtype.element_ty), mask=row_mask)
        result = (gain / norm)[:, None] * x
    tl.store(out + rows_64 * N + cols, result.to(out.dtype.element_ty), mask=mask)


_MOMENTS = Launcher(_moments_kernel)
_SUMS = Launcher(_sums_kernel)
_AFFINE = Launcher(_affine_kernel)
_NORM_COEFFICIENTS = Launcher(_norm_coefficients_kernel)
_PARAM_GRADS = Launcher(_param_grads_kernel)
_GROUP_GRAD_COEFFICIENTS = Launcher(_group_grad_coefficients_kernel)
_WEIGHT_NORM_COEFFICIENTS = Launcher(_weight_norm_coefficients_kernel)
_WEIGHT_NORM_ROWS = Launcher(_weight_norm_rows_kernel)


# ----------------------------------------------------------------------------------------------
# Views, tiles, splits


def _accumulator(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


def _merged_stride(t, first, last):
    """The single stride of dims [first, last) of ``t`` seen as one dim, or None."""
    pairs = [(s, st) for s, st in zip(t.shape[first:last], t.stride()[first:last]) if s != 1]
    for (_, outer), (size, inner) in zip(pairs, pairs[1:]):
        if outer != inner * size:
            return None
    return pairs[-1][1] if pairs else 1


def _spatial(t):
    """(t, stride of its dims after the first two merged), copying ``t`` when they do not merge."""
    stride = _merged_stride(t, 2, t.dim())
    if stride is None:
        t = t.contiguous()
        stride = 1
    return t, stride


def _channel_view(tensors):
    """Tensors shaped [N, C, *] seen as [R=C, A=N, B=HxW]: (tensors, sizes, strides per tensor).
    N merges into B when every tensor allows it (channels_last, 2-d inputs)."""
    N, C = tensors[0].shape[:2]
    L = tensors[0].numel() // max(N * C, 1)
    tensors, spatial = zip(*(_spatial(t) for t in tensors))
    if all(N == 1 or L == 1 or t.stride(0) == L * s for t, s in zip(tensors, spatial)):
        strides = [(t.stride(1), 0, s if L > 1 else t.stride(0)) for t, s in zip(tensors, spatial)]
        return tensors, (C, 1, N * L), strides
    return tensors, (C, N, L), [(t.stride(1), t.stride(0), s) for t, s in zip(tensors, spatial)]


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
    return max(span, sizes[0] * sizes[1] * sizes[2]) >= _INT32_LIMIT


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


def _moments(x, sizes, strides):
    """Partial (count, mean, M2) per row of the [R, A, B] view: ([3, S, R] tensor, S)."""
    acc = _accumulator(x.dtype)
    tiles = _tiles(sizes, strides, _REDUCE_BUDGET)
    split_a, split_b, a_per, b_per = _splits(sizes, tiles, x.device)
    partials = torch.empty((3, split_a * split_b, sizes[0]), dtype=acc, device=x.device)
    _MOMENTS((cdiv(sizes[0], tiles[0]), split_a * split_b), x, partials, *sizes, *strides, a_per, b_per,
             SPLIT_B=split_b, BLOCK_R=tiles[0], BLOCK_A=tiles[1], BLOCK_B=tiles[2], ACC=TL_DTYPE[acc],
             INDEX64=_index64(sizes, [strides]), num_warps=4)
    return partials, split_a * split_b


def _sums(dy, x, center, center_div, sizes, dy_strides, x_strides):
    """Partial sum(dy) and sum(dy * (x - center[r // center_div])) per row: ([2, S, R], S)."""
    acc = _accumulator(x.dtype)
    tiles = _tiles(sizes, x_strides, _REDUCE_BUDGET // 2)
    split_a, split_b, a_per, b_per = _splits(sizes, tiles, x.device)
    partials = torch.empty((2, split_a * split_b, sizes[0]), dtype=acc, device=x.device)
    _SUMS((cdiv(sizes[0], tiles[0]), split_a * split_b), dy, x, x if center is None else center, partials,
          *sizes, *dy_strides, *x_strides, a_per, b_per, center_div, SPLIT_B=split_b, BLOCK_R=tiles[0],
          BLOCK_A=tiles[1], BLOCK_B=tiles[2], HAS_CENTER=center is not None, ACC=TL_DTYPE[acc],
          INDEX64=_index64(sizes, [dy_strides, x_strides]),
          num_warps=8 if tiles[0] * tiles[1] * tiles[2] >= 1024 else 4)
    return partials, split_a * split_b


def _affine(out, dy, x, coefs, sizes, out_strides, dy_strides, x_strides, has_bias):
    """out = coef_dy * dy + coef_x * (x - center) + bias per row (dy None: no dy term)."""
    tiles = _tiles(sizes, x_strides, _AFFINE_BUDGET)
    blocks = [cdiv(n, b) for n, b in zip(sizes, tiles)]
    acc = coefs.dtype
    _AFFINE((blocks[0] * blocks[1] * blocks[2],), out, x if dy is None else dy, x, coefs, *sizes, *out_strides,
            *(x_strides if dy is None else dy_strides), *x_strides, BLOCK_R=tiles[0], BLOCK_A=tiles[1],
            BLOCK_B=tiles[2], HAS_DY=dy is not None, HAS_BIAS=has_bias, ACC=TL_DTYPE[acc],
            INDEX64=_index64(sizes, [out_strides, x_strides] + ([] if dy is None else [dy_strides])),
            num_warps=8 if tiles[0] * tiles[1] * tiles[2] >= 2048 else 4)


def _block(n, most):
    return min(next_power_of_2(max(n, 1)), most)


def _finish_block(rows, splits):
    """Rows per finishing program, keeping its [rows, BLOCK_S] accumulator tiles in registers."""
    return _block(rows, min(256, max(16, 2048 // _block(splits, 64))))


# ----------------------------------------------------------------------------------------------
# Group norm


def _group_norm_forward(x, weight, bias, N, C, HxW, group, eps, y, mean, rstd):
    """y, mean [N, group], rstd [N, group] of the contiguous ``x`` (written in place)."""
    size = C // group * HxW
    partials, splits = _moments(x, (N * group, 1, size), (size, 0, 1))
    acc = partials.dtype
    coefs = torch.empty((4, N * C), dtype=acc, device=x.device)
    block_q = _finish_block(N * C, splits)
    _NORM_COEFFICIENTS((cdiv(N * C, block_q),), partials, x, coefs, mean, rstd,
                       x if weight is None else weight, x if bias is None else bias, x, x,
                       N * C, C, C // group, splits, N * group, size, 0.0, eps, HAS_WEIGHT=weight is not None,
                       HAS_BIAS=bias is not None, FROM_RUNNING=False, UPDATE_RUNNING=False, BLOCK_Q=block_q,
                       BLOCK_S=_block(splits, 64), ACC=TL_DTYPE[acc])
    strides = (HxW, 0, 1)
    _affine(y, None, x, coefs, (N * C, 1, HxW), strides, None, strides, has_bias=True)


def _group_stat_dtype(x, weight, bias):
    mixed = x.dtype in _HALVES and any(p is not None and p.dtype == torch.float32 for p in (weight, bias))
    return torch.float32 if mixed else x.dtype


def native_group_norm(input, weight, bias, N, C, HxW, group, eps):
    """(y, mean, rstd): group norm over [N, C, HxW]; mean/rstd are [N, group]."""
    dtype = _group_stat_dtype(input, weight, bias)
    mean = torch.empty((N, group), dtype=dtype, device=input.device)
    rstd = torch.empty((N, group), dtype=dtype, device=input.device)
    y = torch.empty_like(input)
    _group_norm_forward(input, weight, bias, N, C, HxW, group, eps, y, mean, rstd)
    return y, mean, rstd


def native_group_norm_backward(grad_out, input, mean, rstd, weight, N, C, HxW, group, output_mask):
    """(grad_input, grad_weight, grad_bias), each None where output_mask says so."""
    x = input
    dy = grad_out
    row, inner = _merged_stride(dy, 0, 2), _merged_stride(dy, 2, dy.dim())
    if row is None or inner is None:  # rows (n, c) need one stride, as do their spatial dims
        dy = dy.contiguous()
        row, inner = HxW, 1
    sizes = (N * C, 1, HxW)
    dy_strides = (row, 0, inner)
    x_strides = (HxW, 0, 1)
    partials, splits = _sums(dy, x, mean, C // group, sizes, dy_strides, x_strides)
    acc = partials.dtype
    coefs = torch.empty((4, N * C), dtype=acc, device=x.device)
    grad_input = grad_weight = grad_bias = None
    if output_mask[0]:
        _GROUP_GRAD_COEFFICIENTS((N * group,), partials, coefs, mean, rstd, x if weight is None else weight, C,
                                 C // group, splits, N * C, float(C // group * HxW), HAS_WEIGHT=weight is not None,
                                 BLOCK_G=_finish_block(C // group, splits), BLOCK_S=_block(splits, 64),
                                 ACC=TL_DTYPE[acc])
        grad_input = torch.empty_like(x)
        _affine(grad_input, dy, x, coefs, sizes, x_strides, dy_strides, x_strides, has_bias=True)
    if output_mask[1] or output_mask[2]:
        param_dtype = x.dtype if weight is None else weight.dtype
        if output_mask[1]:
            grad_weight = torch.empty((C,), dtype=param_dtype, device=x.device)
        if output_mask[2]:
            grad_bias = torch.empty((C,), dtype=param_dtype, device=x.device)
        block_c = _finish_block(C, splits)
        _PARAM_GRADS((cdiv(C, block_c),), partials, coefs, mean, rstd, x, x if grad_weight is None
                     else grad_weight, x if grad_bias is None else grad_bias, C, N, splits, N * C, N, group,
                     C // group, 1.0, 0.0, RSTD_FROM_VAR=False, HAS_WEIGHT=False, BATCH_NORM=False, TRAIN=False,
                     WANT_WEIGHT=output_mask[1], WANT_BIAS=output_mask[2], BLOCK_C=block_c,
                     BLOCK_S=_block(splits, 64), ACC=TL_DTYPE[acc])
    return grad_input, grad_weight, grad_bias


def _param_ok(p, C, x):
    return p is None or (p.dim() == 1 and p.numel() == C and p.device == x.device and p.dtype in _FLOATS)


def _group_norm_unsupported(input, weight, bias, N, C, HxW, group, eps):
    if input.dtype not in _FLOATS:
        return f"dtype {input.dtype} is not supported"
    if input.dim() < 2 or input.numel() == 0 or not input.is_contiguous():
        return "input is not a contiguous non-empty [N, C, *] tensor"
    if (input.shape[0], input.shape[1], input.numel()) != (N, C, N * C * HxW):
        return "N, C, HxW do not match the input"
    if not isinstance(group, int) or group <= 0 or C % group:
        return "C is not divisible by group"
    if not (_param_ok(weight, C, input) and _param_ok(bias, C, input)):
        return "weight or bias of another shape, dtype or device"
    dtype = _group_stat_dtype(input, weight, bias)
    if any(p is not None and p.dtype != dtype for p in (weight, bias)):
        return "weight and bias dtypes differ from the input's"
    if dtype != input.dtype and not input.is_cpu:
        return "half input with fp32 parameters (taken by the CPU kernel only: native raises here)"
    return None


def _group_norm_backward_unsupported(grad_out, input, mean, rstd, weight, N, C, HxW, group, output_mask):
    reason = _group_norm_unsupported(input, weight, None, N, C, HxW, group, 0.0)
    if reason is not None:
        return reason
    if grad_out.shape != input.shape or grad_out.dtype != input.dtype or grad_out.device != input.device:
        return "grad_out differs from input"
    for stat in (mean, rstd):
        if stat.numel() != N * group or not stat.is_contiguous() or stat.dtype not in _FLOATS:
            return "mean or rstd of another shape or layout"
    return None


# ----------------------------------------------------------------------------------------------
# Batch norm


def _like(x):
    """An empty tensor like ``x``, channels_last when ``x`` is laid out so (as torch suggests)."""
    if x.dim() in (4, 5) and not x.is_contiguous():
        order = sorted(range(x.dim()), key=lambda d: -x.stride(d))
        if order[0] == 0 and order[-1] == 1:
            fmt = torch.channels_last if x.dim() == 4 else torch.channels_last_3d
            return torch.empty_like(x, memory_format=fmt)
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _stat_dtype(x):
    """save_mean / save_invstd dtype: the accumulation type (fp32 for halves), as on CUDA."""
    return _accumulator(x.dtype)


def _batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps,
                out=None, save_mean=None, save_invstd=None):
    """(out, save_mean, save_invstd); eval mode saves running_mean and 1/sqrt(running_var + eps)."""
    C = input.shape[1]
    if out is None:
        out = _like(input)
    if save_mean is None:
        save_mean = torch.empty((C,), dtype=_stat_dtype(input), device=input.device)
        save_invstd = torch.empty((C,), dtype=_stat_dtype(input), device=input.device)
    (x, y), sizes, (x_strides, y_strides) = _channel_view((input, out))
    if training:
        partials, splits = _moments(x, sizes, x_strides)
    else:
        partials, splits = x, 1
    acc = _accumulator(input.dtype)
    coefs = torch.empty((4, C), dtype=acc, device=input.device)
    block_q = _finish_block(C, splits)
    _NORM_COEFFICIENTS((cdiv(C, block_q),), partials, x, coefs, save_mean, save_invstd,
                       x if weight is None else weight, x if bias is None else bias,
                       x if running_mean is None else running_mean, x if running_var is None else running_var,
                       C, C, 1, splits, C, x_strides[0], float(momentum), eps, HAS_WEIGHT=weight is not None,
                       HAS_BIAS=bias is not None, FROM_RUNNING=not training,
                       UPDATE_RUNNING=training and running_mean is not None, BLOCK_Q=block_q,
                       BLOCK_S=_block(splits, 64), ACC=TL_DTYPE[acc])
    _affine(y, None, x, coefs, sizes, y_strides, None, x_strides, has_bias=True)
    if y is not out:
        out.copy_(y)
    return out, save_mean, save_invstd


def native_batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps):
    return _batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps)


def native_batch_norm_out(input, weight, bias, running_mean, running_var, training, momentum, eps, *,
                          out, save_mean, save_invstd):
    return _batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps,
                       out, save_mean, save_invstd)


def native_batch_norm_legit(input, weight, bias, running_mean, running_var, training, momentum, eps, *,
                            out=None, save_mean=None, save_invstd=None):
    return _batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps,
                       out, save_mean, save_invstd)


def native_batch_norm_legit_no_stats(input, weight, bias, training, momentum, eps, *,
                                     out=None, save_mean=None, save_invstd=None):
    return _batch_norm(input, weight, bias, None, None, training, momentum, eps, out, save_mean, save_invstd)


def native_batch_norm_backward(grad_out, input, weight, running_mean, running_var, save_mean, save_invstd,
                               train, eps, output_mask):
    """Training: the batch statistics depend on the input; eval: they are the running constants."""
    C = input.shape[1]
    grad_input = None
    if output_mask[0]:
        grad_input = _like(input)
        (x, dy, dx), sizes, (x_strides, dy_strides, dx_strides) = _channel_view((input, grad_out, grad_input))
    else:
        (x, dy), sizes, (x_strides, dy_strides) = _channel_view((input, grad_out))
    center, rstd = (save_mean, save_invstd) if train else (running_mean, running_var)
    acc = _accumulator(input.dtype)
    if train or output_mask[1] or output_mask[2]:
        partials, splits = _sums(dy, x, center, 1, sizes, dy_strides, x_strides)
        rows = 1
    else:  # eval, input gradient only: no sums needed
        partials, splits, rows = x, 1, 0
    coefs = torch.empty((4, C), dtype=acc, device=input.device)
    param_dtype = x.dtype if weight is None else weight.dtype
    grad_weight = torch.empty((C,), dtype=param_dtype, device=x.device) if output_mask[1] else None
    grad_bias = torch.empty((C,), dtype=param_dtype, device=x.device) if output_mask[2] else None
    block_c = _finish_block(C, splits)
    _PARAM_GRADS((cdiv(C, block_c),), partials, coefs, center, rstd, x if weight is None else weight,
                 x if grad_weight is None else grad_weight, x if grad_bias is None else grad_bias, C, rows,
                 splits, C, 1, 1, 1, float(sizes[1] * sizes[2]), eps, RSTD_FROM_VAR=not train,
                 HAS_WEIGHT=weight is not None, BATCH_NORM=True, TRAIN=train, WANT_WEIGHT=output_mask[1],
                 WANT_BIAS=output_mask[2], BLOCK_C=block_c, BLOCK_S=_block(splits, 64), ACC=TL_DTYPE[acc])
    if output_mask[0]:
        _affine(dx, dy, x, coefs, sizes, dx_strides, dy_strides, x_strides, has_bias=train)
        if dx is not grad_input:
            grad_input.copy_(dx)
    return grad_input, grad_weight, grad_bias


def _stats_ok(t, C, x):
    return t is None or (t.dim() == 1 and t.numel() == C and t.device == x.device and t.dtype in _FLOATS
                         and t.is_contiguous())


def _batch_norm_unsupported(input, weight, bias, running_mean, running_var, training, momentum, eps,
                            out=None, save_mean=None, save_invstd=None):
    if input.dtype not in _FLOATS:
        return f"dtype {input.dtype} is not supported"
    if input.dim() < 2 or input.numel() == 0:
        return "input is not a non-empty [N, C, *] tensor"
    C = input.shape[1]
    if not all(_stats_ok(t, C, input) for t in (weight, bias, running_mean, running_var)):
        return "weight, bias or running stats of another shape, dtype, layout or device"
    if (running_mean is None) != (running_var is None) or (not training and running_mean is None):
        return "running stats missing"
    if out is not None:
        if out.shape != input.shape or out.dtype != input.dtype or out.device != input.device:
            return "out differs from the result"
        if _merged_stride(out, 2, out.dim()) is None:
            return "out's spatial dims do not merge"
        for saved in (save_mean, save_invstd):
            if (saved.shape != (C,) or saved.dtype != _stat_dtype(input) or saved.device != input.device
                    or not saved.is_contiguous()):
                return "save_mean / save_invstd differ from the result"
    return None


def _legit_no_stats_unsupported(input, weight, bias, training, momentum, eps, *, out=None, save_mean=None,
                                save_invstd=None):
    return _batch_norm_unsupported(input, weight, bias, None, None, training, momentum, eps, out, save_mean,
                                   save_invstd)


def _batch_norm_backward_unsupported(grad_out, input, weight, running_mean, running_var, save_mean, save_invstd,
                                     train, eps, output_mask):
    reason = _batch_norm_unsupported(input, weight, None, running_mean, running_var, True, 0.0, eps)
    if reason is not None:
        return reason
    if grad_out.shape != input.shape or grad_out.dtype != input.dtype or grad_out.device != input.device:
        return "grad_out differs from input"
    needed = (save_mean, save_invstd) if train else (running_mean, running_var)
    if any(t is None for t in needed) or not all(_stats_ok(t, input.shape[1], input) for t in needed):
        return "statistics missing or of another shape"
    if weight is None and (output_mask[1] or output_mask[2]):
        return "parameter gradients without a weight"
    return None


# ----------------------------------------------------------------------------------------------
# Weight norm


def _weight_norm_view(t, dim):
    """[R = t.shape[dim], 1, rest] with strides, copying ``t`` when its other dims do not merge."""
    if dim == 0:
        rest = _merged_stride(t, 1, t.dim())
        if rest is None:
            t, rest = t.contiguous(), 1
        return t, (t.stride(0) if t.dim() else 1, 0, rest)
    rest = _merged_stride(t, 0, dim)
    if rest is None:
        t, rest = t.contiguous(), t.shape[-1]
    return t, (t.stride(-1), 0, rest)


def weight_norm_rows_config(R, N, tensors):
    """(BLOCK_R, BLOCK_N, num_warps) of the one-pass dim-0 kernel holding ``tensors``
    row tiles in registers, or None when a row is too long for it."""
    block_n = next_power_of_2(N)
    if block_n * tensors > 16384:
        return None
    block_r = min(next_power_of_2(R), max(1, 2048 // block_n))
    tile = block_r * block_n
    return block_r, block_n, 4 if tile <= 1024 else 8 if tile <= 4096 else 16


def _weight_norm_rows(v, g, norms, out, grad_w=None, grad_g=None):
    """The one-pass kernel for dim 0 when rows are contiguous and short enough; False when it does not apply."""
    N = v.numel() // v.shape[0]
    tensors = (1 if grad_w is None else 2) * (2 if v.dtype == torch.float64 else 1)
    if any(_merged_stride(t, 1, t.dim()) != 1 for t in (v, grad_w) if t is not None):
        return False
    config = runtime.config("weight_norm_rows", weight_norm_rows_config)(v.shape[0], N, tensors)
    if config is None:
        return False
    block_r, block_n, warps = config
    R = v.shape[0]
    _WEIGHT_NORM_ROWS((cdiv(R, block_r),), v, g, norms, out, v if grad_w is None else grad_w,
                      g if grad_g is None else grad_g, R, N, v.stride(0), v.stride(0) if grad_w is None else
                      grad_w.stride(0), BACKWARD=grad_w is not None, BLOCK_R=block_r, BLOCK_N=block_n,
                      ACC=TL_DTYPE[_accumulator(v.dtype)], num_warps=warps)
    return True


def weight_norm_interface(v, g, dim=0):
    """(w, norms): w = g * v / ||v||, the norm over every dim but ``dim`` (0 or the last)."""
    R = v.shape[dim]
    norms = torch.empty_strided(g.shape, g.stride(), dtype=_accumulator(g.dtype), device=g.device)
    w = torch.empty_like(v, memory_format=torch.contiguous_format)
    if dim == 0 and _weight_norm_rows(v, g, norms, w):
        return w, norms
    sizes = (R, 1, v.numel() // R)
    v_view, v_strides = _weight_norm_view(v, dim)
    partials, splits = _sums(v_view, v_view, None, 1, sizes, v_strides, v_strides)
    acc = partials.dtype
    coefs = torch.empty((4, R), dtype=acc, device=v.device)
    block_r = _finish_block(R, splits)
    _WEIGHT_NORM_COEFFICIENTS((cdiv(R, block_r),), partials, coefs, g, norms, g, R, splits, BACKWARD=False,
                              BLOCK_R=block_r, BLOCK_S=_block(splits, 64), ACC=TL_DTYPE[acc])
    _, w_strides = _weight_norm_view(w, dim)
    _affine(w, None, v_view, coefs, sizes, w_strides, None, v_strides, has_bias=False)
    return w, norms


def weight_norm_interface_backward(grad_w, saved_v, saved_g, saved_norms, dim):
    """(grad_v, grad_g) with P = sum(grad_w * v) per slice: grad_g = P / norm,
    grad_v = g / norm * grad_w - g * P / norm^3 * v."""
    R = saved_v.shape[dim]
    grad_g = torch.empty_like(saved_g, memory_format=torch.contiguous_format)
    grad_v = torch.empty_like(saved_v, memory_format=torch.contiguous_format)
    if dim == 0 and _weight_norm_rows(saved_v, saved_g, saved_norms, grad_v, grad_w, grad_g):
        return grad_v, grad_g
    sizes = (R, 1, saved_v.numel() // R)
    v_view, v_strides = _weight_norm_view(saved_v, dim)
    g_view, g_strides = _weight_norm_view(grad_w, dim)
    partials, splits = _sums(g_view, v_view, None, 1, sizes, g_strides, v_strides)
    acc = partials.dtype
    coefs = torch.empty((4, R), dtype=acc, device=saved_v.device)
    block_r = _finish_block(R, splits)
    _WEIGHT_NORM_COEFFICIENTS((cdiv(R, block_r),), partials, coefs, saved_g, saved_norms, grad_g, R, splits,
                              BACKWARD=True, BLOCK_R=block_r, BLOCK_S=_block(splits, 64), ACC=TL_DTYPE[acc])
    _, out_strides = _weight_norm_view(grad_v, dim)
    _affine(grad_v, g_view, v_view, coefs, sizes, out_strides, g_strides, v_strides, has_bias=False)
    return grad_v, grad_g


def _weight_norm_unsupported(v, g, dim=0):
    if v.dtype not in _FLOATS or g.dtype not in _FLOATS or g.device != v.device:
        return "dtype or device not supported"
    if v.numel() == 0 or v.dim() == 0 or not isinstance(dim, int):
        return "empty input or invalid dim"
    if dim not in (0, v.dim() - 1):  # torch wraps negative dims before this op
        return "dim other than the first or the last"
    if g.numel() != v.shape[dim] or not g.is_contiguous():
        return "g does not hold one contiguous value per slice"
    return None


def _weight_norm_backward_unsupported(grad_w, saved_v, saved_g, saved_norms, dim):
    reason = _weight_norm_unsupported(saved_v, saved_g, dim)
    if reason is not None:
        return reason
    if grad_w.shape != saved_v.shape or grad_w.dtype != saved_v.dtype or grad_w.device != saved_v.device:
        return "grad_w differs from v"
    if not saved_v.is_contiguous():
        return "saved_v not contiguous (native raises)"
    if saved_norms.numel() != saved_g.numel() or not saved_norms.is_contiguous() or saved_norms.dtype not in _FLOATS:
        return "norms of another shape or layout"
    return None


# ----------------------------------------------------------------------------------------------
# Instance norm: group norm with one channel per group, or batch norm on the running stats


class _InstanceNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, weight, bias, running_mean, running_var, use_input_stats, momentum, eps):
        N, C = input.shape[:2]
        HxW = input.numel() // (N * C)
        ctx.use_input_stats, ctx.shape, ctx.eps = use_input_stats, (N, C, HxW), eps
        if not use_input_stats:
            out = _batch_norm(input, weight, bias, running_mean, running_var, False, momentum, eps)[0]
            ctx.save_for_backward(input, weight, running_mean, running_var)
            return out
        x = input.contiguous()
        acc = _accumulator(input.dtype)
        mean = torch.empty((N, C), dtype=acc, device=input.device)
        rstd = torch.empty((N, C), dtype=acc, device=input.device)
        out = torch.empty_like(x)
        _group_norm_forward(x, weight, bias, N, C, HxW, C, eps, out, mean, rstd)
        if running_mean is not None:
            # As torch: each instance updates its own copy of the running stats (unbiased
            # variance), then the copies are averaged over the batch.
            var = (rstd.reciprocal().square() - eps) * (HxW / (HxW - 1))
            running_mean.mul_(1 - momentum).add_(mean.mean(0).to(running_mean.dtype), alpha=momentum)
            running_var.mul_(1 - momentum).add_(var.mean(0).to(running_var.dtype), alpha=momentum)
        ctx.save_for_backward(x, weight, mean, rstd)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        mask = ctx.needs_input_grad[:3]
        if ctx.use_input_stats:
            x, weight, mean, rstd = ctx.saved_tensors
            N, C, HxW = ctx.shape
            grads = native_group_norm_backward(grad_out.reshape(x.shape), x, mean, rstd, weight, N, C, HxW, C, mask)
        else:
            x, weight, running_mean, running_var = ctx.saved_tensors
            grads = native_batch_norm_backward(grad_out, x, weight, running_mean, running_var, None, None, False,
                                               ctx.eps, mask)
        return (*grads, None, None, None, None, None)


def instance_norm(input, weight=None, bias=None, running_mean=None, running_var=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """torch.nn.functional.instance_norm, computed per (n, c) by our kernels, with autograd."""
    fallback = (input.dtype not in _FLOATS or input.dim() < 2 or input.numel() == 0
                or not all(_stats_ok(t, input.shape[1], input) for t in (weight, bias, running_mean, running_var))
                or (running_mean is None) != (running_var is None) or (not use_input_stats and running_mean is None)
                or (use_input_stats and input.numel() // (input.shape[0] * input.shape[1]) < 2))
    if fallback:  # torch computes it, or raises its own error
        return torch.nn.functional.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats,
                                                 momentum, eps)
    return _InstanceNorm.apply(input, weight, bias, running_mean, running_var, use_input_stats, momentum, eps)


ATEN = (
    Row("native_group_norm", native_group_norm, _group_norm_unsupported),
    Row("native_group_norm_backward", native_group_norm_backward, _group_norm_backward_unsupported),
    Row("native_batch_norm", native_batch_norm, _batch_norm_unsupported),
    Row("native_batch_norm.out", native_batch_norm_out, _batch_norm_unsupported),
    Row("_native_batch_norm_legit", native_batch_norm_legit, _batch_norm_unsupported),
    Row("_native_batch_norm_legit.out", native_batch_norm_legit, _batch_norm_unsupported),
    Row("_native_batch_norm_legit.no_stats", native_batch_norm_legit_no_stats, _legit_no_stats_unsupported),
    Row("_native_batch_norm_legit.no_stats_out", native_batch_norm_legit_no_stats, _legit_no_stats_unsupported),
    Row("native_batch_norm_backward", native_batch_norm_backward, _batch_norm_backward_unsupported),
    Row("_weight_norm_interface", weight_norm_interface, _weight_norm_unsupported),
    Row("_weight_norm_interface_backward", weight_norm_interface_backward, _weight_norm_backward_unsupported),
)
