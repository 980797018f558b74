"""sum: over all elements or any dims, keepdim, dtype=, out=.

The input is seen as [A, N, K] (kept dims before the reduced ones, the reduced
dims, kept dims after them) through its strides, so reducing any dim, the
last or not, reads the tensor in place. Only when the reduced or kept dims
cannot be merged into single strides is a contiguous copy made first. Long
reductions with few outputs split N across programs and finish with a second
pass over the partial sums, deterministically.
"""

import builtins

import torch
import triton
import triton.language as tl

from .. import runtime
from ..codegen.launch import Launcher
from ..codegen.pointwise import TL_DTYPE
from ..dispatch import Row

__all__ = ["sum", "sum_dim"]

_SUPPORTED = runtime.supported_dtypes()
_INT32_LIMIT = 2**31


@triton.jit
def _sum_rows_kernel(x, out, A, N, stride_a, stride_n, n_per_split, SPLIT: tl.constexpr,
                     BLOCK_A: tl.constexpr, BLOCK_N: tl.constexpr, CAST: tl.constexpr,
                     ACC: tl.constexpr, INDEX64: tl.constexpr):
    """out[a, split] = sum of x[a, n] over this split's n (K == 1)."""
    rows = tl.program_id(0) * BLOCK_A + tl.arange(0, BLOCK_A)
    split = tl.program_id(1)
    if INDEX64:
        rows = rows.to(tl.int64)
    start = split * n_per_split
    end = tl.minimum(start + n_per_split, N)
    acc = tl.zeros([BLOCK_A, BLOCK_N], dtype=ACC)
    row_ptr = x + rows[:, None] * stride_a
    for offset in range(start, end, BLOCK_N):
        cols = offset + tl.arange(0, BLOCK_N)
        if INDEX64:
            cols = cols.to(tl.int64)
        mask = (rows < A)[:, None] & (cols < end)[None, :]
        values = tl.load(row_ptr + cols[None, :] * stride_n, mask=mask, other=0)
        acc += values.to(CAST).to(ACC)
    tl.store(out + rows * SPLIT + split, tl.sum(acc, axis=1).to(out.dtype.element_ty), mask=rows < A)


@triton.jit
def _sum_cols_kernel(x, out, A, N, K, stride_a, stride_n, stride_k, n_per_split,
                     SPLIT: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                     CAST: tl.constexpr, ACC: tl.constexpr, INDEX64: tl.constexpr):
    """out[a, split, k] = sum of x[a, n, k] over this split's n (K > 1)."""
    pid = tl.program_id(0)
    k_blocks = tl.cdiv(K, BLOCK_K)
    k = (pid % k_blocks) * BLOCK_K + tl.arange(0, BLOCK_K)
    rest = pid // k_blocks
    split = rest % SPLIT
    a = rest // SPLIT
    if INDEX64:
        a = a.to(tl.int64)
        k = k.to(tl.int64)
    start = split * n_per_split
    end = tl.minimum(start + n_per_split, N)
    acc = tl.zeros([BLOCK_N, BLOCK_K], dtype=ACC)
    base = x + a * stride_a + k[None, :] * stride_k
    for offset in range(start, end, BLOCK_N):
        n = offset + tl.arange(0, BLOCK_N)
        if INDEX64:
            n = n.to(tl.int64)
        mask = (n < end)[:, None] & (k < K)[None, :]
        values = tl.load(base + n[:, None] * stride_n, mask=mask, other=0)
        acc += values.to(CAST).to(ACC)
    tl.store(out + (a * SPLIT + split) * K + k, tl.sum(acc, axis=0).to(out.dtype.element_ty), mask=k < K)


_ROWS = Launcher(_sum_rows_kernel)
_COLS = Launcher(_sum_cols_kernel)


def _accumulator(dtype):
    if dtype.is_floating_point:
        return torch.float64 if dtype == torch.float64 else torch.float32
    return torch.int64


def _merge(sizes, strides):
    """One (size, stride) for a group of dims, or None when they don't merge."""
    pairs = [(s, st) for s, st in zip(sizes, strides) if s != 1]
    if not pairs:
        return 1, 0
    size, stride = pairs[0]
    for s, st in pairs[1:]:
        if stride != st * s:
            return None
        size, stride = size * s, st
    return size, stride


def _as_ank(x, dims):
    """(x, [(A, stride), (N, stride), (K, stride)]) for reducing sorted ``dims``."""
    nd = x.dim()
    if dims == list(range(dims[0], dims[-1] + 1)):
        order = list(range(nd))
        groups = (range(0, dims[0]), range(dims[0], dims[-1] + 1), range(dims[-1] + 1, nd))
    else:
        kept = [d for d in range(nd) if d not in dims]
        order = kept + dims
        groups = (range(0, len(kept)), range(len(kept), nd), range(nd, nd))
        x = x.permute(order)
    sizes, strides = x.shape, x.stride()
    merged = [_merge([sizes[d] for d in g], [strides[d] for d in g]) for g in groups]
    if None in merged:
        x = x.contiguous()
        sizes, strides = x.shape, x.stride()
        merged = [_merge([sizes[d] for d in g], [strides[d] for d in g]) for g in groups]
    return x, merged


