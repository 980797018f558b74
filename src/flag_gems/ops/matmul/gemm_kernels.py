"""The matrix-product kernel every GEMM-shaped operator launches (mm, addmm, bmm,
baddbmm, addr), and the epilogue it shares with the GEMV kernels.

``c = alpha * (a @ b) + beta * bias`` over an optional batch dim, with any strides
(a zero stride broadcasts: addmm's 1-d bias, addr's vectors). Constexpr flags switch
off what a call does not need, so ``mm`` compiles to the plain product:

- ``BATCHED``: programs walk the batches one after the other (bmm, baddbmm)
- ``OUTER``: a rank-1 product (K == 1) as an elementwise outer product, no ``tl.dot``
  (addr: its products are exact, never TF32)
- ``ALPHA`` / ``BIAS`` / ``BETA``: scale the product, add the bias, scale the bias
- ``SPLIT_K``: the K range split across that many programs per tile (long K, few tiles:
  decode-shaped products); each writes its partial product to an fp32 workspace that
  ``split_k_sum_kernel`` adds up, in a fixed order, before the epilogue

``BIAS`` off means the bias is never read: ``beta == 0`` ignores NaNs in it, as PyTorch
does. ``launch`` passes K = 0 for ``alpha == 0`` (BLAS's rule: the product is not formed).
"""

import torch
import triton
import triton.language as tl

from ...codegen.launch import Launcher
from ...codegen.tl_math import INTERPRETED
from ...utils.dtypes import float_accumulator
from ...utils.layout import INT32_LIMIT, cdiv


@triton.jit
def epilogue(acc, bias_at, mask, alpha, beta, ALPHA: tl.constexpr, BIAS: tl.constexpr, BETA: tl.constexpr):
    """``alpha * acc + beta * bias``, each term only where its flag says so."""
    if ALPHA:
        acc = acc * alpha
    if BIAS:
        bias = tl.load(bias_at, mask=mask, other=0.0).to(acc.dtype)
        if BETA:
            bias = bias * beta
        acc = acc + bias
    return acc


