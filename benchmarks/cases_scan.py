"""Scans (cumsum, cummax, logcumsumexp): memory-bound, reported in GB/s."""

import torch

from harness import Case

CASES = [
    Case("cumsum_lastdim_fp32", torch.float32, ((4096, 8192),), ((64, 128),), lambda x: torch.cumsum(x, dim=-1)),
    Case("cumsum_dim0_fp32", torch.float32, ((4096, 8192),), ((64, 128),), lambda x: torch.cumsum(x, dim=0)),
    Case("cumsum_long_fp32", torch.float32, ((1 << 20,),), ((4096,),), lambda x: torch.cumsum(x, dim=0)),
    # Values only are compared (and counted in GB/s); the int64 indices are written too.
    Case("cummax_lastdim_bf16", torch.bfloat16, ((4096, 8192),), ((16, 64),),
         lambda x: torch.cummax(x, dim=-1).values),
    Case("logcumsumexp_lastdim_fp32", torch.float32, ((4096, 8192),), ((16, 64),),
         lambda x: torch.logcumsumexp(x, dim=-1)),
]