def cols_config(A, N, K, stride_k):
    """(BLOCK_N, BLOCK_K, num_warps, programs per multiprocessor) for K > 1."""
    # Measured on an H100 (fp32 4096x8192 over dim 0): 16x256 tiles, 8 warps, 4 programs per SM.
    block_k = builtins.min(triton.next_power_of_2(K), 256 if stride_k == 1 else 32)
    block_n = builtins.min(triton.next_power_of_2(N), builtins.max(1, 4096 // block_k))
    return block_n, block_k, 8, 4


def _split(outputs, n, block_n, device, programs_per_sm):
    """How many programs share each reduction, so the device stays busy."""
    target = runtime.multiprocessor_count(device.index or 0) * programs_per_sm
    if outputs >= target or n <= 4 * block_n:
        return 1
    return builtins.min(triton.cdiv(target, outputs), triton.cdiv(n, 4 * block_n), 1024)


def _reduce_ank(x, a, n, k, out_flat, cast, acc_dtype):
    """Sum [A, N, K] (sizes with strides) into the contiguous ``out_flat`` of A*K."""
    (A, sa), (N, sn), (K, sk) = a, n, k
    span = (A - 1) * sa + (N - 1) * sn + (K - 1) * sk
    index64 = builtins.max(span, A * N * K) >= _INT32_LIMIT
    acc = TL_DTYPE[acc_dtype]
    if K == 1:
        block_n = builtins.min(triton.next_power_of_2(N), 4096 if sn == 1 else 256)
        block_a = builtins.min(triton.next_power_of_2(A), builtins.max(1, 4096 // block_n))
        split = _split(triton.cdiv(A, block_a), N, block_n, x.device, 8)  # measured: 8 per SM
        target = out_flat if split == 1 else torch.empty((A, split), dtype=acc_dtype, device=x.device)
        per_split = triton.cdiv(N, split)
        _ROWS((triton.cdiv(A, block_a), split), x, target, A, N, sa, sn, per_split, SPLIT=split,
              BLOCK_A=block_a, BLOCK_N=block_n, CAST=cast, ACC=acc, INDEX64=index64,
              num_warps=4 if block_a * block_n <= 2048 else 8)
        if split > 1:
            _reduce_ank(target, (A, split), (split, 1), (1, 0), out_flat, acc, acc_dtype)
        return
    block_n, block_k, warps, programs_per_sm = runtime.config("sum_cols", cols_config)(A, N, K, sk)
    programs = A * triton.cdiv(K, block_k)
    split = _split(programs, N, block_n, x.device, programs_per_sm)
    target = out_flat if split == 1 else torch.empty((A, split, K), dtype=acc_dtype, device=x.device)
    per_split = triton.cdiv(N, split)
    _COLS((programs * split,), x, target, A, N, K, sa, sn, sk, per_split, SPLIT=split,
          BLOCK_N=block_n, BLOCK_K=block_k, CAST=cast, ACC=acc, INDEX64=index64, num_warps=warps)
    if split > 1:
        _reduce_ank(target, (A, split * K), (split, K), (K, 1), out_flat, acc, acc_dtype)


def _normalize_dims(dim, ndim):
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return list(range(ndim))
    dims = [dim] if isinstance(dim, int) else list(dim)
    rank = builtins.max(ndim, 1)
    return sorted({d % rank for d in dims}) if ndim else []


def _result_dtype(self, dtype, out):
    if dtype is not None:
        return dtype
    if out is not None:
        return out.dtype
    return self.dtype if self.dtype.is_floating_point else torch.int64


def sum_dim(self, dim=None, keepdim=False, *, dtype=None, out=None):
    """Sum over ``dim`` (an int, a list, or None/[] for every dim)."""
    result_dtype = _result_dtype(self, dtype, out)
    dims = _normalize_dims(dim, self.dim())
    shape = [1 if d in dims else s for d, s in enumerate(self.shape)] if keepdim else [
        s for d, s in enumerate(self.shape) if d not in dims]
    if out is None or not out.is_contiguous():
        result = torch.empty(shape, dtype=result_dtype, device=self.device)
    else:
        result = out
    if result.numel() > 0:
        if self.numel() == 0:
            result.zero_()
        elif not dims:
            result.copy_(self.reshape(shape))
        else:
            cast = TL_DTYPE[dtype if dtype is not None else self.dtype]
            x, (a, n, k) = _as_ank(self, dims)
            _reduce_ank(x, a, n, k, result, cast, _accumulator(result_dtype))
    if out is not None and result is not out:
        out.copy_(result)
        return out
    return result


def sum(self, *, dtype=None, out=None):
    return sum_dim(self, None, False, dtype=dtype, out=out)


def _sum_unsupported(self, dim=None, keepdim=False, *, dtype=None, out=None):
    if self.dtype not in _SUPPORTED:
        return f"dtype {self.dtype} is not supported"
    if dtype is not None and (dtype not in _SUPPORTED or dtype == torch.bool):
        return f"dtype= {dtype} is not supported"
    if dim is not None:
        dims = [dim] if isinstance(dim, int) else list(dim)
        rank = builtins.max(self.dim(), 1)
        if any(not -rank <= d < rank for d in dims) or len({d % rank for d in dims}) != len(dims):
            return "invalid dim"
    if out is not None:
        if dtype is not None and out.dtype != dtype:
            return "out dtype differs from dtype="
        if out.dtype not in _SUPPORTED or out.dtype == torch.bool:
            return f"out dtype {out.dtype} is not supported"
        if out.device != self.device:
            return "out on another device"
        dims = _normalize_dims(dim, self.dim())
        expected = [1 if d in dims else s for d, s in enumerate(self.shape)] if keepdim else [
            s for d, s in enumerate(self.shape) if d not in dims]
        if list(out.shape) != expected:
            return "out needs resizing"
    return None


def _sum_all_unsupported(self, *, dtype=None, out=None):
    return _sum_unsupported(self, None, False, dtype=dtype, out=out)


ATEN = (
    Row("sum", sum, _sum_all_unsupported),
    Row("sum.out", sum, _sum_all_unsupported),
    Row("sum.dim_IntList", sum_dim, _sum_unsupported),
    Row("sum.IntList_out", sum_dim, _sum_unsupported),
)
