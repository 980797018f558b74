"""_softmax, _log_softmax and their backward over any dim.

The input is seen as [M, N, K] through its strides, N being the softmax dim,
so non-contiguous inputs are read in place when their dims merge (a copy is
made only when they don't); results are contiguous, as PyTorch's are. K == 1
(the last dim) runs row kernels; K > 1 runs kernels whose tiles span N x K,
so no transpose is made. One kernel source serves softmax and log_softmax
(the constexpr LOG), forward and backward alike. Rows that fit one tile are
read once; longer ones keep per-lane running max and sum and read the input
twice.
"""

import torch
import triton
import triton.language as tl

from ... import runtime
from ...codegen.launch import Launcher, Replay, layout_key, planned, rows_config
from ...codegen.reduction import ank_layout
from ...utils.dtypes import HALF_DTYPES
from ...utils.layout import INT32_LIMIT, cdiv, contiguous_strides, next_power_of_2
from .common import rows_sharing_check

__all__ = ["softmax", "softmax_backward", "log_softmax", "log_softmax_backward"]

_FLOATS = runtime.supported_float_dtypes()


@triton.jit
def _online_update(m, s, x):
    """Per-lane running max ``m`` and sum ``s`` of exp(x - m) after seeing ``x``."""
    m_new = tl.maximum(m, x)
    scale = tl.where(m_new == float("-inf"), 0.0, tl.exp(m - m_new))
    grow = tl.where(m_new == float("-inf"), 0.0, tl.exp(x - m_new))
    return m_new, s * scale + grow


@triton.jit
def _normalized(shifted, e, total, LOG: tl.constexpr):
    """Softmax ``e / total`` or log-softmax ``shifted - log(total)`` of the
    max-shifted values ``shifted``, ``e`` being exp(shifted)."""
    if LOG:
        return shifted - tl.log(total)
    else:
        return e * (1.0 / total)


@triton.jit
def _summand(g, y, LOG: tl.constexpr):
    """What the backward sums along the dim: g (log-softmax) or g * y (softmax)."""
    if LOG:
        return g
    else:
        return g * y


@triton.jit
def _input_grad(g, y, total, LOG: tl.constexpr):
    if LOG:
        return g - tl.exp(y) * total
    else:
        return y * (g - total)


