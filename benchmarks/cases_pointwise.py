"""Elementwise operators, one case or more per class (unary, binary, ternary,
comparison, activation, conversion): memory-bound, reported in GB/s."""

import torch

from harness import Case, randn

N64M = 64 * 1024 * 1024  # 67108864 elements
BIG = ((N64M,), (N64M,))
SMALL = ((4096,), (4096,))


ONE = ((N64M,),)
TINY = ((1024,),)


def _condition_and_pair(shapes, dtype, device):
    """A random bool mask and two operands, for where."""
    shape = shapes[0]
    return randn(shape, dtype, device) > 0, randn(shape, dtype, device), randn(shape, dtype, device)


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
    Case("mul_number_tiny_fp32", torch.float32, TINY, TINY, lambda x: x * 2.0),
    Case("exp_bf16", torch.bfloat16, ONE, ((4096,),), torch.exp),
    Case("exp_fp32", torch.float32, ONE, ((4096,),), torch.exp),
    Case("exp_tiny_fp32", torch.float32, TINY, TINY, torch.exp),
    Case("gt_bf16", torch.bfloat16, BIG, SMALL, torch.gt),
    Case("gt_tiny_fp32", torch.float32, ((1024,), (1024,)), ((1024,), (1024,)), torch.gt),
    Case("addcmul_bf16", torch.bfloat16, ((N64M,),) * 3, ((4096,),) * 3, torch.addcmul),
    Case("where_bf16", torch.bfloat16, ONE, ((4096,),), torch.where, make=_condition_and_pair),
    Case("gelu_bf16", torch.bfloat16, ONE, ((4096,),), torch.nn.functional.gelu),
    Case("silu_fp32", torch.float32, ONE, ((4096,),), torch.nn.functional.silu),
    Case("gelu_tiny_fp32", torch.float32, TINY, TINY, torch.nn.functional.gelu),
    Case("to_bf16_from_fp32", torch.float32, ONE, ((4096,),), lambda x: x.to(torch.bfloat16), rtol=2e-2),
]
