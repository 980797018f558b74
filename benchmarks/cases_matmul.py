"""Matrix products: compute-bound ones reported in TFLOP/s (2*M*N*K per call, times the
batch), matrix-vector and dot products (memory-bound) in GB/s."""

import contextlib
import os

import torch

import flag_gems
from harness import Case


def _flops(a, b):
    return 2 * a.shape[0] * a.shape[1] * b.shape[1]


def _biased_flops(bias, a, b):
    """addmm and baddbmm: the product's FLOPs (the bias adds one per output element, not counted)."""
    return 2 * a[..., 0].numel() * a.shape[-1] * b.shape[-1]


@contextlib.contextmanager
def _our_kernel():
    """Our kernel with its heuristic tiles: on a GPU an untuned shape would run PyTorch's mm
    (GEMS_TUNE_NATIVE=0 takes native out of the candidates)."""
    before = os.environ.get("GEMS_TUNE_NATIVE")
    os.environ["GEMS_TUNE_NATIVE"] = "0"
    flag_gems.tuning.forget_choices()
    try:
        yield
    finally:
        if before is None:
            del os.environ["GEMS_TUNE_NATIVE"]
        else:
            os.environ["GEMS_TUNE_NATIVE"] = before
        flag_gems.tuning.forget_choices()


@contextlib.contextmanager
def _tf32():
    """fp32 matmul on TF32 tensor cores, for torch and ours alike; our kernel."""
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        with _our_kernel():
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def _square(n):
    return ((n, n), (n, n))


def _k_major_b(shapes, dtype, device):
    """B as nn.Linear passes its weight: the transpose of a contiguous (N, K) matrix."""
    (m, k), (_, n) = shapes
    return torch.randn(m, k, dtype=dtype, device=device), torch.randn(n, k, dtype=dtype, device=device).t()


def _linear(shapes, dtype, device):
    """addmm as nn.Linear calls it: a bias, the activation, the transposed (N, K) weight."""
    (n,), (m, k), _ = shapes
    return (torch.randn(n, dtype=dtype, device=device), torch.randn(m, k, dtype=dtype, device=device),
            torch.randn(n, k, dtype=dtype, device=device).t())


def _linear_shapes(m, k, n):
    return ((n,), (m, k), (k, n))


def _addmm(name, shapes, quick):
    return Case(name, torch.bfloat16, _linear_shapes(*shapes), _linear_shapes(*quick), torch.addmm,
                flops=_biased_flops, atol_scale="max", setup=_our_kernel, make=_linear)


def _mm(name, dtype, shapes, quick, **extra):
    """A torch.mm case of our kernel, checked norm-wise (atol = rtol * max|torch|)."""
    extra.setdefault("setup", _our_kernel)
    return Case(name, dtype, shapes, quick, torch.mm, flops=_flops, atol_scale="max", **extra)


CASES = [
    _mm("mm_bf16", torch.bfloat16, _square(4096), _square(64)),
    _mm("mm_fp16", torch.float16, _square(4096), _square(64)),
    _mm("mm_bf16_8k", torch.bfloat16, _square(8192), _square(96)),
    _mm("mm_fp32_tf32", torch.float32, _square(4096), _square(64), rtol=1e-3, setup=_tf32, make=_k_major_b),
    _mm("mm_fp32", torch.float32, _square(4096), _square(64)),
    _mm("mm_decode_bf16", torch.bfloat16, ((16, 4096), (4096, 4096)), ((16, 64), (64, 64))),
    _mm("mm_bf16_1k", torch.bfloat16, _square(1024), _square(32)),
    _addmm("addmm_bf16", (4096, 4096, 4096), (64, 64, 64)),
    _addmm("addmm_decode_bf16", (16, 4096, 4096), (16, 64, 64)),
    _addmm("addmm_decode_m1_bf16", (1, 4096, 14336), (1, 64, 96)),
    Case("bmm_bf16", torch.bfloat16, ((32, 1024, 128), (32, 128, 1024)), ((2, 32, 16), (2, 16, 32)), torch.bmm,
         flops=lambda a, b: _biased_flops(None, a, b), atol_scale="max", setup=_our_kernel),
    Case("baddbmm_bf16", torch.bfloat16, ((32, 1024, 1024), (32, 1024, 128), (32, 128, 1024)),
         ((2, 32, 32), (2, 32, 16), (2, 16, 32)), lambda bias, a, b: torch.baddbmm(bias, a, b, beta=0.5, alpha=0.125),
         flops=_biased_flops, atol_scale="max", setup=_our_kernel),
    # Memory-bound: GB/s (each operand read once, the result written once).
    Case("mv_bf16", torch.bfloat16, ((4096, 4096), (4096,)), ((64, 64), (64,)), torch.mv, setup=_our_kernel,
         atol_scale="max"),
    Case("dot_fp32", torch.float32, ((64 * 2**20,), (64 * 2**20,)), ((4096,), (4096,)), torch.dot,
         setup=_our_kernel, atol_scale="max"),
]
