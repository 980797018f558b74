"""Joining and shape operators: memory-bound, reported in GB/s. cat comes first: a Llama
step calls it about 200 times (rotary's rotate_half on last-dim halves, the KV cache)."""

import torch
import torch.nn.functional as F

from harness import Case, randn

_ROWS, _QUICK_ROWS = (8192, 4096), (64, 128)
_HEADS, _QUICK_HEADS = (1, 32, 512, 64), (1, 4, 16, 16)


def _halves(shapes, dtype, device):
    """The two last-dim halves of q, as rotate_half slices them (views, not copies)."""
    q = randn(shapes[0], dtype, device)
    half = q.shape[-1] // 2
    return q[..., half:], q[..., :half]


def _kv_cache(shapes, dtype, device):
    """The cache so far and one new step, joined along the sequence dim (-2)."""
    return randn(shapes[0], dtype, device), randn(shapes[1], dtype, device)


def _repeats(shapes, dtype, device):
    return (torch.randint(0, 8, shapes[0], device=device),)


CASES = [
    Case("cat_dim0_bf16", torch.bfloat16, (_ROWS, _ROWS), (_QUICK_ROWS, _QUICK_ROWS), lambda a, b: torch.cat((a, b))),
    Case("cat_rotary_halves_bf16", torch.bfloat16, (_HEADS,), (_QUICK_HEADS,),
         lambda x2, x1: torch.cat((x2, x1), dim=-1), make=_halves),
    Case("cat_kv_cache_bf16", torch.bfloat16, ((1, 8, 4095, 128), (1, 8, 1, 128)), ((1, 2, 15, 16), (1, 2, 1, 16)),
         lambda past, new: torch.cat((past, new), dim=-2), make=_kv_cache),
    Case("stack_bf16", torch.bfloat16, (_ROWS, _ROWS), (_QUICK_ROWS, _QUICK_ROWS), lambda a, b: torch.stack((a, b), 1)),
    Case("flip_lastdim_bf16", torch.bfloat16, (_ROWS,), (_QUICK_ROWS,), lambda x: torch.flip(x, (-1,))),
    Case("roll_bf16", torch.bfloat16, (_ROWS,), (_QUICK_ROWS,), lambda x: torch.roll(x, (3, -5), (0, 1))),
    Case("pad_constant_bf16", torch.bfloat16, ((16, 64, 254, 254),), ((2, 3, 14, 14),),
         lambda x: F.pad(x, (1, 1, 1, 1))),
    Case("tril_bf16", torch.bfloat16, ((8192, 8192),), ((64, 64),), torch.tril),
    Case("repeat_interleave_int64", torch.int64, ((1 << 20,),), ((1000,),), torch.repeat_interleave, make=_repeats),
]
