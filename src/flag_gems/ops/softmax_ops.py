"""_softmax and _softmax_backward_data over any dim.

The input is seen as [M, N, K] with N the softmax dim. K == 1 (the last dim)
runs row kernels; K > 1 runs kernels whose tiles span N x K with K
contiguous, so no transpose is made. Rows that fit one tile are read once;
longer ones keep per-lane running max and sum and read the input twice.
"""

import torch
import triton
import triton.language as tl

from .. import runtime
from ..codegen.launch import Launcher
from ..dispatch import Row

__all__ = ["softmax", "softmax_backward"]

_FLOATS = {torch.float16, torch.bfloat16, torch.float32, torch.float64} & runtime.supported_dtypes()
_ONE_TILE_LIMIT = 16384  # elements of a row kept in registers at once


@triton.jit
def _online_update(m, s, x):
    """Per-lane running max ``m`` and sum ``s`` of exp(x - m) after seeing ``x``."""
    m_new = tl.maximum(m, x)
    scale = tl.where(m_new == float("-inf"), 0.0, tl.exp(m - m_new))
    grow = tl.where(m_new == float("-inf"), 0.0, tl.exp(x - m_new))
    return m_new, s * scale + grow


@triton.jit
def _softmax_rows_kernel(x, y, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                         ONE_TILE: tl.constexpr, ACC: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_mask = (rows < M)[:, None]
    x_rows = x + rows.to(tl.int64)[:, None] * N
    y_rows = y + rows.to(tl.int64)[:, None] * N
    if ONE_TILE:
        cols = tl.arange(0, BLOCK_N)[None, :]
        mask = row_mask & (cols < N)
        v = tl.load(x_rows + cols, mask=mask, other=float("-inf")).to(ACC)
        e = tl.exp(v - tl.max(v, axis=1)[:, None])
        inv = 1.0 / tl.sum(e, axis=1)
        tl.store(y_rows + cols, (e * inv[:, None]).to(y.dtype.element_ty), mask=mask)
    else:
        m = tl.full([BLOCK_M, BLOCK_N], float("-inf"), ACC)
        s = tl.zeros([BLOCK_M, BLOCK_N], ACC)
        for offset in range(0, N, BLOCK_N):
            cols = offset + tl.arange(0, BLOCK_N)[None, :]
            v = tl.load(x_rows + cols, mask=row_mask & (cols < N), other=float("-inf")).to(ACC)
            m, s = _online_update(m, s, v)
        row_max = tl.max(m, axis=1)
        inv = 1.0 / tl.sum(s * tl.exp(m - row_max[:, None]), axis=1)
        for offset in range(0, N, BLOCK_N):
            cols = offset + tl.arange(0, BLOCK_N)[None, :]
            mask = row_mask & (cols < N)
            v = tl.load(x_rows + cols, mask=mask, other=float("-inf")).to(ACC)
            out = tl.exp(v - row_max[:, None]) * inv[:, None]
            tl.store(y_rows + cols, out.to(y.dtype.element_ty), mask=mask)


@triton.jit
def _softmax_inner_kernel(x, y, M, N, K, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                          ONE_TILE: tl.constexpr, ACC: tl.constexpr):
    pid = tl.program_id(0)
    k_blocks = tl.cdiv(K, BLOCK_K)
    k = (pid % k_blocks) * BLOCK_K + tl.arange(0, BLOCK_K)[None, :]
    base = (pid // k_blocks).to(tl.int64) * N * K
    x_at = x + base + k
    y_at = y + base + k
    if ONE_TILE:
        n = tl.arange(0, BLOCK_N)[:, None]
        mask = (n < N) & (k < K)
        v = tl.load(x_at + n * K, mask=mask, other=float("-inf")).to(ACC)
        e = tl.exp(v - tl.max(v, axis=0)[None, :])
        inv = 1.0 / tl.sum(e, axis=0)
        tl.store(y_at + n * K, (e * inv[None, :]).to(y.dtype.element_ty), mask=mask)
    else:
        m = tl.full([BLOCK_N, BLOCK_K], float("-inf"), ACC)
        s = tl.zeros([BLOCK_N, BLOCK_K], ACC)
        for offset in range(0, N, BLOCK_N):
            n = offset + tl.arange(0, BLOCK_N)[:, None]
            v = tl.load(x_at + n * K, mask=(n < N) & (k < K), other=float("-inf")).to(ACC)
            m, s = _online_update(m, s, v)
        col_max = tl.max(m, axis=0)
        inv = 1.0 / tl.sum(s * tl.exp(m - col_max[None, :]), axis=0)
        for offset in range(0, N, BLOCK_N):
            n = offset + tl.arange(0, BLOCK_N)[:, None]
            mask = (n < N) & (k < K)
            v = tl.load(x_at + n * K, mask=mask, other=float("-inf")).to(ACC)
            out = tl.exp(v - col_max[None, :]) * inv[None, :]
            tl.store(y_at + n * K, out.to(y.dtype.element_ty), mask=mask)


@triton.jit
def _backward_rows_kernel(g, y, gi, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                          ONE_TILE: tl.constexpr, ACC: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_mask = (rows < M)[:, None]
    offsets = rows.to(tl.int64)[:, None] * N
    if ONE_TILE:
        cols = tl.arange(0, BLOCK_N)[None, :]
        mask = row_mask & (cols < N)
        gv = tl.load(g + offsets + cols, mask=mask, other=0).to(ACC)
        yv = tl.load(y + offsets + cols, mask=mask, other=0).to(ACC)
        dot = tl.sum(gv * yv, axis=1)
        tl.store(gi + offsets + cols, (yv * (gv - dot[:, None])).to(gi.dtype.element_ty), mask=mask)
    else:
        acc = tl.zeros([BLOCK_M, BLOCK_N], ACC)
        for offset in range(0, N, BLOCK_N):
            cols = offset + tl.arange(0, BLOCK_N)[None, :]
            mask = row_mask & (cols < N)
            gv = tl.load(g + offsets + cols, mask=mask, other=0).to(ACC)
            yv = tl.load(y + offsets + cols, mask=mask, other=0).to(ACC)
            acc += gv * yv
        dot = tl.sum(acc, axis=1)
        for offset in range(0, N, BLOCK_N):
            cols = offset + tl.arange(0, BLOCK_N)[None, :]
            mask = row_mask & (cols < N)
            gv = tl.load(g + offsets + cols, mask=mask, other=0).to(ACC)
            yv = tl.load(y + offsets + cols, mask=mask, other=0).to(ACC)
            tl.store(gi + offsets + cols, (yv * (gv - dot[:, None])).to(gi.dtype.element_ty), mask=mask)


@triton.jit
def _backward_inner_kernel(g, y, gi, M, N, K, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                           ONE_TILE: tl.constexpr, ACC: tl.constexpr):
    pid = tl.program_id(0)
    k_blocks = tl.cdiv(K, BLOCK_K)
    k = (pid % k_blocks) * BLOCK_K + tl.arange(0, BLOCK_K)[None, :]
    base = (pid // k_blocks).to(tl.int64) * N * K + k
    if ONE_TILE:
        n = tl.arange(0, BLOCK_N)[:, None]
        mask = (n < N) & (k < K)
        gv = tl.load(g + base + n * K, mask=mask, other=0).to(ACC)
        yv = tl.load(y + base + n * K, mask=mask, other=0).to(ACC)
        dot = tl.sum(gv * yv, axis=0)
        tl.store(gi + base + n * K, (yv * (gv - dot[None, :])).to(gi.dtype.element_ty), mask=mask)
    else:
        acc = tl.zeros([BLOCK_N, BLOCK_K], ACC)
        for offset in range(0, N, BLOCK_N):
            n = offset + tl.arange(0, BLOCK_N)[:, None]
            mask = (n < N) & (k < K)
            gv = tl.load(g + base + n * K, mask=mask, other=0).to(ACC)
            yv = tl.load(y + base + n * K, mask=mask, other=0).to(ACC)
            acc += gv * yv
        dot = tl.sum(acc, axis=0)
        for offset in range(0, N, BLOCK_N):
            n = offset + tl.arange(0, BLOCK_N)[:, None]
            mask = (n < N) & (k < K)
            gv = tl.load(g + base + n * K, mask=mask, other=0).to(ACC)
            yv = tl.load(y + base + n * K, mask=mask, other=0).to(ACC)
            tl.store(gi + base + n * K, (yv * (gv - dot[None, :])).to(gi.dtype.element_ty), mask=mask)


_FORWARD = (Launcher(_softmax_rows_kernel), Launcher(_softmax_inner_kernel))
_BACKWARD = (Launcher(_backward_rows_kernel), Launcher(_backward_inner_kernel))


def _mnk(shape, dim):
    dim = dim % max(len(shape), 1)
    m = 1
    for s in shape[:dim]:
        m *= s
    k = 1
    for s in shape[dim + 1:]:
        k *= s
    return m, (shape[dim] if shape else 1), k


def _launch(kernels, tensors, shape, dim):
    """Run the rows or inner kernel of a pair over contiguous ``tensors``."""
    M, N, K = _mnk(shape, dim)
    if M * N * K == 0:
        return
    acc = tl.float64 if tensors[0].dtype == torch.float64 else tl.float32
    rows_kernel, inner_kernel = kernels
    config = runtime.config("softmax", None)
    if K == 1:
        block_n = min(triton.next_power_of_2(N), _ONE_TILE_LIMIT)
        block_m = min(triton.next_power_of_2(M), max(1, 4096 // block_n))
        warps = 4 if block_m * block_n <= 2048 else 8 if block_m * block_n <= 8192 else 16
        if config is not None:
            block_m, block_n, warps = config(M, N)
        rows_kernel((triton.cdiv(M, block_m),), *tensors, M, N, BLOCK_M=block_m, BLOCK_N=block_n,
                    ONE_TILE=block_n >= N, ACC=acc, num_warps=warps)
    else:
        block_k = min(triton.next_power_of_2(K), 64)
        block_n = min(triton.next_power_of_2(N), max(1, 8192 // block_k))
        inner_kernel((M * triton.cdiv(K, block_k),), *tensors, M, N, K, BLOCK_N=block_n,
                     BLOCK_K=block_k, ONE_TILE=block_n >= N, ACC=acc, num_warps=8)


def softmax(self, dim, half_to_float=False, *, out=None):
    """Softmax of ``self`` along ``dim``; fp32 result for half input when ``half_to_float``."""
    x = self.contiguous()
    dtype = torch.float32 if half_to_float else x.dtype
    result = torch.empty_like(x, dtype=dtype) if out is None or not out.is_contiguous() else out
    _launch(_FORWARD, (x, result), x.shape, dim)
    if out is not None and result is not out:
        return out.copy_(result)
    return result


def softmax_backward(grad_output, output, dim, input_dtype, *, grad_input=None):
    """Gradient of softmax: ``output * (grad_output - sum(grad_output * output, dim))``."""
    g = grad_output.contiguous()
    y = output.contiguous()
    result = torch.empty_like(g, dtype=input_dtype) if grad_input is None or not grad_input.is_contiguous() \
        else grad_input
    _launch(_BACKWARD, (g, y, result), g.shape, dim)
    if grad_input is not None and result is not grad_input:
        return grad_input.copy_(result)
    return result


def _valid_dim(dim, tensor):
    rank = max(tensor.dim(), 1)
    return isinstance(dim, int) and -rank <= dim < rank


def _softmax_unsupported(self, dim, half_to_float=False, *, out=None):
    if self.dtype not in _FLOATS:
        return f"dtype {self.dtype} is not supported"
    if not _valid_dim(dim, self):
        return "invalid dim"
    if half_to_float and (self.dtype not in (torch.float16, torch.bfloat16) or self.device.type == "cpu"):
        return "half_to_float needs half input on an accelerator"
    if out is not None:
        dtype = torch.float32 if half_to_float else self.dtype
        if out.dtype != dtype or out.shape != self.shape or out.device != self.device:
            return "out differs from the result in dtype, shape or device"
    return None


def _backward_unsupported(grad_output, output, dim, input_dtype, *, grad_input=None):
    if grad_output.dtype not in _FLOATS or output.dtype != grad_output.dtype or input_dtype not in _FLOATS:
        return "dtypes not supported"
    if grad_output.shape != output.shape or grad_output.device != output.device:
        return "grad_output and output differ in shape or device"
    if input_dtype != grad_output.dtype and not (
        grad_output.dtype == torch.float32 and input_dtype in (torch.float16, torch.bfloat16)
    ):
        return "input_dtype does not match"
    if not _valid_dim(dim, output):
        return "invalid dim"
    if grad_input is not None and (grad_input.dtype != input_dtype or grad_input.shape != output.shape
                                   or grad_input.device != output.device):
        return "grad_input differs from the result in dtype, shape or device"
    return None


ATEN = (
    Row("_softmax", softmax, _softmax_unsupported),
    Row("_softmax.out", softmax, _softmax_unsupported),
    Row("_softmax_backward_data", softmax_backward, _backward_unsupported),
    Row("_softmax_backward_data.out", softmax_backward, _backward_unsupported),
)
