"""Flash attention kernels: the forward (online softmax, log-sum-exp saved), the split-KV
forward for short queries over long keys and its combine, and the backward (delta,
dK/dV per key block, dQ per query block).

Every tensor is addressed as [batch, head, position, feature] by four strides, so any
layout runs in place. Variable-length batches (``VARLEN``) read each sequence's start in
the packed tensors from ``cu_seqlens`` (batch stride 0). Query head ``h`` reads key/value
head ``h // GROUP`` (grouped-query attention). Scores are kept in base 2: ``qk_scale`` is
the softmax scale times log2(e), and an additive mask is scaled alike; the saved
log-sum-exp is natural (PyTorch's), +inf for a row that sees no key (its output is 0).

``CAUSAL``: 0 none, 1 top-left (PyTorch: key j is seen by query i when j <= i),
2 bottom-right (flash-attn with unequal lengths: j <= i + len_k - len_q). ``MASK``: 0 none,
1 additive float, 2 boolean (True keeps), broadcast to [B, H, Lq, Lk] by zero strides.
``EXACT_D``: the head dims fill BLOCK_D / BLOCK_DV (no feature masks).
``UPCAST`` runs the products in fp32 (fp32 inputs, and halves under the interpreter, whose
bf16 arithmetic is wrong); else the probabilities go to the inputs' dtype for ``tl.dot``.
"""

import triton
import triton.language as tl

from ...codegen.launch import Launcher

LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453


@triton.jit
def _sequence(cu, b, length, VARLEN: tl.constexpr):
    """(start in the packed tensor, length) of sequence ``b``."""
    if VARLEN:
        start = tl.load(cu + b).to(tl.int64)
        return start, (tl.load(cu + b + 1) - start).to(tl.int32)
    else:
        return 0, length


@triton.jit
def _within(offs, n, EXACT_D: tl.constexpr):
    """``offs < n``; with EXACT_D (the head dims fill their blocks) a constant the compiler
    sees, so that loads along the features stay vectorized."""
    if EXACT_D:
        return tl.full(offs.shape, 1, tl.int1)
    else:
        return offs < n


@triton.jit
def _query_head(bh, H, GROUP, CuQ, CuK, Lq, Lk, VARLEN: tl.constexpr):
    """(batch, query head, its key head, query start and length, key start and length) of
    program row ``bh`` (batch * query heads)."""
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    q_start, len_q = _sequence(CuQ, b, Lq, VARLEN)
    k_start, len_k = _sequence(CuK, b, Lk, VARLEN)
    return b, h, h // GROUP, q_start, len_q, k_start, len_k


@triton.jit
def _features(D, DV, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, EXACT_D: tl.constexpr):
    """Offsets along the q/k features and the v features, and which of them exist."""
    offs_d = tl.arange(0, BLOCK_D)
    offs_dv = tl.arange(0, BLOCK_DV)
    return offs_d, _within(offs_d, D, EXACT_D), offs_dv, _within(offs_dv, DV, EXACT_D)


@triton.jit
def _causal_offset(len_q, len_k, CAUSAL: tl.constexpr):
    if CAUSAL == 2:
        return len_k - len_q
    else:
        return 0


@triton.jit
def _mask_scores(s, mask_rows, smn, row_ok, cols, col_ok, q_pos, offset, CAUSAL: tl.constexpr,
                 MASK: tl.constexpr):
    """Scores ``s`` [M, N] (base 2) with the mask added and hidden keys at -inf."""
    keep = col_ok[None, :]
    if MASK == 1:
        bias = tl.load(mask_rows[:, None] + cols[None, :] * smn, mask=row_ok[:, None] & col_ok[None, :], other=0.0)
        s = s + bias.to(tl.float32) * 1.4426950408889634
    if MASK == 2:
        allowed = tl.load(mask_rows[:, None] + cols[None, :] * smn, mask=row_ok[:, None] & col_ok[None, :], other=0)
        keep = keep & (allowed != 0)
    if CAUSAL != 0:
        keep = keep & (cols[None, :] <= q_pos[:, None] + offset)
    return tl.where(keep, s, float("-inf"))


