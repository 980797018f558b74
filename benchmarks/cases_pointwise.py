"""Elementwise arithmetic: memory-bound, reported in GB/s."""

import torch

from harness import Case, randn

N64M = 64 * 1024 * 1024  # 67108864 elements
BIG = ((N64M,), (N64M,))
SMALL = ((4096,), (4096,))


def _first_transposed(shapes, dtype, device):
    """The first operand is a transposed (column-major) view."""
    return randn(shapes[0], dtype, device).t(), randn(shapes[1], dtype, device)


CASES = [
    Case("add_bf16", torch.bfloat16, BIG, SMALL, torch.add),
    Case("add_fp32", torch.float32, BIG, SMALL, torch.add),
    Case("add_broadcast_bf16", torch.bfloat16, ((8192, 8192), (8192,)), ((64, 64), (64,)), torch.add),
    Case("add_transposed_fp32", torch.float32, ((8192, 8192), (8192, 8192)), ((64, 64), (64, 64)), torch.add,
         make=_first_transposed),
    Case("add_tiny_fp32", torch.float32, ((1024,), (1024,)), ((1024,), (1024,)), torch.add),
    Case("mul_bf16", torch.bfloat16, BIG, SMALL, torch.mul),
    Case("div_fp32", torch.float32, BIG, SMALL, torch.div),
]