@triton.jit
def gemm_kernel(a, b, c, bias, M, N, K, k_span, alpha, beta,
                stride_az, stride_am, stride_ak, stride_bz, stride_bk, stride_bn,
                stride_cz, stride_cm, stride_cn, stride_xz, stride_xm, stride_xn,
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                GROUP_M: tl.constexpr, PRECISION: tl.constexpr, ACC: tl.constexpr,
                EVEN_K: tl.constexpr, INDEX64: tl.constexpr, BATCHED: tl.constexpr, OUTER: tl.constexpr,
                ALPHA: tl.constexpr, BIAS: tl.constexpr, BETA: tl.constexpr, SPLIT_K: tl.constexpr):
    pid = tl.program_id(0)
    if SPLIT_K > 1:  # this program's share of K (k_span, a multiple of BLOCK_K) into its workspace slice
        split = tl.program_id(1)
        if INDEX64:
            split = split.to(tl.int64)
        k_first = split * k_span
        a += k_first * stride_ak
        b += k_first * stride_bk
        c += split * stride_cz
        K = tl.minimum(K - k_first, k_span)
    blocks_m = tl.cdiv(M, BLOCK_M)
    blocks_n = tl.cdiv(N, BLOCK_N)
    if BATCHED:  # one batch after the other: program ids past a batch's tiles move on
        tiles = blocks_m * blocks_n
        z = pid // tiles
        pid = pid % tiles
        if INDEX64:
            z = z.to(tl.int64)
        a += z * stride_az
        b += z * stride_bz
        c += z * stride_cz
        bias += z * stride_xz
    # Programs walk the output in groups of GROUP_M row-blocks: neighbours share B tiles in L2.
    group = pid // (GROUP_M * blocks_n)
    first_m = group * GROUP_M
    group_size = tl.minimum(blocks_m - first_m, GROUP_M)
    pid_m = first_m + (pid % (GROUP_M * blocks_n)) % group_size
    pid_n = (pid % (GROUP_M * blocks_n)) // group_size

    # Rows and columns past the edge wrap around: loads need no mask, and the
    # store below masks what was computed from them.
    rm = (pid_m * BLOCK_M + tl.arange(0, BLOCK_M)) % M
    rn = (pid_n * BLOCK_N + tl.arange(0, BLOCK_N)) % N
    rk = tl.arange(0, BLOCK_K)
    if INDEX64:
        rm = rm.to(tl.int64)
        rn = rn.to(tl.int64)
        rk = rk.to(tl.int64)
    rm = tl.max_contiguous(tl.multiple_of(rm, BLOCK_M), BLOCK_M)
    rn = tl.max_contiguous(tl.multiple_of(rn, BLOCK_N), BLOCK_N)
    if OUTER:
        acc = tl.load(a + rm * stride_am).to(ACC)[:, None] * tl.load(b + rn * stride_bn).to(ACC)[None, :]
    else:
        a_at = a + rm[:, None] * stride_am + rk[None, :] * stride_ak
        b_at = b + rk[:, None] * stride_bk + rn[None, :] * stride_bn
        acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=ACC)
        for k in range(0, tl.cdiv(K, BLOCK_K)):
            if EVEN_K:
                a_tile = tl.load(a_at)
                b_tile = tl.load(b_at)
            else:
                k_left = K - k * BLOCK_K
                a_tile = tl.load(a_at, mask=rk[None, :] < k_left, other=0.0)
                b_tile = tl.load(b_at, mask=rk[:, None] < k_left, other=0.0)
            if INTERPRETED:
                # The interpreter's bf16 arithmetic is wrong; fp32 products are exact for halves.
                a_tile = a_tile.to(ACC)
                b_tile = b_tile.to(ACC)
            acc = tl.dot(a_tile, b_tile, acc, input_precision=PRECISION, out_dtype=ACC)
            a_at += BLOCK_K * stride_ak
            b_at += BLOCK_K * stride_bk
    cm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    if INDEX64:
        cm = cm.to(tl.int64)
        cn = cn.to(tl.int64)
    mask = (cm < M)[:, None] & (cn < N)[None, :]
    acc = epilogue(acc, bias + cm[:, None] * stride_xm + cn[None, :] * stride_xn, mask, alpha, beta,
                   ALPHA, BIAS, BETA)
    tl.store(c + cm[:, None] * stride_cm + cn[None, :] * stride_cn, acc.to(c.dtype.element_ty), mask=mask)


@triton.jit
def split_k_sum_kernel(w, c, bias, M, N, alpha, beta, stride_ws, stride_cm, stride_cn, stride_xm, stride_xn,
                       SPLITS: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, INDEX64: tl.constexpr,
                       ALPHA: tl.constexpr, BIAS: tl.constexpr, BETA: tl.constexpr):
    """``c = epilogue(sum of the SPLITS partial products in w)``; w is [SPLITS, M, N] contiguous."""
    cm = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cn = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    if INDEX64:
        cm = cm.to(tl.int64)
        cn = cn.to(tl.int64)
    mask = (cm < M)[:, None] & (cn < N)[None, :]
    at = w + cm[:, None] * N + cn[None, :]
    acc = tl.load(at, mask=mask, other=0.0)
    for s in tl.static_range(1, SPLITS):
        acc += tl.load(at + s * stride_ws, mask=mask, other=0.0)
    acc = epilogue(acc, bias + cm[:, None] * stride_xm + cn[None, :] * stride_xn, mask, alpha, beta,
                   ALPHA, BIAS, BETA)
    tl.store(c + cm[:, None] * stride_cm + cn[None, :] * stride_cn, acc.to(c.dtype.element_ty), mask=mask)


_GEMM = Launcher(gemm_kernel)
_SPLIT_K_SUM = Launcher(split_k_sum_kernel)