@triton.jit
def _attend(acc, m_i, l_i, q, k_base, v_base, skn, skd, svn, svd, mask_rows, smn, q_pos, row_ok, lo, hi, qk_scale,
            offset, D, DV, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
            CAUSAL: tl.constexpr, MASK: tl.constexpr, UPCAST: tl.constexpr, PRECISION: tl.constexpr,
            EXACT_D: tl.constexpr):
    """The online softmax over keys [lo, hi): (acc, running max, running sum), base 2."""
    offs_n = tl.arange(0, BLOCK_N)
    offs_d, d_ok, offs_dv, dv_ok = _features(D, DV, BLOCK_D, BLOCK_DV, EXACT_D)
    for start in range(lo, hi, BLOCK_N):
        cols = start + offs_n
        col_ok = cols < hi
        kt = tl.load(k_base + cols[None, :] * skn + offs_d[:, None] * skd,
                     mask=col_ok[None, :] & d_ok[:, None], other=0.0)
        v = tl.load(v_base + cols[:, None] * svn + offs_dv[None, :] * svd,
                    mask=col_ok[:, None] & dv_ok[None, :], other=0.0)
        if UPCAST:
            kt = kt.to(tl.float32)
            v = v.to(tl.float32)
        s = tl.dot(q, kt, input_precision=PRECISION) * qk_scale
        s = _mask_scores(s, mask_rows, smn, row_ok, cols, col_ok, q_pos, offset, CAUSAL, MASK)
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        alpha = tl.exp2(m_i - m_safe)
        p = tl.exp2(s - m_safe[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        if UPCAST:
            acc = acc * alpha[:, None] + tl.dot(p, v, input_precision=PRECISION)
        else:
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
        m_i = m_new
    return acc, m_i, l_i


@triton.jit
def attention_forward_kernel(
        Q, K, V, Mask, Out, Lse, CuQ, CuK,
        sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
        smb, smh, smm, smn, sob, soh, som, sod, slb, slh, slm,
        H, GROUP, Lq, Lk, D, DV, qk_scale,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
        CAUSAL: tl.constexpr, MASK: tl.constexpr, VARLEN: tl.constexpr, UPCAST: tl.constexpr,
        PRECISION: tl.constexpr, EXACT_D: tl.constexpr):
    """A program per (query block, batch * head). Causal: the last query blocks, which see
    the most keys, start first; keys every row of the block sees run without the causal mask."""
    pid_m = tl.program_id(0)
    if CAUSAL != 0:
        pid_m = tl.num_programs(0) - 1 - pid_m
    bh = tl.program_id(1)
    b, h, hk, q_start, len_q, k_start, len_k = _query_head(bh, H, GROUP, CuQ, CuK, Lq, Lk, VARLEN)
    if pid_m * BLOCK_M < len_q:
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_d, d_ok, offs_dv, dv_ok = _features(D, DV, BLOCK_D, BLOCK_DV, EXACT_D)
        rows = offs_m < len_q
        q = tl.load(Q + b * sqb + h * sqh + (q_start + offs_m)[:, None] * sqm + offs_d[None, :] * sqd,
                    mask=rows[:, None] & d_ok[None, :], other=0.0)
        if UPCAST:
            q = q.to(tl.float32)
        offset = _causal_offset(len_q, len_k, CAUSAL)
        hi = len_k
        if CAUSAL != 0:
            hi = tl.maximum(tl.minimum(hi, (pid_m + 1) * BLOCK_M + offset), 0)
        mask_rows = Mask + b * smb + h * smh + offs_m * smm
        acc = tl.zeros([BLOCK_M, BLOCK_DV], dtype=tl.float32)
        m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
        l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
        k_base = K + b * skb + hk * skh + k_start * skn
        v_base = V + b * svb + hk * svh + k_start * svn
        diagonal = 0
        if CAUSAL != 0:  # keys up to the block's first row (+ offset): seen by every row
            diagonal = tl.minimum(tl.maximum(pid_m * BLOCK_M + offset, 0) // BLOCK_N * BLOCK_N, hi)
            acc, m_i, l_i = _attend(acc, m_i, l_i, q, k_base, v_base, skn, skd, svn, svd, mask_rows, smn, offs_m,
                                    rows, 0, diagonal, qk_scale, offset, D, DV, BLOCK_N, BLOCK_D, BLOCK_DV, 0, MASK,
                                    UPCAST, PRECISION, EXACT_D)
        acc, m_i, l_i = _attend(acc, m_i, l_i, q, k_base, v_base, skn, skd, svn, svd, mask_rows, smn, offs_m,
                                rows, diagonal, hi, qk_scale, offset, D, DV, BLOCK_N, BLOCK_D, BLOCK_DV, CAUSAL, MASK,
                                UPCAST, PRECISION, EXACT_D)
        seen = l_i > 0
        l_safe = tl.where(seen, l_i, 1.0)
        out = acc / l_safe[:, None]
        tl.store(Out + b * sob + h * soh + (q_start + offs_m)[:, None] * som + offs_dv[None, :] * sod,
                 out.to(Out.dtype.element_ty), mask=rows[:, None] & dv_ok[None, :])
        lse = tl.where(seen, (m_i + tl.log2(l_safe)) * 0.6931471805599453, float("inf"))
        tl.store(Lse + b * slb + h * slh + (q_start + offs_m) * slm, lse, mask=rows)


@triton.jit
def attention_split_kernel(
        Q, K, V, Mask, Part, PartLse,
        sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd, smb, smh, smm, smn,
        HK, GROUP, Lq, Lk, D, DV, qk_scale, split_len, n_rows,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
        CAUSAL: tl.constexpr, MASK: tl.constexpr, UPCAST: tl.constexpr, PRECISION: tl.constexpr,
        EXACT_D: tl.constexpr):
    """Split-KV forward (short queries, long keys): a program per (block of the rows of a key
    head's query group, batch * key head, key split). A row is (head in group, query); it
    writes its split's normalised output and base-2 log-sum-exp (-inf: saw no key) to
    Part [splits, B, H, Lq, DV] and PartLse [splits, B, H, Lq]."""
    pid_m = tl.program_id(0)
    bhk = tl.program_id(1)
    split = tl.program_id(2)
    b = (bhk // HK).to(tl.int64)
    hk = (bhk % HK).to(tl.int64)
    r = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rows = r < GROUP * Lq
    i = r % Lq
    h = hk * GROUP + r // Lq
    offs_d, d_ok, offs_dv, dv_ok = _features(D, DV, BLOCK_D, BLOCK_DV, EXACT_D)
    q = tl.load(Q + b * sqb + h[:, None] * sqh + i[:, None] * sqm + offs_d[None, :] * sqd,
                mask=rows[:, None] & d_ok[None, :], other=0.0)
    if UPCAST:
        q = q.to(tl.float32)
    offset = _causal_offset(Lq, Lk, CAUSAL)
    lo = split * split_len
    hi = tl.minimum(lo + split_len, Lk)
    if CAUSAL != 0:
        hi = tl.maximum(tl.minimum(hi, Lq + offset), lo)
    acc = tl.zeros([BLOCK_M, BLOCK_DV], dtype=tl.float32)
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc, m_i, l_i = _attend(acc, m_i, l_i, q, K + b * skb + hk * skh, V + b * svb + hk * svh, skn, skd, svn, svd,
                            Mask + b * smb + h * smh + i * smm, smn, i, rows, lo, hi, qk_scale, offset, D, DV,
                            BLOCK_N, BLOCK_D, BLOCK_DV, CAUSAL, MASK, UPCAST, PRECISION, EXACT_D)
    seen = l_i > 0
    l_safe = tl.where(seen, l_i, 1.0)
    row = (b * HK * GROUP + h) * Lq + i + split.to(tl.int64) * n_rows  # n_rows: B * H * Lq
    tl.store(Part + row[:, None] * DV + offs_dv[None, :], acc / l_safe[:, None],
             mask=rows[:, None] & dv_ok[None, :])
    tl.store(PartLse + row, tl.where(seen, m_i + tl.log2(l_safe), float("-inf")), mask=rows)


@triton.jit
def attention_combine_kernel(Part, PartLse, Out, Lse, H, Lq, DV, n_rows, SPLITS, sob, soh, som, sod, slb, slh, slm,
                             BLOCK_S: tl.constexpr, BLOCK_DV: tl.constexpr, EXACT_D: tl.constexpr):
    """The splits' partial results of one query row, weighed by their sums."""
    row = tl.program_id(0).to(tl.int64)
    b = row // (H * Lq)
    h = row // Lq % H
    i = row % Lq
    offs_s = tl.arange(0, BLOCK_S)
    offs_dv = tl.arange(0, BLOCK_DV)
    dv_ok = _within(offs_dv, DV, EXACT_D)
    splits_ok = offs_s < SPLITS
    lse = tl.load(PartLse + offs_s * n_rows + row, mask=splits_ok, other=float("-inf"))
    m = tl.max(lse, 0)
    m_safe = tl.where(m == float("-inf"), 0.0, m)
    w = tl.exp2(lse - m_safe)
    total = tl.sum(w, 0)
    part = tl.load(Part + (offs_s[:, None] * n_rows + row) * DV + offs_dv[None, :],
                   mask=splits_ok[:, None] & dv_ok[None, :], other=0.0)
    seen = total > 0
    out = tl.sum(part * w[:, None], 0) / tl.where(seen, total, 1.0)
    tl.store(Out + b * sob + h * soh + i * som + offs_dv * sod, out.to(Out.dtype.element_ty), mask=dv_ok)
    tl.store(Lse + b * slb + h * slh + i * slm,
             tl.where(seen, (m_safe + tl.log2(tl.where(seen, total, 1.0))) * 0.6931471805599453, float("inf")))


@triton.jit
def attention_delta_kernel(O, DO, Delta, CuQ, sob, soh, som, sod, sgb, sgh, sgm, sgd, sdb, sdh, sdm, H, Lq, DV,
                           BLOCK_M: tl.constexpr, BLOCK_DV: tl.constexpr, VARLEN: tl.constexpr,
                           EXACT_D: tl.constexpr):
    """delta = rowsum(dO * O) in fp32, the backward's per-row correction."""
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    q_start, len_q = _sequence(CuQ, b, Lq, VARLEN)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_dv = tl.arange(0, BLOCK_DV)
    dv_ok = _within(offs_dv, DV, EXACT_D)
    rows = offs_m < len_q
    ok = rows[:, None] & dv_ok[None, :]
    pos = (q_start + offs_m)[:, None]
    o = tl.load(O + b * sob + h * soh + pos * som + offs_dv[None, :] * sod, mask=ok, other=0.0).to(tl.float32)
    do = tl.load(DO + b * sgb + h * sgh + pos * sgm + offs_dv[None, :] * sgd, mask=ok, other=0.0).to(tl.float32)
    tl.store(Delta + b * sdb + h * sdh + (q_start + offs_m) * sdm, tl.sum(o * do, 1), mask=rows)


@triton.jit
def _query_rows(Lse, Delta, q_at, do_at, b, h, pos, rows, offs_d, offs_dv, d_ok, dv_ok,
                sqd, sgd, slb, slh, slm, sdb, sdh, sdm, UPCAST: tl.constexpr):
    """The backward's per-query operands of rows at packed positions ``pos``: q and dO
    (``q_at``/``do_at``: their row pointers), the log-sum-exp and delta."""
    q = tl.load(q_at[:, None] + offs_d[None, :] * sqd, mask=rows[:, None] & d_ok[None, :], other=0.0)
    do = tl.load(do_at[:, None] + offs_dv[None, :] * sgd, mask=rows[:, None] & dv_ok[None, :], other=0.0)
    if UPCAST:
        q = q.to(tl.float32)
        do = do.to(tl.float32)
    lse = tl.load(Lse + b * slb + h * slh + pos * slm, mask=rows, other=float("inf"))
    delta = tl.load(Delta + b * sdb + h * sdh + pos * sdm, mask=rows, other=0.0)
    return q, do, lse, delta


@triton.jit
def attention_dkdv_kernel(
        Q, K, V, Mask, DO, Lse, Delta, DK, DV_, CuQ, CuK,
        sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
        smb, smh, smm, smn, sgb, sgh, sgm, sgd, slb, slh, slm, sdb, sdh, sdm,
        sdkb, sdkh, sdkn, sdkd, sdvb, sdvh, sdvn, sdvd,
        HK, GROUP, Lq, Lk, D, DV, qk_scale, sm_scale,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
        CAUSAL: tl.constexpr, MASK: tl.constexpr, VARLEN: tl.constexpr, UPCAST: tl.constexpr,
        PRECISION: tl.constexpr, EXACT_D: tl.constexpr):
    """dK and dV of a block of keys of one key head: a program per (key block, batch *
    key head), over every query of the heads of its group (no atomics)."""
    pid_n = tl.program_id(0)
    bhk = tl.program_id(1)
    b = (bhk // HK).to(tl.int64)
    hk = (bhk % HK).to(tl.int64)
    q_start, len_q = _sequence(CuQ, b, Lq, VARLEN)
    k_start, len_k = _sequence(CuK, b, Lk, VARLEN)
    if pid_n * BLOCK_N < len_k:
        cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        col_ok = cols < len_k
        offs_d, d_ok, offs_dv, dv_ok = _features(D, DV, BLOCK_D, BLOCK_DV, EXACT_D)
        kpos = (k_start + cols)[:, None]
        k = tl.load(K + b * skb + hk * skh + kpos * skn + offs_d[None, :] * skd,
                    mask=col_ok[:, None] & d_ok[None, :], other=0.0)
        v = tl.load(V + b * svb + hk * svh + kpos * svn + offs_dv[None, :] * svd,
                    mask=col_ok[:, None] & dv_ok[None, :], other=0.0)
        if UPCAST:
            k = k.to(tl.float32)
            v = v.to(tl.float32)
        dk = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
        dv = tl.zeros([BLOCK_N, BLOCK_DV], dtype=tl.float32)
        offset = _causal_offset(len_q, len_k, CAUSAL)
        lo = 0
        if CAUSAL != 0:  # queries before pid_n * BLOCK_N - offset see none of these keys
            lo = tl.maximum(pid_n * BLOCK_N - offset, 0) // BLOCK_M * BLOCK_M
        for g in range(0, GROUP):
            h = hk * GROUP + g
            for start in range(lo, len_q, BLOCK_M):
                offs_m = start + tl.arange(0, BLOCK_M)
                rows = offs_m < len_q
                pos = q_start + offs_m
                q, do, lse, delta = _query_rows(Lse, Delta, Q + b * sqb + h * sqh + pos * sqm,
                                                DO + b * sgb + h * sgh + pos * sgm, b, h, pos, rows, offs_d, offs_dv,
                                                d_ok, dv_ok, sqd, sgd, slb, slh, slm, sdb, sdh, sdm, UPCAST)
                s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * qk_scale
                s = _mask_scores(s, Mask + b * smb + h * smh + offs_m * smm, smn, rows, cols, col_ok, offs_m, offset,
                                 CAUSAL, MASK)
                p = tl.exp2(s - lse[:, None] * 1.4426950408889634)
                dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
                ds = p * (dp - delta[:, None])
                if UPCAST:
                    dv += tl.dot(tl.trans(p), do, input_precision=PRECISION)
                    dk += tl.dot(tl.trans(ds), q, input_precision=PRECISION)
                else:
                    dv += tl.dot(tl.trans(p.to(do.dtype)), do, input_precision=PRECISION)
                    dk += tl.dot(tl.trans(ds.to(q.dtype)), q, input_precision=PRECISION)
        tl.store(DK + b * sdkb + hk * sdkh + kpos * sdkn + offs_d[None, :] * sdkd, (dk * sm_scale).to(
            DK.dtype.element_ty), mask=col_ok[:, None] & d_ok[None, :])
        tl.store(DV_ + b * sdvb + hk * sdvh + kpos * sdvn + offs_dv[None, :] * sdvd, dv.to(DV_.dtype.element_ty),
                 mask=col_ok[:, None] & dv_ok[None, :])


@triton.jit
def attention_dq_kernel(
        Q, K, V, Mask, DO, Lse, Delta, DQ, CuQ, CuK,
        sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
        smb, smh, smm, smn, sgb, sgh, sgm, sgd, slb, slh, slm, sdb, sdh, sdm, sdqb, sdqh, sdqm, sdqd,
        H, GROUP, Lq, Lk, D, DV, qk_scale, sm_scale,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
        CAUSAL: tl.constexpr, MASK: tl.constexpr, VARLEN: tl.constexpr, UPCAST: tl.constexpr,
        PRECISION: tl.constexpr, EXACT_D: tl.constexpr):
    """dQ of a block of queries: a program per (query block, batch * head)."""
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b, h, hk, q_start, len_q, k_start, len_k = _query_head(bh, H, GROUP, CuQ, CuK, Lq, Lk, VARLEN)
    if pid_m * BLOCK_M < len_q:
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        rows = offs_m < len_q
        offs_d, d_ok, offs_dv, dv_ok = _features(D, DV, BLOCK_D, BLOCK_DV, EXACT_D)
        offs_n = tl.arange(0, BLOCK_N)
        pos = q_start + offs_m
        qpos = pos[:, None]
        q, do, lse, delta = _query_rows(Lse, Delta, Q + b * sqb + h * sqh + pos * sqm,
                                        DO + b * sgb + h * sgh + pos * sgm, b, h, pos, rows, offs_d, offs_dv,
                                        d_ok, dv_ok, sqd, sgd, slb, slh, slm, sdb, sdh, sdm, UPCAST)
        offset = _causal_offset(len_q, len_k, CAUSAL)
        hi = len_k
        if CAUSAL != 0:
            hi = tl.maximum(tl.minimum(hi, (pid_m + 1) * BLOCK_M + offset), 0)
        mask_rows = Mask + b * smb + h * smh + offs_m * smm
        k_base = K + b * skb + hk * skh + k_start * skn
        v_base = V + b * svb + hk * svh + k_start * svn
        dq = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
        for start in range(0, hi, BLOCK_N):
            cols = start + offs_n
            col_ok = cols < len_k
            k = tl.load(k_base + cols[:, None] * skn + offs_d[None, :] * skd,
                        mask=col_ok[:, None] & d_ok[None, :], other=0.0)
            v = tl.load(v_base + cols[:, None] * svn + offs_dv[None, :] * svd,
                        mask=col_ok[:, None] & dv_ok[None, :], other=0.0)
            if UPCAST:
                k = k.to(tl.float32)
                v = v.to(tl.float32)
            s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * qk_scale
            s = _mask_scores(s, mask_rows, smn, rows, cols, col_ok, offs_m, offset, CAUSAL, MASK)
            p = tl.exp2(s - lse[:, None] * 1.4426950408889634)
            dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
            ds = p * (dp - delta[:, None])
            if UPCAST:
                dq += tl.dot(ds, k, input_precision=PRECISION)
            else:
                dq += tl.dot(ds.to(k.dtype), k, input_precision=PRECISION)
        tl.store(DQ + b * sdqb + h * sdqh + qpos * sdqm + offs_d[None, :] * sdqd, (dq * sm_scale).to(
            DQ.dtype.element_ty), mask=rows[:, None] & d_ok[None, :])


FORWARD = Launcher(attention_forward_kernel)
SPLIT = Launcher(attention_split_kernel)
COMBINE = Launcher(attention_combine_kernel)
DELTA = Launcher(attention_delta_kernel)
DKDV = Launcher(attention_dkdv_kernel)
DQ = Launcher(attention_dq_kernel)
