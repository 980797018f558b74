"""Exact math helpers that run alike compiled and under Triton's interpreter."""

import os

import triton
import triton.language as tl
from triton.language.extra import libdevice

# The interpreter has no libdevice; its numpy "%" on floats is an exact fmod.
INTERPRETED: tl.constexpr = tl.constexpr(os.environ.get("TRITON_INTERPRET") == "1")


@triton.jit
def ieee_div(a, b):
    # Triton's fp32 "/" is approximate (2 ulp); PyTorch rounds exactly.
    if a.dtype == tl.float64:
        return a / b
    else:
        return tl.math.div_rn(a, b)


@triton.jit
def trunc(x):
    return tl.where(x < 0, tl.ceil(x), tl.floor(x))


@triton.jit
def fmod(a, b):
    if INTERPRETED:
        return a % b
    else:
        return libdevice.fmod(a, b)
