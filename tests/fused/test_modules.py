"""flag_gems.modules: the rotary embedding modules (their tables, YaRN's scaling, growing the
table) and GemsSiluAndMul, against formulas written out in fp64."""

import math

import pytest
import torch
import torch.nn.functional as F

import flag_gems
from flag_gems.testing import assert_close

from conftest import DEVICE, make
from rotary_cases import reference


def angles(positions, rotary_dim, inv_freq=None, base=10000.0):
    """[positions, rotary_dim // 2] angles t * base ** (-2i / rotary_dim) (or ``inv_freq``), in fp64."""
    if inv_freq is None:
        inv_freq = base ** (-torch.arange(0, rotary_dim, 2, dtype=torch.float64) / rotary_dim)
    return torch.outer(torch.arange(positions, dtype=torch.float64), inv_freq)


def test_modules_layout():
    from flag_gems.modules import activation, normalization, rotary_embedding

    modules = flag_gems.modules
    assert modules.GemsRMSNorm is normalization.GemsRMSNorm and modules.GemsSiluAndMul is activation.GemsSiluAndMul
    assert modules.GemsRope is rotary_embedding.GemsRope
    assert modules.GemsDeepseekYarnRoPE is rotary_embedding.GemsDeepseekYarnRoPE
    assert set(modules.__all__) == {"GemsRMSNorm", "GemsSiluAndMul", "GemsRope", "GemsDeepseekYarnRoPE",
                                    "FusedLinearCrossEntropyLoss"}


@pytest.mark.parametrize("interleaved", [False, True])
def test_rope(interleaved):
    rope = flag_gems.modules.GemsRope(6, 16, 10000, interleaved, torch.float32, DEVICE)
    expected = angles(16, 6)
    assert_close(rope.cos_cached, expected.cos(), torch.float32)
    assert_close(rope.sin_cached, expected.sin(), torch.float32)
    assert "cos_cached" not in rope.state_dict()
    q, k = make((2, 3, 2, 8), torch.float32), make((2, 3, 1, 8), torch.float32)
    positions = torch.randint(0, 16, (2, 3), device=DEVICE)
    q_embed, k_embed = rope(q, k, positions)
    assert_close(q_embed, reference(q, rope.cos_cached, rope.sin_cached, positions, interleaved), torch.float32)
    assert_close(k_embed, reference(k, rope.cos_cached, rope.sin_cached, positions, interleaved), torch.float32)
    # No position ids: the sequence index; in place.
    expected = reference(q, rope.cos_cached, rope.sin_cached, None, interleaved)
    assert rope(q, k, inplace=True)[0] is q
    assert_close(q, expected, torch.float32)


def test_rope_table_grows():
    rope = flag_gems.modules.GemsRope(4, max_position_embeddings=4, dtype=torch.bfloat16, device=DEVICE)
    q, k = make((1, 2, 2, 4), torch.float32), make((1, 2, 1, 4), torch.float32)
    positions = torch.tensor([[2, 9]], device=DEVICE)
    q_embed, _ = rope(q, k, positions)
    assert rope.cos_cached.shape == (10, 2) and rope.cos_cached.dtype == torch.bfloat16
    assert_close(rope.cos_cached, angles(10, 4).cos(), torch.bfloat16)
    assert_close(rope.sin_cached, angles(10, 4).sin(), torch.bfloat16)
    assert_close(q_embed, reference(q, rope.cos_cached, rope.sin_cached, positions), torch.float32)
    # A longer sequence without position ids: at least doubled.
    q, k = make((1, 12, 1, 4), torch.float32), make((1, 12, 1, 4), torch.float32)
    q_embed, k_embed = rope(q, k)
    assert rope.cos_cached.shape == (20, 2)
    assert_close(k_embed, reference(k, rope.cos_cached, rope.sin_cached), torch.float32)


def yarn_inv_freq(rotary_dim, base, scale, original, beta_fast, beta_slow):
    """DeepSeek's YaRN frequencies in fp64, from the formulas: the dim of a pair turning r times
    over the original context is d(r) = rotary_dim * ln(original / (2 pi r)) / (2 ln base); pairs
    below d(beta_fast) keep their frequency, pairs above d(beta_slow) are divided by ``scale``."""
    def dim(rotations):
        return rotary_dim * math.log(original / (2 * math.pi * rotations)) / (2 * math.log(base))

    low, high = max(math.floor(dim(beta_fast)), 0), min(math.ceil(dim(beta_slow)), rotary_dim - 1)
    pairs = torch.arange(rotary_dim // 2, dtype=torch.float64)
    interpolated = ((pairs - low) / (high - low if high != low else 0.001)).clamp(0, 1)
    frequency = base ** (-2 * pairs / rotary_dim)
    return frequency / scale * interpolated + frequency * (1 - interpolated)


@pytest.mark.parametrize("scale, mscale, mscale_all_dim", [(40.0, 0.707, 0.0), (4.0, 1.0, 1.0), (1.0, 1.0, 0.0)])
def test_deepseek_yarn_rope(scale, mscale, mscale_all_dim):
    rope = flag_gems.modules.GemsDeepseekYarnRoPE(
        16, max_position_embeddings=32, base=10000, rotary_interleaved=True, device=DEVICE, scaling_factor=scale,
        original_max_position_embeddings=64, beta_fast=32, beta_slow=1, mscale=mscale, mscale_all_dim=mscale_all_dim)

    def temperature(m):
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

    expected = angles(32, 16, yarn_inv_freq(16, 10000.0, scale, 64, 32, 1))
    factor = temperature(mscale) / temperature(mscale_all_dim)
    # The module computes the angles in fp32, as DeepSeek's does: within fp32's tolerance here.
    assert_close(rope.cos_cached, expected.cos() * factor, torch.float32)
    assert_close(rope.sin_cached, expected.sin() * factor, torch.float32)
    q, k = make((2, 3, 2, 16), torch.float32), make((2, 3, 1, 16), torch.float32)
    positions = torch.randint(0, 32, (2, 3), device=DEVICE)
    q_embed, k_embed = rope(q, k, positions)
    assert_close(q_embed, reference(q, rope.cos_cached, rope.sin_cached, positions, True), torch.float32)
    assert_close(k_embed, reference(k, rope.cos_cached, rope.sin_cached, positions, True), torch.float32)
    rope(q, k, torch.full((2, 3), 40, device=DEVICE))  # the grown table keeps YaRN's frequencies
    assert_close(rope.cos_cached, angles(64, 16, yarn_inv_freq(16, 10000.0, scale, 64, 32, 1)).cos() * factor,
                 torch.float32)


def test_silu_and_mul_module():
    module = flag_gems.modules.GemsSiluAndMul()
    x, y = make((3, 8), torch.float32).requires_grad_(), make((3, 8), torch.float32).requires_grad_()
    out = module(x, y)
    assert_close(out, F.silu(x.double()) * y.double(), torch.float32)
    ours = torch.autograd.grad(out.sum(), (x, y))
    exact = torch.autograd.grad((F.silu(x.double()) * y.double()).sum(), (x, y))
    for mine, expected in zip(ours, exact):
        assert_close(mine, expected, torch.float32)