NO_STRIDES = (0, 0, 0)


def batch_strides(tensor):
    """(batch, row, column) strides of a matrix or a batch of matrices (batch stride 0 for a matrix)."""
    strides = tensor.stride()
    return strides if len(strides) == 3 else (0, *strides)


def accumulator(dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


def launch(config, c, a, a_strides, b, b_strides, K, *, bias=None, bias_strides=NO_STRIDES, alpha=1, beta=1,
           precision="ieee", outer=False):
    """``c = alpha * a @ b + beta * bias`` with ``config``'s tiles; ``c`` is [M, N] or [Z, M, N]
    (non-empty), the operands' strides are (batch, row, column) triples, ``bias`` None for none.
    ``alpha == 0`` forms no product (BLAS's rule), except the outer product's (addr's rule).
    A seventh config item splits K across that many programs (matrices only)."""
    if alpha == 0 and not outer:
        K = 0
    block_m, block_n, block_k, group_m, warps, stages = config[:6]
    splits = config[6] if len(config) > 6 else 1
    if c.dim() == 3:
        Z, M, N = c.shape
        c_strides = c.stride()
    else:
        Z, (M, N), c_strides = 1, c.shape, (0, *c.stride())
    # The farthest element each operand reaches (strides are never negative): int64 offsets past 2**31.
    z, m, n, k = Z - 1, M - 1, N - 1, max(K - 1, 0)
    far = max(z * a_strides[0] + m * a_strides[1] + k * a_strides[2],
              z * b_strides[0] + k * b_strides[1] + n * b_strides[2],
              z * c_strides[0] + m * c_strides[1] + n * c_strides[2],
              z * bias_strides[0] + m * bias_strides[1] + n * bias_strides[2])
    index64 = far >= INT32_LIMIT
    tiles = Z * cdiv(M, block_m) * cdiv(N, block_n)
    flags = dict(ALPHA=alpha != 1, BIAS=bias is not None and beta != 0, BETA=beta != 1)
    bias = c if bias is None else bias
    k_span = cdiv(cdiv(K, splits), block_k) * block_k
    if splits > 1 and Z == 1 and not outer and K > k_span:
        splits = cdiv(K, k_span)
        workspace = torch.empty((splits, M, N), dtype=float_accumulator(c.dtype), device=c.device)
        index64 = index64 or workspace.numel() >= INT32_LIMIT
        _GEMM((tiles, splits), a, b, workspace, bias, M, N, K, k_span, 1.0, 1.0, *a_strides, *b_strides,
              M * N, N, 1, *bias_strides, BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k, GROUP_M=group_m,
              PRECISION=precision, ACC=accumulator(c.dtype), EVEN_K=K % block_k == 0, INDEX64=index64,
              BATCHED=False, OUTER=False, ALPHA=False, BIAS=False, BETA=False, SPLIT_K=splits,
              num_warps=warps, num_stages=stages)
        _SPLIT_K_SUM((cdiv(M, _SUM_BLOCK_M), cdiv(N, _SUM_BLOCK_N)), workspace, c, bias, M, N, float(alpha),
                     float(beta), M * N, *c_strides[1:], *bias_strides[1:], SPLITS=splits, BLOCK_M=_SUM_BLOCK_M,
                     BLOCK_N=_SUM_BLOCK_N, INDEX64=index64, **flags, num_warps=4)
        return
    _GEMM((tiles,), a, b, c, bias, M, N, K, K, float(alpha), float(beta),
          *a_strides, *b_strides, *c_strides, *bias_strides,
          BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k, GROUP_M=group_m, PRECISION=precision,
          ACC=accumulator(c.dtype), EVEN_K=K % block_k == 0, INDEX64=index64, BATCHED=Z > 1, OUTER=outer,
          **flags, SPLIT_K=1, num_warps=warps, num_stages=stages)


_SUM_BLOCK_M, _SUM_BLOCK_N = 16, 128  # the sum of partial products is memory-bound: wide rows
