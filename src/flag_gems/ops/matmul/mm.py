"""mm: fp16 / bf16 / fp32 / fp64 matrices of any strides.

fp32 uses TF32 tensor cores only when ``torch.backends.cuda.matmul.allow_tf32``
says so, as PyTorch does; fp64 and strict fp32 run in full precision.
Programs walk the output in groups of GROUP_M row-blocks so neighbouring
programs reuse the same B tiles from L2.

Tiles come from the tuner (``flag_gems.tuning``): the key buckets M, N, K to
powers of two and adds the dtype, the layout of each operand and TF32; tuning
times the space below, pruned to what fits shared memory and registers, and
PyTorch's own mm as a candidate. A bucket with no tuned entry (in the local
cache or shipped with the package, ``tuning/shipped``) runs PyTorch's mm where
it is a candidate (GPUs: our kernel runs where tuning saw it win), else
``default_config`` (the interpreter, ``GEMS_TUNE_NATIVE=0``, mode ``off``).
"""

import threading

import torch
import triton
import triton.language as tl

from ... import runtime, tuning
from ...codegen.launch import Launcher
from ...codegen.tl_math import INTERPRETED
from ...dispatch import Row
from ...runtime.nesting import native_calls
from ...utils.layout import INT32_LIMIT, cdiv, separate_output_reason

__all__ = ["mm"]

_DTYPES = runtime.supported_float_dtypes()


@triton.jit
def _mm_kernel(a, b, c, M, N, K, stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
               BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
               GROUP_M: tl.constexpr, PRECISION: tl.constexpr, ACC: tl.constexpr,
               EVEN_K: tl.constexpr, INDEX64: tl.constexpr):
    pid = tl.program_id(0)
    blocks_m = tl.cdiv(M, BLOCK_M)
    blocks_n = tl.cdiv(N, BLOCK_N)
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
    tl.store(c + cm[:, None] * stride_cm + cn[None, :] * stride_cn, acc.to(c.dtype.element_ty), mask=mask)


_MM = Launcher(_mm_kernel)


def default_config(M, N, K, dtype):
    """(BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, num_warps, num_stages) for a shape."""
    if dtype in (torch.float64,) or (dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32):
        return 64, 64, 32, 8, 4, 3
    if dtype == torch.float32:  # TF32: 4-byte tiles, so half the K depth fits shared memory
        return 128, 256, 32, 8, 8, 3
    # Chosen by measurement on an H100 (bf16): decode-shaped, medium and large products.
    if M <= 16:
        return 16, 64, 256, 1, 4, 3
    if M * N >= 2048 * 2048:
        return 128, 256, 64, 8, 8, 3
    return 64, 128, 64, 8, 4, 4


def _precision(dtype):
    if dtype == torch.float32 and torch.backends.cuda.matmul.allow_tf32:
        return "tf32"
    return "ieee"


CONFIG_FIELDS = ("BLOCK_M", "BLOCK_N", "BLOCK_K", "GROUP_M", "num_warps", "num_stages")


def default_space():
    """Candidates for Hopper-class GPUs, likeliest first (quick mode times the first
    few); pruning drops what a key or the device cannot use."""
    likely = [(128, 256, 64, 8, 8, 3), (128, 128, 64, 8, 4, 4), (64, 128, 64, 8, 4, 4), (128, 128, 64, 8, 8, 3),
              (64, 256, 64, 8, 4, 3), (128, 64, 64, 8, 4, 4), (64, 64, 64, 8, 4, 5),
              (16, 64, 256, 1, 4, 3), (16, 128, 128, 1, 4, 4), (16, 32, 256, 1, 4, 4), (16, 64, 128, 1, 4, 5)]
    decode = [(16, n, k, 1, 4, stages) for n in (32, 64, 128) for k in (64, 128, 256) for stages in (3, 4, 5)]
    tiles = [(m, n, k, 8, warps, stages) for m in (64, 128) for n in (64, 128, 256) for k in (32, 64, 128)
             for warps in (4, 8) for stages in (3, 4, 5)]
    return likely + [c for c in decode + tiles if c not in likely]


def _layout(stride):
    """Transposition class of an operand: row-major, column-major or strided."""
    return "n" if stride[1] == 1 else "t" if stride[0] == 1 else "s"


def _bucket(M, N, K, dtype, a_stride, b_stride, tf32):
    return (tuning.next_power_of_2(M), tuning.next_power_of_2(N), tuning.next_power_of_2(K),
            str(dtype).replace("torch.", ""), _layout(a_stride), _layout(b_stride), tf32)


def _heuristic(M, N, K, dtype, a_stride, b_stride, tf32):
    return runtime.config("mm", default_config)(M, N, K, dtype)


_ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}
_MAX_ACCUMULATOR_REGISTERS = 128  # per thread; more spills


