"""Creation operators (arange, full, zeros_like, eye, linspace, logspace, polar): they
write their result and read little or nothing, reported in GB/s of what they write."""

import torch

from harness import Case


def _size(shapes, dtype, device):
    """A factory call's arguments: the size to make and the device to make it on."""
    return shapes[0], device


def _template(shapes, dtype, device):
    """The tensor a ``*_like`` call copies the shape of, held in a tuple: it reads none of
    its elements, so the bytes moved count the result alone."""
    return ((torch.empty(shapes[0], dtype=dtype, device=device),),)


def _polar_inputs(shapes, dtype, device):
    return torch.rand(shapes[0], dtype=dtype, device=device), torch.randn(shapes[1], dtype=dtype, device=device) * 4


_LONG, _LONG_QUICK = ((1 << 26,),), ((4096,),)  # 64M elements
_SQUARE, _SQUARE_QUICK = ((8192, 8192),), ((64, 64),)

CASES = [
    Case("arange_int64", torch.int64, _LONG, _LONG_QUICK,
         lambda size, device: torch.arange(size[0], device=device), make=_size),
    Case("arange_fp32", torch.float32, _LONG, _LONG_QUICK,
         lambda size, device: torch.arange(0, size[0] / 4, 0.25, device=device), make=_size),
    Case("full_bf16", torch.bfloat16, _LONG, _LONG_QUICK,
         lambda size, device: torch.full(size, 0.5, dtype=torch.bfloat16, device=device), make=_size),
    Case("zeros_like_fp32", torch.float32, _SQUARE, _SQUARE_QUICK,
         lambda holder: torch.zeros_like(holder[0]), make=_template),
    Case("ones_fp16", torch.float16, _SQUARE, _SQUARE_QUICK,
         lambda size, device: torch.ones(size, dtype=torch.float16, device=device), make=_size),
    Case("eye_fp32", torch.float32, _SQUARE, _SQUARE_QUICK,
         lambda size, device: torch.eye(*size, device=device), make=_size),
    Case("linspace_fp32", torch.float32, _LONG, _LONG_QUICK,
         lambda size, device: torch.linspace(-1, 1, size[0], device=device), make=_size),
    Case("logspace_fp32", torch.float32, _LONG, _LONG_QUICK,
         lambda size, device: torch.logspace(-3, 3, size[0], device=device), make=_size),
    Case("polar_fp32", torch.float32, ((1 << 24,), (1 << 24,)), ((4096,), (4096,)), torch.polar,
         make=_polar_inputs),
]
