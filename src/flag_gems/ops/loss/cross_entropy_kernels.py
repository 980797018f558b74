"""The Triton kernels of ``cross_entropy_loss`` (cross_entropy.py) and their default tiles.

The forward reads the logits once per row (running max and sum of exponentials per
lane), for class-index or probability targets, with label smoothing, weight,
ignore_index and every reduction, without writing log-probabilities; the backward
recomputes softmax from the logits and the saved per-row log-sum-exp, writing the
gradient in one pass. With GRAD the forward also writes the gradient for an incoming
1, reading each row a second time right after its first pass (from L2); that gradient
may overwrite the logits (``fused_linear_cross_entropy`` does). SOFTCAP (a float, or
None) caps the logits as the loss sees them to SOFTCAP * tanh(x / SOFTCAP), Gemma's
final logit softcapping, and multiplies the gradient by its derivative.

Class targets outside [0, C) (other than ignore_index) are masked, not asserted on:
their loss and weight are NaN and their gradient row zero (on the CPU device such
calls go native, which raises).
"""

import triton
import triton.language as tl

from ...codegen.launch import Launcher
from ...codegen.tl_math import ieee_div, tanh
from ...utils.layout import next_power_of_2
from .common import one_sample_mean as _one_sample_mean, store_reduced as _store_reduced  # as the kernels call them


@triton.jit
def _online_lane(m, s, v):
    """Per-lane running max ``m`` and sum ``s`` of exp(value - m) after ``v``: one exp
    per value, exp(-|v - m|), scaling the old sum when v is the new max."""
    m_new = tl.maximum(m, v)
    e = tl.exp(tl.minimum(m, v) - m_new)
    e = tl.where(m_new == float("-inf"), 0.0, e)
    return m_new, tl.where(v > m, s * e + 1, s + e)


@triton.jit
def _load_logits(at, mask, other, ACC: tl.constexpr, SOFTCAP: tl.constexpr):
    """Logits as the loss sees them: in ACC, capped where SOFTCAP is set; ``other`` where masked."""
    v = tl.load(at, mask=mask, other=other).to(ACC)
    if SOFTCAP is not None:
        v = tl.where(mask, SOFTCAP * tanh(v / SOFTCAP), other)
    return v


@triton.jit
def _ce_spread(q, qx, weight_lanes, v, mask, cols, col_mask, t_rows, st_c, weight, smoothing, C,
               PROBS: tl.constexpr, HAS_WEIGHT: tl.constexpr):
    """Adds a tile's share of sum(q) and sum(q * x) when q is spread over the classes
    (probability targets or label smoothing), and of the class weights."""
    if HAS_WEIGHT:
        wc = tl.load(weight + cols, mask=col_mask, other=0).to(v.dtype)
    else:
        wc = col_mask.to(v.dtype)
    finite_v = tl.where(mask, v, 0)
    if PROBS:
        p = tl.load(t_rows[:, None] + cols[None, :] * st_c, mask=mask, other=0).to(v.dtype)
        qc = wc[None, :] * (p * (1 - smoothing) + smoothing / C)
        q += qc
        qx += qc * finite_v
    else:
        qx += wc[None, :] * finite_v
        weight_lanes += wc
    return q, qx, weight_lanes


@triton.jit
def _ce_target_weight(t, weight, ignore_index, C, HAS_WEIGHT: tl.constexpr, ACC: tl.constexpr):
    """(counted, hit, w): whether each row's class target counts (not ignored), whether
    it is in [0, C), and its weight: 0 when not hit, NaN when counted but out of range
    (see the module doc: no assert, a NaN)."""
    counted = t != ignore_index
    in_range = (t >= 0) & (t < C)
    hit = counted & in_range
    if HAS_WEIGHT:
        w = tl.load(weight + t, mask=hit, other=0).to(ACC)
    else:
        w = hit.to(ACC)
    return counted, hit, tl.where(counted & ~in_range, float("nan"), w)


