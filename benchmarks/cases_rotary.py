"""Rotary position embedding in Hugging Face's layout: ``flag_gems.hf_apply_rotary_pos_emb``
(one launch for q and k) under use_gems against Hugging Face's eager ``apply_rotary_pos_emb``
(about ten aten calls) natively, at a 512-token prefill and at decode (T = 1) of a Llama-8B
attention layer (32 query heads, 8 key/value heads, head_dim 128). q and k are the transposed
views HF's attention passes; the cases return q's result (the tests check k's too), so the
GB/s column counts q, k, cos, sin and q's result, not k's."""

import functools

import torch

import flag_gems
from harness import Case, gems_active, randn


@functools.cache
def _hf_function():
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb  # a benchmark extra

    return apply_rotary_pos_emb


def _hf_inputs(shapes, dtype, device):
    """q [B, H, T, D] and k [B, Hkv, T, D] viewed from [B, T, H, D] projections; cos/sin [B, T, D]
    as HF's rotary embedding returns them (halves duplicated) for random positions."""
    (batch, heads, seq, head_dim), (_, kv_heads, _, _) = shapes[:2]
    q = randn((batch, seq, heads, head_dim), dtype, device).transpose(1, 2)
    k = randn((batch, seq, kv_heads, head_dim), dtype, device).transpose(1, 2)
    positions = torch.randint(0, 4096, (batch, seq), device=device).float()
    inv_freq = 500000.0 ** (-torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim)
    angles = positions[..., None] * inv_freq
    both = torch.cat((angles, angles), -1)
    return q, k, both.cos().to(dtype), both.sin().to(dtype)


def _hf_rotary(q, k, cos, sin):
    rotate = flag_gems.hf_apply_rotary_pos_emb if gems_active() else _hf_function()
    return rotate(q, k, cos, sin)[0]


def _hf_rotary_train_inputs(shapes, dtype, device):
    q, k, cos, sin = _hf_inputs(shapes, dtype, device)
    return q.requires_grad_(), k.requires_grad_(), cos, sin, randn(q.shape, dtype, device)


def _hf_rotary_train(q, k, cos, sin, grad):
    """Forward and backward; returns q's gradient."""
    return torch.autograd.grad(_hf_rotary(q, k, cos, sin), q, grad)[0]


def _shapes(seq, heads=32, kv_heads=8, head_dim=128):
    return (1, heads, seq, head_dim), (1, kv_heads, seq, head_dim), (1, seq, head_dim)


CASES = [
    Case("rope_hf_prefill_bf16", torch.bfloat16, _shapes(512), _shapes(6, 4, 2, 16), _hf_rotary, make=_hf_inputs,
         direct=True),
    Case("rope_hf_decode_bf16", torch.bfloat16, _shapes(1), _shapes(1, 4, 2, 16), _hf_rotary, make=_hf_inputs,
         direct=True),
    Case("rope_hf_prefill_fwdbwd_bf16", torch.bfloat16, _shapes(512), _shapes(6, 4, 2, 16), _hf_rotary_train,
         make=_hf_rotary_train_inputs, direct=True),
]