def _fits(key, config):
    """Whether a tile suits the key's bucket and fits shared memory and registers."""
    m, n, k, dtype = key[:4]
    block_m, block_n, block_k, _, warps, stages = config
    if (block_m <= 16) != (m <= 16):  # decode tiles for decode shapes only
        return False
    if block_m > max(m, 16) or block_n > max(n, 16) or block_k > max(k, 16):
        return False
    shared = tuning.max_shared_memory()
    if shared is not None and (block_m * block_k + block_k * block_n) * _ITEMSIZE[dtype] * stages > shared:
        return False
    accumulator_bytes = block_m * block_n * (8 if dtype == "float64" else 4)
    return accumulator_bytes // (warps * 32 * 4) <= _MAX_ACCUMULATOR_REGISTERS


# cuBLAS is the default: a bucket runs our kernel once tuning (local or shipped) saw it win.
_TUNER = tuning.Tuner("mm", heuristic=_heuristic, space=default_space, key=_bucket, prune=_fits,
                      sources=[_mm_kernel], fields=CONFIG_FIELDS, native=True, native_unless_tuned=True)


def _raw_key(a, b):
    dtype = a.dtype
    return (a.shape[0], b.shape[1], a.shape[1], dtype, a.stride(), b.stride(),
            dtype is torch.float32 and torch.backends.cuda.matmul.allow_tf32)


def _choice(a, b):
    """The tuner's config (or tuning.NATIVE) for a @ b: one dict lookup once known."""
    raw = _raw_key(a, b)
    choice = _TUNER.cached(raw)
    if choice is None:
        choice = _TUNER.resolve(raw, _candidate_runner(a, b))
    return choice


def _candidate_runner(a, b):
    """run(config) for tuning: one product into a scratch result."""
    scratch = torch.empty((a.shape[0], b.shape[1]), dtype=a.dtype, device=a.device)

    def run(config):
        if config is tuning.NATIVE:
            torch.mm(a, b, out=scratch)
        else:
            _launch(a, b, scratch, config)

    return run


def _launch(a, b, c, config):
    M, K = a.shape
    N = b.shape[1]
    block_m, block_n, block_k, group_m, warps, stages = config
    span = max((M - 1) * a.stride(0) + (K - 1) * a.stride(1),
               (K - 1) * b.stride(0) + (N - 1) * b.stride(1),
               (M - 1) * c.stride(0) + (N - 1) * c.stride(1))
    grid = (cdiv(M, block_m) * cdiv(N, block_n),)
    _MM(grid, a, b, c, M, N, K, *a.stride(), *b.stride(), *c.stride(),
        BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k, GROUP_M=group_m,
        PRECISION=_precision(a.dtype), ACC=tl.float64 if a.dtype == torch.float64 else tl.float32,
        EVEN_K=K % block_k == 0, INDEX64=span >= INT32_LIMIT, num_warps=warps, num_stages=stages)


class _Handoff(threading.local):
    # (a, b, config): what _mm_unsupported chose for the call it just let through, so the
    # implementation that the router (or flag_gems.ops.mm) calls next does not ask again.
    pending = None


_handoff = _Handoff()


def mm(self, mat2, *, out=None):
    """``self @ mat2`` for 2-D matrices."""
    pending, _handoff.pending = _handoff.pending, None
    M, K = self.shape
    N = mat2.shape[1]
    result = torch.empty((M, N), dtype=self.dtype, device=self.device) if out is None else out
    if M == 0 or N == 0:
        return result
    if K == 0:
        return result.zero_()
    if pending is not None and pending[0] is self and pending[1] is mat2:
        config = pending[2]
    else:  # called on its own, not after _mm_unsupported
        config = _choice(self, mat2)
        if config is tuning.NATIVE:
            with native_calls():
                return torch.mm(self, mat2, out=result)
    _launch(self, mat2, result, config)
    return result


def _mm_unsupported(self, mat2, *, out=None):
    if self.dtype not in _DTYPES or mat2.dtype != self.dtype:
        return f"dtypes {self.dtype}, {mat2.dtype} not supported"
    if self.dim() != 2 or mat2.dim() != 2 or self.shape[1] != mat2.shape[0]:
        return "not two multipliable matrices"
    if mat2.device != self.device:
        return "operands on different devices"
    if (self.dtype == torch.float32 and self.is_cuda and torch.backends.cuda.matmul.allow_tf32
            and mat2.stride(1) == 1 and mat2.shape[1] > 1):
        # Triton cannot feed Hopper's tensor cores a transposed 32-bit operand: measured 4x
        # slower than cuBLAS on an H100, while a K-major mat2 (nn.Linear's weight) runs well.
        return "tf32 with a row-major mat2 is faster natively"
    if out is not None:
        if out.dtype != self.dtype or out.device != self.device:
            return "out differs in dtype or device"
        if out.shape != (self.shape[0], mat2.shape[1]):
            return "out needs resizing"
        reason = separate_output_reason(out, self, mat2)
        if reason is not None:
            return reason
    if self.numel() and mat2.numel():
        config = _choice(self, mat2)
        if config is tuning.NATIVE:
            return "no tuned entry wins here" if _raw_key(self, mat2) in _TUNER.untuned else "tuned: native faster"
        _handoff.pending = (self, mat2, config)
    return None


ATEN = (
    Row("mm", mm, _mm_unsupported),
    Row("mm.out", mm, _mm_unsupported),
)
