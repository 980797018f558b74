"""Sums: memory-bound, reported in GB/s."""

import torch

from harness import Case

CASES = [
    Case("sum_lastdim_bf16", torch.bfloat16, ((16384, 4096),), ((64, 128),), lambda x: torch.sum(x, dim=-1)),
    Case("sum_dim0_fp32", torch.float32, ((4096, 8192),), ((64, 128),), lambda x: torch.sum(x, dim=0)),
    Case("sum_all_fp32", torch.float32, ((64 * 1024 * 1024,),), ((4096,),), torch.sum),
]
