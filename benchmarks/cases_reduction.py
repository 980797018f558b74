"""Reductions: memory-bound, reported in GB/s."""

import torch

from harness import Case

_ROWS, _QUICK_ROWS = ((16384, 4096),), ((64, 128),)
_COLS, _QUICK_COLS = ((4096, 8192),), ((64, 128),)

CASES = [
    Case("sum_lastdim_bf16", torch.bfloat16, _ROWS, _QUICK_ROWS, lambda x: torch.sum(x, dim=-1)),
    Case("amax_lastdim_bf16", torch.bfloat16, _ROWS, _QUICK_ROWS, lambda x: torch.amax(x, dim=-1)),
    Case("argmax_lastdim_bf16", torch.bfloat16, _ROWS, _QUICK_ROWS, lambda x: torch.argmax(x, dim=-1)),
    Case("mean_lastdim_bf16", torch.bfloat16, _ROWS, _QUICK_ROWS, lambda x: torch.mean(x, dim=-1)),
    Case("var_lastdim_bf16", torch.bfloat16, _ROWS, _QUICK_ROWS, lambda x: torch.var(x, dim=-1)),
    Case("norm_lastdim_bf16", torch.bfloat16, _ROWS, _QUICK_ROWS, lambda x: torch.linalg.vector_norm(x, dim=-1)),
    Case("logsumexp_lastdim_bf16", torch.bfloat16, _ROWS, _QUICK_ROWS, lambda x: torch.logsumexp(x, dim=-1)),
    Case("sum_dim0_fp32", torch.float32, _COLS, _QUICK_COLS, lambda x: torch.sum(x, dim=0)),
    Case("amax_dim0_fp32", torch.float32, _COLS, _QUICK_COLS, lambda x: torch.amax(x, dim=0)),
    Case("var_dim0_fp32", torch.float32, _COLS, _QUICK_COLS, lambda x: torch.var(x, dim=0)),
    Case("sum_all_fp32", torch.float32, ((64 * 1024 * 1024,),), ((4096,),), torch.sum),
    Case("amax_all_bf16", torch.bfloat16, ((64 * 1024 * 1024,),), ((4096,),), torch.amax),
]