@triton.jit
def _ce_weight_kernel(target, weight, total, M, C, K, st_n, st_k, ignore_index, PROBS: tl.constexpr,
                      HAS_WEIGHT: tl.constexpr, BLOCK: tl.constexpr, ACC: tl.constexpr, INDEX64: tl.constexpr):
    """total = a mean's denominator, summed as the forward's rows would: the weights of
    the counted class targets, or the number of rows for probabilities."""
    lanes = tl.zeros([BLOCK], ACC)
    for start in range(0, M, BLOCK):
        rows = start + tl.arange(0, BLOCK)
        if INDEX64:
            rows = rows.to(tl.int64)
        row_mask = rows < M
        if PROBS:
            lanes += row_mask.to(ACC)
        else:
            t = tl.load(target + (rows // K) * st_n + (rows % K) * st_k, mask=row_mask, other=0).to(tl.int64)
            counted, hit, w = _ce_target_weight(t, weight, ignore_index, C, HAS_WEIGHT, ACC)
            lanes += tl.where(row_mask & counted, w, 0)
    tl.store(total, tl.sum(lanes, 0))


@triton.jit
def _ce_write_grad(x_rows, t_rows, i_rows, g, lse, sum_q, target_q, t, row_mask, weight, smoothing, C, K, sx_c,
                   st_c, PROBS: tl.constexpr, SMOOTH: tl.constexpr, SPREAD: tl.constexpr, HAS_WEIGHT: tl.constexpr,
                   SOFTCAP: tl.constexpr, BLOCK_C: tl.constexpr, ACC: tl.constexpr):
    """grad_in rows = g * (softmax(x) * sum(q) - q), BLOCK_C classes at a time (each tile
    read before it is written: grad_in may be x); ``t`` and ``target_q`` (the target
    class's q) serve class targets only."""
    for offset in range(0, C, BLOCK_C):
        cols = offset + tl.arange(0, BLOCK_C)
        col_mask = cols < C
        mask = row_mask[:, None] & col_mask[None, :]
        v = tl.load(x_rows[:, None] + cols[None, :] * sx_c, mask=mask, other=0).to(ACC)
        if SOFTCAP is not None:
            capped = tanh(v / SOFTCAP)
            v = SOFTCAP * capped
        grad = tl.exp(v - lse[:, None]) * sum_q[:, None]
        if SPREAD:
            if HAS_WEIGHT:
                wc = tl.load(weight + cols, mask=col_mask, other=0).to(ACC)
            else:
                wc = col_mask.to(ACC)
        if PROBS:
            p = tl.load(t_rows[:, None] + cols[None, :] * st_c, mask=mask, other=0).to(ACC)
            grad -= wc[None, :] * (p * (1 - smoothing) + smoothing / C)
        else:
            grad -= tl.where(cols[None, :] == t[:, None], target_q[:, None], 0)
            if SMOOTH:
                grad -= smoothing / C * wc[None, :]
        if SOFTCAP is not None:
            grad *= 1 - capped * capped
        grad = tl.where(g[:, None] == 0, 0, g[:, None] * grad)
        tl.store(i_rows[:, None] + cols[None, :] * K, grad.to(i_rows.dtype.element_ty), mask=mask)


@triton.jit
def _ce_forward_kernel(x, target, weight, out, stats, partials, grad_in, M, C, K, sx_n, sx_c, sx_k,
                       st_n, st_c, st_k, ignore_index, smoothing,
                       REDUCTION: tl.constexpr, PROBS: tl.constexpr, SMOOTH: tl.constexpr,
                       SPREAD: tl.constexpr, HAS_WEIGHT: tl.constexpr, ONE_SAMPLE: tl.constexpr,
                       FINISH: tl.constexpr, ONE_TILE: tl.constexpr, GRAD: tl.constexpr, GRAD_MEAN: tl.constexpr,
                       SOFTCAP: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_C: tl.constexpr, ACC: tl.constexpr,
                       INDEX64: tl.constexpr):
    """Loss of BLOCK_M rows (row r = sample r // K, position r % K) in one pass over the
    logits. With q the target distribution (smoothed, weighted), loss = lse * sum(q) -
    sum(q * x); SPREAD: q is not only the target class (probabilities or smoothing).
    stats[0, r] = log-sum-exp, stats[1, r] = sum(q), for the backward. ONE_SAMPLE (class
    target, no smoothing, REDUCTION 2): the loss is ``_one_sample_mean``'s. GRAD (a loss
    reduced to one number): then the rows' gradient for an incoming 1 into grad_in
    (contiguous), divided for GRAD_MEAN by the total weight: this program's own when it
    is the only one (FINISH), else stats[2M], which ``_ce_weight_kernel`` wrote first."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    if INDEX64:
        rows = rows.to(tl.int64)
    row_mask = rows < M
    x_rows = x + (rows // K) * sx_n + (rows % K) * sx_k
    t_rows = target + (rows // K) * st_n + (rows % K) * st_k
    qx = tl.zeros([BLOCK_M, BLOCK_C], ACC)
    q = tl.zeros([BLOCK_M, BLOCK_C], ACC)
    weight_lanes = tl.zeros([BLOCK_C], ACC)
    if ONE_TILE:  # the whole row in registers: read once, no running statistics
        cols = tl.arange(0, BLOCK_C)
        col_mask = cols < C
        mask = row_mask[:, None] & col_mask[None, :]
        v = _load_logits(x_rows[:, None] + cols[None, :] * sx_c, mask, float("-inf"), ACC, SOFTCAP)
        row_max = tl.max(v, axis=1)
        shift = tl.where(row_max == float("-inf"), 0.0, row_max)
        lse = shift + tl.log(tl.sum(tl.exp(v - shift[:, None]), axis=1))
        if SPREAD:
            q, qx, weight_lanes = _ce_spread(q, qx, weight_lanes, v, mask, cols, col_mask, t_rows, st_c, weight,
                                             smoothing, C, PROBS, HAS_WEIGHT)
    else:
        m = tl.full([BLOCK_M, BLOCK_C], float("-inf"), ACC)
        s = tl.zeros([BLOCK_M, BLOCK_C], ACC)
        for offset in range(0, C, BLOCK_C):
            cols = offset + tl.arange(0, BLOCK_C)
            col_mask = cols < C
            mask = row_mask[:, None] & col_mask[None, :]
            v = _load_logits(x_rows[:, None] + cols[None, :] * sx_c, mask, float("-inf"), ACC, SOFTCAP)
            m, s = _online_lane(m, s, v)
            if SPREAD:
                q, qx, weight_lanes = _ce_spread(q, qx, weight_lanes, v, mask, cols, col_mask, t_rows, st_c,
                                                 weight, smoothing, C, PROBS, HAS_WEIGHT)
        row_max = tl.max(m, axis=1)
        lanes = tl.where(m == float("-inf"), 0.0, s * tl.exp(m - row_max[:, None]))
        lse = row_max + tl.log(tl.sum(lanes, axis=1))
    if PROBS:
        sum_q = tl.sum(q, axis=1)
        loss = tl.where(row_mask, lse * sum_q - tl.sum(qx, axis=1), 0)
        denominator = row_mask.to(ACC)
        active = row_mask
        t = rows  # unused: probabilities give q per class
        target_q = sum_q
    else:
        t = tl.load(t_rows, mask=row_mask, other=0).to(tl.int64)
        counted, hit, w_t = _ce_target_weight(t, weight, ignore_index, C, HAS_WEIGHT, ACC)
        active = row_mask & counted
        hit = active & hit
        target_q = (1 - smoothing) * tl.where(hit, w_t, 0)
        x_t = _load_logits(x_rows + t * sx_c, hit, 0.0, ACC, SOFTCAP)
        if ONE_SAMPLE:
            loss = _one_sample_mean(lse - x_t, hit, w_t)
        else:
            loss = (1 - smoothing) * w_t * (lse - x_t)
        sum_q = (1 - smoothing) * w_t
        if SMOOTH:
            weight_total = tl.sum(weight_lanes, axis=0)
            loss += smoothing / C * (weight_total * lse - tl.sum(qx, axis=1))
            sum_q += smoothing / C * weight_total
        loss = tl.where(active, loss, 0)
        sum_q = tl.where(active, sum_q, 0)
        denominator = tl.where(active, w_t, 0)
    tl.store(stats + rows, lse, mask=row_mask)
    tl.store(stats + M + rows, sum_q, mask=row_mask)
    total = tl.sum(denominator, 0)
    if REDUCTION == 0:
        tl.store(out + rows, loss.to(out.dtype.element_ty), mask=row_mask)
    elif FINISH:
        _store_reduced(out, stats + 2 * M, tl.sum(loss, 0), total, REDUCTION == 1, True)
    else:
        pid = tl.program_id(0)
        tl.store(partials + pid, tl.sum(loss, 0))
        tl.store(partials + tl.num_programs(0) + pid, total)
    if GRAD:  # as the backward kernel computes it for g = 1
        g = tl.zeros([BLOCK_M], ACC) + 1
        if GRAD_MEAN:
            if not FINISH:
                total = tl.load(stats + 2 * M)
            g = ieee_div(g, total)
        g = tl.where(active, g, 0)
        i_rows = grad_in + (rows // K) * C * K + rows % K
        _ce_write_grad(x_rows, t_rows, i_rows, g, lse, sum_q, target_q, t, row_mask, weight, smoothing, C, K, sx_c,
                       st_c, PROBS, SMOOTH, SPREAD, HAS_WEIGHT, SOFTCAP, BLOCK_C, ACC)


@triton.jit
def _ce_backward_kernel(x, target, weight, grad_out, stats, grad_in, M, C, K, sx_n, sx_c, sx_k,
                        st_n, st_c, st_k, sg_n, sg_k, ignore_index, smoothing, skip_when,
                        MEAN: tl.constexpr, PROBS: tl.constexpr, SMOOTH: tl.constexpr, SPREAD: tl.constexpr,
                        HAS_WEIGHT: tl.constexpr, SOFTCAP: tl.constexpr, BLOCK_M: tl.constexpr,
                        BLOCK_C: tl.constexpr, ACC: tl.constexpr, INDEX64: tl.constexpr):
    """grad = g * (softmax(x) * sum(q) - q) for BLOCK_M rows, one pass over the logits;
    nothing when g (its first element) equals ``skip_when``: grad_in already holds that
    gradient (a float, so one compiled kernel serves both; NaN never matches)."""
    if tl.load(grad_out) == skip_when:
        return
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    if INDEX64:
        rows = rows.to(tl.int64)
    row_mask = rows < M
    n = rows // K
    k = rows % K
    x_rows = x + n * sx_n + k * sx_k
    t_rows = target + n * st_n + k * st_k
    i_rows = grad_in + n * C * K + k  # the gradient is contiguous
    g = tl.load(grad_out + n * sg_n + k * sg_k, mask=row_mask, other=0).to(ACC)
    if MEAN:
        g = ieee_div(g, tl.load(stats + 2 * M).to(ACC))
    lse = tl.load(stats + rows, mask=row_mask, other=0)
    sum_q = tl.load(stats + M + rows, mask=row_mask, other=0)
    if PROBS:
        t = rows  # unused: probabilities give q per class
        target_q = sum_q
    else:
        t = tl.load(t_rows, mask=row_mask, other=0).to(tl.int64)
        counted, hit, w_t = _ce_target_weight(t, weight, ignore_index, C, HAS_WEIGHT, ACC)
        hit = row_mask & hit
        g = tl.where(row_mask & counted, g, 0)
        target_q = (1 - smoothing) * tl.where(hit, w_t, 0)
    _ce_write_grad(x_rows, t_rows, i_rows, g, lse, sum_q, target_q, t, row_mask, weight, smoothing, C, K, sx_c, st_c,
                   PROBS, SMOOTH, SPREAD, HAS_WEIGHT, SOFTCAP, BLOCK_C, ACC)


CE_FORWARD = Launcher(_ce_forward_kernel)
CE_WEIGHT = Launcher(_ce_weight_kernel)
CE_BACKWARD = Launcher(_ce_backward_kernel)


def cross_entropy_config(M, C, class_contiguous):
    """(BLOCK_M, BLOCK_C, num_warps, ONE_TILE) of the forward. A contiguous row goes 2K
    classes at a time with per-lane running statistics: measured on an H100 (bf16
    4096 x 32000, kernel time), 8 warps over 2K-class tiles read at 2.4 TB/s, a whole
    row in registers at 1.9."""
    block_m, block_c, warps = _ce_tiles(M, C, class_contiguous, 2048)
    return block_m, block_c, warps, block_c >= C


def cross_entropy_with_grad_config(M, C, class_contiguous):
    """The forward's config when it also writes the gradient (a second pass over each
    row, from L2): 8K-class tiles of 16 warps. Measured on an H100 (bf16 4096 x 32000,
    kernel time, L2 flushed): 234 us against 283 with the forward's 2K tiles of 8 warps
    (a separate forward and backward: 296)."""
    block_m, block_c, warps = _ce_tiles(M, C, class_contiguous, 8192)
    return block_m, block_c, warps, block_c >= C


def cross_entropy_backward_config(M, C, class_contiguous):
    """(BLOCK_M, BLOCK_C, num_warps) of the backward, which keeps no state across tiles:
    8K-class tiles (measured: 2.9 TB/s read + write)."""
    return _ce_tiles(M, C, class_contiguous, 8192)


def _ce_tiles(M, C, class_contiguous, widest):
    """(BLOCK_M, BLOCK_C, num_warps): up to ``widest`` contiguous classes per tile; with
    strided classes ([N, C, d...] input) a tile spans the contiguous rows."""
    M = max(M, 1)
    if class_contiguous:
        block_c = min(next_power_of_2(C), widest)
        block_m = min(next_power_of_2(M), max(1, 2048 // block_c))
    else:
        block_m = min(next_power_of_2(M), 64)
        block_c = min(next_power_of_2(C), max(1, 2048 // block_m))
    return block_m, block_c, _row_warps(block_m * block_c)


def _row_warps(tile):
    return 4 if tile <= 1024 else 8 if tile <= 4096 else 16


