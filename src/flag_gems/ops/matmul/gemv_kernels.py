"""Matrix-vector products (mv, addmv) and dot products (dot, vdot): memory-bound, so
a program reads a block of rows once, multiplying as it goes, with no ``tl.dot``.

``gemv_kernel`` sums ``a[m, k] * x[k]`` for BLOCK_M rows over one slice of K, in
fp32 (fp64 for fp64) whatever the input dtype. With one slice (``FINAL``) it applies the
GEMM kernel's epilogue and writes the result; with several (split-K: few rows, long K,
and dot, a single row) every slice writes its partial sums and ``gemv_finish_kernel``
adds them up in a second launch, then applies the epilogue: a two-stage reduction with
no atomics, so results do not depend on timing.
"""

import torch
import triton
import triton.language as tl

from ...codegen.launch import Launcher
from ...utils.layout import INT32_LIMIT, cdiv, next_power_of_2
from .gemm_kernels import accumulator, epilogue


@triton.jit
def gemv_kernel(a, x, y, bias, M, K, k_slice, alpha, beta, stride_am, stride_ak, stride_x, stride_y, stride_bias,
                BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, ACC: tl.constexpr, INDEX64: tl.constexpr,
                FINAL: tl.constexpr, ALPHA: tl.constexpr, BIAS: tl.constexpr, BETA: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_k = tl.program_id(1)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rk = tl.arange(0, BLOCK_K)
    k_start = pid_k * k_slice
    if INDEX64:
        rm = rm.to(tl.int64)
        rk = rk.to(tl.int64)
        k_start = k_start.to(tl.int64)
    k_end = tl.minimum(k_start + k_slice, K)
    rows = rm < M
    # Rows past the edge read row M - 1 again (no mask on the loads); the store drops them.
    a_at = a + tl.minimum(rm, M - 1)[:, None] * stride_am + (k_start + rk)[None, :] * stride_ak
    x_at = x + (k_start + rk) * stride_x
    acc = tl.zeros([BLOCK_M, BLOCK_K], dtype=ACC)
    for k in range(k_start, k_end, BLOCK_K):
        inside = k + rk < k_end
        x_tile = tl.load(x_at, mask=inside, other=0.0).to(ACC)
        a_tile = tl.load(a_at, mask=inside[None, :], other=0.0).to(ACC)
        acc += a_tile * x_tile[None, :]
        a_at += BLOCK_K * stride_ak
        x_at += BLOCK_K * stride_x
    total = tl.sum(acc, axis=1)
    if FINAL:
        total = epilogue(total, bias + rm * stride_bias, rows, alpha, beta, ALPHA, BIAS, BETA)
        tl.store(y + rm * stride_y, total.to(y.dtype.element_ty), mask=rows)
    else:  # y: the [slices, M] partial sums
        tl.store(y + pid_k * M + rm, total, mask=rows)


@triton.jit
def gemv_finish_kernel(partial, y, bias, M, SLICES, alpha, beta, stride_y, stride_bias,
                       BLOCK_M: tl.constexpr, BLOCK_S: tl.constexpr, ALPHA: tl.constexpr, BIAS: tl.constexpr,
                       BETA: tl.constexpr):
    rm = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    rs = tl.arange(0, BLOCK_S)
    rows = rm < M
    acc = tl.zeros([BLOCK_S, BLOCK_M], dtype=partial.dtype.element_ty)
    for s in range(0, SLICES, BLOCK_S):
        at = partial + (s + rs)[:, None] * M + rm[None, :]
        acc += tl.load(at, mask=((s + rs) < SLICES)[:, None] & rows[None, :], other=0.0)
    total = epilogue(tl.sum(acc, axis=0), bias + rm * stride_bias, rows, alpha, beta, ALPHA, BIAS, BETA)
    tl.store(y + rm * stride_y, total.to(y.dtype.element_ty), mask=rows)


def extent(sizes, strides):
    """The farthest offset ``strides`` reach over ``sizes`` (all sizes > 0)."""
    return sum((size - 1) * abs(stride) for size, stride in zip(sizes, strides))


_GEMV = Launcher(gemv_kernel)
_FINISH = Launcher(gemv_finish_kernel)
_FINISH_TILE = 4096  # partial sums a finishing program holds


def launch(config, y, a, a_strides, x, x_stride, M, K, *, bias=None, bias_stride=0, alpha=1, beta=1):
    """``y = alpha * a @ x + beta * bias`` for ``a`` [M, K] (``a_strides``: row, column), ``x`` [K],
    ``y`` [M] or 0-d (M == 1), ``bias`` None for none; ``config``: (BLOCK_M, BLOCK_K, SLICES,
    num_warps) with SLICES the most K is split into. ``alpha == 0`` forms no product."""
    block_m, block_k, slices, warps = config
    if alpha == 0:
        K = 0
    slices = max(1, min(slices, INT32_LIMIT // (2 * M)))  # partial sums indexed in int32
    k_slice = cdiv(cdiv(K, slices), block_k) * block_k if K else block_k
    slices = cdiv(K, k_slice) if K else 1
    y_stride = y.stride(0) if y.dim() else 0
    far = max(extent((M, max(K, 1)), a_strides), extent((max(K, 1),), (x_stride,)), extent((M,), (y_stride,)),
              extent((M,), (bias_stride,)))
    flags = dict(ALPHA=alpha != 1, BIAS=bias is not None and beta != 0, BETA=beta != 1)
    bias = y if bias is None else bias
    acc = accumulator(y.dtype)
    grid = (cdiv(M, block_m), slices)
    if slices == 1:
        _GEMV(grid, a, x, y, bias, M, K, k_slice, float(alpha), float(beta), *a_strides, x_stride, y_stride,
              bias_stride, BLOCK_M=block_m, BLOCK_K=block_k, ACC=acc, INDEX64=far >= INT32_LIMIT, FINAL=True,
              num_warps=warps, **flags)
        return
    partial = torch.empty((slices, M), dtype=torch.float64 if y.dtype == torch.float64 else torch.float32,
                          device=y.device)
    _GEMV(grid, a, x, partial, bias, M, K, k_slice, 1.0, 1.0, *a_strides, x_stride, 1, 0, BLOCK_M=block_m,
          BLOCK_K=block_k, ACC=acc, INDEX64=far >= INT32_LIMIT, FINAL=False, ALPHA=False, BIAS=False, BETA=False,
          num_warps=warps)
    block_s = min(next_power_of_2(slices), 256)
    finish_m = min(next_power_of_2(M), _FINISH_TILE // block_s)
    _FINISH((cdiv(M, finish_m),), partial, y, bias, M, slices, float(alpha), float(beta), y_stride, bias_stride,
            BLOCK_M=finish_m, BLOCK_S=block_s, num_warps=4, **flags)