@triton.jit
def _forward_rows_kernel(x, y, M, N, stride_m, stride_n, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                         ONE_TILE: tl.constexpr, LOG: tl.constexpr, ACC: tl.constexpr, INDEX64: tl.constexpr):
    """Softmax (or log-softmax) of each row x[m, :] into the contiguous y (K == 1)."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_mask = (rows < M)[:, None]
    x_rows = x + rows.to(tl.int64)[:, None] * stride_m
    y_rows = y + rows.to(tl.int64)[:, None] * N
    lanes = tl.arange(0, BLOCK_N)[None, :]
    if INDEX64:
        lanes = lanes.to(tl.int64)
    if ONE_TILE:
        mask = row_mask & (lanes < N)
        v = tl.load(x_rows + lanes * stride_n, mask=mask, other=float("-inf")).to(ACC)
        shifted = v - tl.max(v, axis=1)[:, None]
        e = tl.exp(shifted)
        out = _normalized(shifted, e, tl.sum(e, axis=1)[:, None], LOG)
        tl.store(y_rows + lanes, out.to(y.dtype.element_ty), mask=mask)
    else:
        m = tl.full([BLOCK_M, BLOCK_N], float("-inf"), ACC)
        s = tl.zeros([BLOCK_M, BLOCK_N], ACC)
        for offset in range(0, N, BLOCK_N):
            cols = offset + lanes
            v = tl.load(x_rows + cols * stride_n, mask=row_mask & (cols < N), other=float("-inf")).to(ACC)
            m, s = _online_update(m, s, v)
        row_max = tl.max(m, axis=1)[:, None]
        total = tl.sum(s * tl.exp(m - row_max), axis=1)[:, None]
        for offset in range(0, N, BLOCK_N):
            cols = offset + lanes
            mask = row_mask & (cols < N)
            v = tl.load(x_rows + cols * stride_n, mask=mask, other=float("-inf")).to(ACC)
            shifted = v - row_max
            out = _normalized(shifted, tl.exp(shifted), total, LOG)
            tl.store(y_rows + cols, out.to(y.dtype.element_ty), mask=mask)


@triton.jit
def _inner_tile(K, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, INDEX64: tl.constexpr):
    """This program's m, its BLOCK_K columns k (a row) and the BLOCK_N lanes along N (a column)."""
    pid = tl.program_id(0)
    k_blocks = tl.cdiv(K, BLOCK_K)
    m = (pid // k_blocks).to(tl.int64)
    k = (pid % k_blocks) * BLOCK_K + tl.arange(0, BLOCK_K)[None, :]
    lanes = tl.arange(0, BLOCK_N)[:, None]
    if INDEX64:
        k = k.to(tl.int64)
        lanes = lanes.to(tl.int64)
    return m, k, lanes


@triton.jit
def _forward_inner_kernel(x, y, M, N, K, stride_m, stride_n, stride_k, BLOCK_N: tl.constexpr,
                          BLOCK_K: tl.constexpr, ONE_TILE: tl.constexpr, LOG: tl.constexpr, ACC: tl.constexpr,
                          INDEX64: tl.constexpr):
    """Softmax (or log-softmax) of x[m, :, k] into the contiguous y, tiles of N x K (K > 1)."""
    m, k, lanes = _inner_tile(K, BLOCK_N, BLOCK_K, INDEX64)
    x_at = x + m * stride_m + k * stride_k
    y_at = y + m * N * K + k
    if ONE_TILE:
        mask = (lanes < N) & (k < K)
        v = tl.load(x_at + lanes * stride_n, mask=mask, other=float("-inf")).to(ACC)
        shifted = v - tl.max(v, axis=0)[None, :]
        e = tl.exp(shifted)
        out = _normalized(shifted, e, tl.sum(e, axis=0)[None, :], LOG)
        tl.store(y_at + lanes * K, out.to(y.dtype.element_ty), mask=mask)
    else:
        mx = tl.full([BLOCK_N, BLOCK_K], float("-inf"), ACC)
        s = tl.zeros([BLOCK_N, BLOCK_K], ACC)
        for offset in range(0, N, BLOCK_N):
            n = offset + lanes
            v = tl.load(x_at + n * stride_n, mask=(n < N) & (k < K), other=float("-inf")).to(ACC)
            mx, s = _online_update(mx, s, v)
        col_max = tl.max(mx, axis=0)[None, :]
        total = tl.sum(s * tl.exp(mx - col_max), axis=0)[None, :]
        for offset in range(0, N, BLOCK_N):
            n = offset + lanes
            mask = (n < N) & (k < K)
            v = tl.load(x_at + n * stride_n, mask=mask, other=float("-inf")).to(ACC)
            shifted = v - col_max
            out = _normalized(shifted, tl.exp(shifted), total, LOG)
            tl.store(y_at + n * K, out.to(y.dtype.element_ty), mask=mask)


@triton.jit
def _backward_rows_kernel(g, y, gi, M, N, g_stride_m, g_stride_n, y_stride_m, y_stride_n,
                          BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, ONE_TILE: tl.constexpr,
                          LOG: tl.constexpr, ACC: tl.constexpr, INDEX64: tl.constexpr):
    """Input gradient of softmax (or log-softmax) along rows, into the contiguous gi (K == 1)."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_mask = (rows < M)[:, None]
    g_rows = g + rows.to(tl.int64)[:, None] * g_stride_m
    y_rows = y + rows.to(tl.int64)[:, None] * y_stride_m
    gi_rows = gi + rows.to(tl.int64)[:, None] * N
    lanes = tl.arange(0, BLOCK_N)[None, :]
    if INDEX64:
        lanes = lanes.to(tl.int64)
    if ONE_TILE:
        mask = row_mask & (lanes < N)
        gv = tl.load(g_rows + lanes * g_stride_n, mask=mask, other=0).to(ACC)
        yv = tl.load(y_rows + lanes * y_stride_n, mask=mask, other=0).to(ACC)
        total = tl.sum(_summand(gv, yv, LOG), axis=1)[:, None]
        tl.store(gi_rows + lanes, _input_grad(gv, yv, total, LOG).to(gi.dtype.element_ty), mask=mask)
    else:
        acc = tl.zeros([BLOCK_M, BLOCK_N], ACC)
        for offset in range(0, N, BLOCK_N):
            cols = offset + lanes
            mask = row_mask & (cols < N)
            gv = tl.load(g_rows + cols * g_stride_n, mask=mask, other=0).to(ACC)
            yv = tl.load(y_rows + cols * y_stride_n, mask=mask, other=0).to(ACC)
            acc += _summand(gv, yv, LOG)
        total = tl.sum(acc, axis=1)[:, None]
        for offset in range(0, N, BLOCK_N):
            cols = offset + lanes
            mask = row_mask & (cols < N)
            gv = tl.load(g_rows + cols * g_stride_n, mask=mask, other=0).to(ACC)
            yv = tl.load(y_rows + cols * y_stride_n, mask=mask, other=0).to(ACC)
            tl.store(gi_rows + cols, _input_grad(gv, yv, total, LOG).to(gi.dtype.element_ty), mask=mask)


@triton.jit
def _backward_inner_kernel(g, y, gi, M, N, K, g_stride_m, g_stride_n, g_stride_k, y_stride_m, y_stride_n,
                           y_stride_k, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, ONE_TILE: tl.constexpr,
                           LOG: tl.constexpr, ACC: tl.constexpr, INDEX64: tl.constexpr):
    """Input gradient of softmax (or log-softmax) along N of [M, N, K], tiles of N x K (K > 1)."""
    m, k, lanes = _inner_tile(K, BLOCK_N, BLOCK_K, INDEX64)
    g_at = g + m * g_stride_m + k * g_stride_k
    y_at = y + m * y_stride_m + k * y_stride_k
    gi_at = gi + m * N * K + k
    if ONE_TILE:
        mask = (lanes < N) & (k < K)
        gv = tl.load(g_at + lanes * g_stride_n, mask=mask, other=0).to(ACC)
        yv = tl.load(y_at + lanes * y_stride_n, mask=mask, other=0).to(ACC)
        total = tl.sum(_summand(gv, yv, LOG), axis=0)[None, :]
        tl.store(gi_at + lanes * K, _input_grad(gv, yv, total, LOG).to(gi.dtype.element_ty), mask=mask)
    else:
        acc = tl.zeros([BLOCK_N, BLOCK_K], ACC)
        for offset in range(0, N, BLOCK_N):
            n = offset + lanes
            mask = (n < N) & (k < K)
            gv = tl.load(g_at + n * g_stride_n, mask=mask, other=0).to(ACC)
            yv = tl.load(y_at + n * y_stride_n, mask=mask, other=0).to(ACC)
            acc += _summand(gv, yv, LOG)
        total = tl.sum(acc, axis=0)[None, :]
        for offset in range(0, N, BLOCK_N):
            n = offset + lanes
            mask = (n < N) & (k < K)
            gv = tl.load(g_at + n * g_stride_n, mask=mask, other=0).to(ACC)
            yv = tl.load(y_at + n * y_stride_n, mask=mask, other=0).to(ACC)
            tl.store(gi_at + n * K, _input_grad(gv, yv, total, LOG).to(gi.dtype.element_ty), mask=mask)


_FORWARD = (Launcher(_forward_rows_kernel), Launcher(_forward_inner_kernel))
_BACKWARD = (Launcher(_backward_rows_kernel), Launcher(_backward_inner_kernel))


def inner_config(M, N, K):
    """(BLOCK_N, BLOCK_K, num_warps) of the N x K kernels (K > 1)."""
    block_k = min(next_power_of_2(K), 64)
    return min(next_power_of_2(N), max(1, 8192 // block_k)), block_k, 8


def _mnk_layout(shape, strides, dim):
    """(copy, [(M, stride), (N, stride), (K, stride)]) around ``dim``: ``copy`` when the kernels
    read a contiguous copy, because the dims do not merge or the innermost one is so sparse that
    reading in place wastes more than a copy."""
    if not shape:
        shape, strides = (1,), (1,)
    dims = [dim % len(shape)]
    _, copy, merged = ank_layout(shape, strides, dims)
    (_, stride_n), (k, stride_k) = merged[1:]
    if (stride_k if k > 1 else stride_n) > 2:
        copy, merged = True, ank_layout(shape, contiguous_strides(shape), dims)[2]
    return copy, merged


_plans = {}  # launch plans by call layout


def _launch(kernels, inputs, result, dim, log, backward):
    """Run the rows or inner kernel of a pair over ``inputs`` (of one shape) into the contiguous ``result``."""
    if result.numel() == 0:
        return
    key = (backward, log, dim, inputs[0].device, layout_key(result), *map(layout_key, inputs))
    copies, ints, replay = planned(_plans, key, lambda: _plan(kernels, inputs, dim, log, backward))
    replay(*[t.contiguous() if copy else t for t, copy in zip(inputs, copies)], result, *ints)


def _plan(kernels, inputs, dim, log, backward):
    """(which inputs the kernels read as contiguous copies, the int arguments, the launch)."""
    layouts = [_mnk_layout(t.shape, t.stride(), dim) for t in inputs]
    (M, _), (N, _), (K, _) = layouts[0][1]
    strides = [[stride for _, stride in merged] for _, merged in layouts]
    span = max((N - 1) * sn + (K - 1) * sk for _, sn, sk in strides)
    index64 = max(span, N * K) >= INT32_LIMIT
    fp64 = inputs[0].dtype == torch.float64
    acc = tl.float64 if fp64 else tl.float32
    rows_kernel, inner_kernel = kernels
    copies = [copy for copy, _ in layouts]
    if K == 1:
        # Values of one row kept in registers: halved for fp64 and for the two inputs of a backward.
        one_tile_limit = 32768 >> (fp64 + backward)
        vendor_config = runtime.config("softmax", None)  # a vendor's (M, N) -> (BLOCK_M, BLOCK_N, num_warps)
        block_m, block_n, warps = rows_config(M, N, one_tile_limit) if vendor_config is None else vendor_config(M, N)
        ints = (M, N, *[s for sm, sn, _ in strides for s in (sm, sn)])
        return copies, ints, Replay(rows_kernel, (cdiv(M, block_m),), dict(
            BLOCK_M=block_m, BLOCK_N=block_n, ONE_TILE=block_n >= N, LOG=log, ACC=acc, INDEX64=index64,
            num_warps=warps))
    block_n, block_k, warps = runtime.config("softmax_inner", inner_config)(M, N, K)
    ints = (M, N, K, *[s for t in strides for s in t])
    return copies, ints, Replay(inner_kernel, (M * cdiv(K, block_k),), dict(
        BLOCK_N=block_n, BLOCK_K=block_k, ONE_TILE=block_n >= N, LOG=log, ACC=acc, INDEX64=index64,
        num_warps=warps))


def _forward(self, dim, half_to_float, out, log):
    dtype = torch.float32 if half_to_float else self.dtype
    result = out if out is not None and out.is_contiguous() else torch.empty(self.shape, dtype=dtype,
                                                                             device=self.device)
    _launch(_FORWARD, (self,), result, dim, log, backward=False)
    if out is not None and result is not out:
        return out.copy_(result)
    return result


def _backward(grad_output, output, dim, input_dtype, out, log):
    result = out if out is not None and out.is_contiguous() else torch.empty(
        grad_output.shape, dtype=input_dtype, device=grad_output.device)
    _launch(_BACKWARD, (grad_output, output), result, dim, log, backward=True)
    if out is not None and result is not out:
        return out.copy_(result)
    return result


def softmax(self, dim, half_to_float=False, *, out=None):
    """Softmax of ``self`` along ``dim``; fp32 result for half input when ``half_to_float``."""
    return _forward(self, dim, half_to_float, out, log=False)


def log_softmax(self, dim, half_to_float=False, *, out=None):
    """Log-softmax of ``self`` along ``dim``: x - max - log(sum(exp(x - max)))."""
    return _forward(self, dim, half_to_float, out, log=True)


def softmax_backward(grad_output, output, dim, input_dtype, *, grad_input=None):
    """Gradient of softmax: ``output * (grad_output - sum(grad_output * output, dim))``."""
    return _backward(grad_output, output, dim, input_dtype, grad_input, log=False)


def log_softmax_backward(grad_output, output, dim, input_dtype, *, out=None):
    """Gradient of log-softmax: ``grad_output - exp(output) * sum(grad_output, dim)``."""
    return _backward(grad_output, output, dim, input_dtype, out, log=True)


def _valid_dim(dim, tensor):
    rank = max(tensor.dim(), 1)
    return isinstance(dim, int) and -rank <= dim < rank


def _forward_unsupported(self, dim, half_to_float=False, *, out=None):
    if self.dtype not in _FLOATS:
        return f"dtype {self.dtype} is not supported"
    if not _valid_dim(dim, self):
        return "invalid dim"
    if half_to_float and (self.dtype not in HALF_DTYPES or self.device.type == "cpu"):
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
        grad_output.dtype == torch.float32 and input_dtype in HALF_DTYPES
    ):
        return "input_dtype does not match"
    if not _valid_dim(dim, output):
        return "invalid dim"
    if grad_input is not None and (grad_input.dtype != input_dtype or grad_input.shape != output.shape
                                   or grad_input.device != output.device):
        return "grad_input differs from the result in dtype, shape or device"
    return None


def _log_backward_unsupported(grad_output, output, dim, input_dtype, *, out=None):
    return _backward_unsupported(grad_output, output, dim, input_dtype, grad_input=out)


ATEN = (
    rows_sharing_check(_forward_unsupported, (softmax, "_softmax", "_softmax.out"))
    + rows_sharing_check(_backward_unsupported, (softmax_backward, "_softmax_backward_data", "_softmax_backward_data.out"))
    + rows_sharing_check(_forward_unsupported, (log_softmax, "_log_softmax", "_log_softmax.out"))
    + rows_sharing_check(_log_backward_unsupported, (log_softmax_backward, "_log_softmax_backward_data",
                                            "_log_softmax_backward_data.out"))
)
