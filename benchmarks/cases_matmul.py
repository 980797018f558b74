"""Matrix multiply: compute-bound, reported in TFLOP/s (2*M*N*K per call)."""

import contextlib

import torch

from harness import Case


def _flops(a, b):
    return 2 * a.shape[0] * a.shape[1] * b.shape[1]


@contextlib.contextmanager
def _tf32():
    """fp32 matmul on TF32 tensor cores, for torch and ours alike."""
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def _square(n):
    return ((n, n), (n, n))


def _k_major_b(shapes, dtype, device):
    """B as nn.Linear passes its weight: the transpose of a contiguous (N, K) matrix."""
    (m, k), (_, n) = shapes
    return torch.randn(m, k, dtype=dtype, device=device), torch.randn(n, k, dtype=dtype, device=device).t()


def _mm(name, dtype, shapes, quick, **extra):
    """A torch.mm case, checked norm-wise (atol = rtol * max|torch|)."""
    return Case(name, dtype, shapes, quick, torch.mm, flops=_flops, atol_scale="max", **extra)


CASES = [
    _mm("mm_bf16", torch.bfloat16, _square(4096), _square(64)),
    _mm("mm_fp16", torch.float16, _square(4096), _square(64)),
    _mm("mm_bf16_8k", torch.bfloat16, _square(8192), _square(96)),
    _mm("mm_fp32_tf32", torch.float32, _square(4096), _square(64), rtol=1e-3, setup=_tf32, make=_k_major_b),
    _mm("mm_fp32", torch.float32, _square(4096), _square(64)),
    _mm("mm_decode_bf16", torch.bfloat16, ((16, 4096), (4096, 4096)), ((16, 64), (64, 64))),
    _mm("mm_bf16_1k", torch.bfloat16, _square(1024), _square(32)),
]
