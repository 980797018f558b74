"""Scaled dot-product attention through F.scaled_dot_product_attention (reaching the SDPA
backend rows): causal prefill forward and forward + backward, reported in TFLOP/s (the
causal half of the score and value products; a backward counts 2.5 forwards), and
decoding (one query over a 4096-key cache, the split-KV path), memory-bound, in GB/s."""

import torch
import torch.nn.functional as F

from harness import Case, randn

PREFILL = (4, 32, 4096, 128)  # B, H, L, D
PREFILL_QUICK = (1, 2, 64, 64)
DECODE_Q, DECODE_KV = (8, 32, 1, 128), (8, 32, 4096, 128)
DECODE_QUICK_Q, DECODE_QUICK_KV = (1, 2, 1, 32), (1, 2, 256, 32)


def _causal(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def _causal_flops(q, k, v, *rest):
    B, H, L, D = q.shape
    return 2 * B * H * L * L * D  # 4 * B * H * L^2 * D for both products, halved by the causal mask


def _train_inputs(shapes, dtype, device):
    q, k, v = (randn(shape, dtype, device).requires_grad_() for shape in shapes)
    return q, k, v, randn(shapes[0], dtype, device)


def _causal_train(q, k, v, g):
    """Forward and backward through autograd; returns dq."""
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return torch.autograd.grad(out, (q, k, v), g)[0]


def _decode(q, k, v):
    return F.scaled_dot_product_attention(q, k, v)


CASES = [
    Case("attention_causal_bf16", torch.bfloat16, (PREFILL,) * 3, (PREFILL_QUICK,) * 3, _causal,
         flops=_causal_flops, atol_scale="max"),
    Case("attention_causal_train_bf16", torch.bfloat16, (PREFILL,) * 3, (PREFILL_QUICK,) * 3, _causal_train,
         make=_train_inputs, flops=lambda q, k, v, g: 3.5 * _causal_flops(q, k, v), atol_scale="max"),
    Case("attention_decode_bf16", torch.bfloat16, (DECODE_Q, DECODE_KV, DECODE_KV),
         (DECODE_QUICK_Q, DECODE_QUICK_KV, DECODE_QUICK_KV), _decode, atol_scale="max"),
]
