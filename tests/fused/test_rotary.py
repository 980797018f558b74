"""Rotary position embedding: FlagGems' apply_rotary_pos_emb against the rotation written out
in fp64, and hf_apply_rotary_pos_emb against Hugging Face's own function."""

import pytest
import torch
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb as hf_apply_rotary_pos_emb
from transformers.models.qwen3.modeling_qwen3 import apply_rotary_pos_emb as qwen3_apply_rotary_pos_emb

import flag_gems
from flag_gems.testing import assert_close

from conftest import DEVICE, ON_GPU, error_of, make
from rotary_cases import reference, table

DTYPES = [torch.float16, torch.bfloat16, torch.float32]


def tolerance(dtype):
    """The interpreter truncates bf16 stores where GPUs round them: one more unit of rounding."""
    return 2 if dtype == torch.bfloat16 and not ON_GPU else 1


# (q shape, k heads, table half, with position ids)
GEMS_CASES = [
    ((2, 3, 4, 8), 2, 4, True),  # [B, T, H, D], GQA
    ((2, 3, 4, 8), 1, 4, False),  # positions 0..T-1
    ((2, 3, 2, 10), 2, 3, True),  # partial rotary: 6 of 10 rotated
    ((5, 3, 16), 1, 8, True),  # [tokens, H, D]
    ((1, 1, 2, 6), 2, 3, False),  # decode, a head_dim that is no power of two
    ((1, 5, 8, 128), 2, 48, True),  # several programs for q, the last one partly masked
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("q_shape, k_heads, half, with_positions", GEMS_CASES, ids=str)
def test_apply_rotary_pos_emb(dtype, interleaved, q_shape, k_heads, half, with_positions):
    q = make(q_shape, dtype)
    k = make((*q_shape[:-2], k_heads, q_shape[-1]), dtype)
    cos, sin = table(12, half)
    positions = torch.randint(0, 12, q_shape[:-2], device=DEVICE) if with_positions else None
    q_embed, k_embed = flag_gems.apply_rotary_pos_emb(q, k, cos, sin, positions, interleaved)
    assert q_embed.shape == q.shape and k_embed.shape == k.shape
    assert_close(q_embed, reference(q, cos, sin, positions, interleaved), dtype, reduce_dim=tolerance(dtype))
    assert_close(k_embed, reference(k, cos, sin, positions, interleaved), dtype, reduce_dim=tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_tables_of_another_dtype_and_int32_positions(dtype):
    q, k = make((2, 3, 2, 8), dtype), make((2, 3, 1, 8), dtype)
    cos, sin = table(6, 4, torch.float32 if dtype != torch.float32 else torch.bfloat16)
    positions = torch.randint(0, 6, (2, 3), device=DEVICE, dtype=torch.int32)
    q_embed, k_embed = flag_gems.ops.apply_rotary_pos_emb(q, k, cos, sin, position_ids=positions)
    assert q_embed.dtype == dtype and k_embed.dtype == dtype
    assert_close(q_embed, reference(q, cos, sin, positions.long()), dtype, reduce_dim=tolerance(dtype))
    assert_close(k_embed, reference(k, cos, sin, positions.long()), dtype, reduce_dim=tolerance(dtype))


@pytest.mark.parametrize("interleaved", [False, True])
def test_in_place(interleaved):
    q, k = make((2, 3, 2, 10), torch.float32), make((2, 3, 1, 10), torch.float32)
    cos, sin = table(8, 4)
    positions = torch.randint(0, 8, (2, 3), device=DEVICE)
    expected = reference(q, cos, sin, positions, interleaved), reference(k, cos, sin, positions, interleaved)
    q_embed, k_embed = flag_gems.apply_rotary_pos_emb(q, k, cos, sin, positions, interleaved, inplace=True)
    assert q_embed is q and k_embed is k
    assert_close(q, expected[0], torch.float32)
    assert_close(k, expected[1], torch.float32)


def test_non_contiguous_inputs():
    # q and k as slices of one fused projection [B, T, (Hq + Hk) * D], position ids broadcast over the batch.
    fused = make((2, 3, 5 * 8), torch.float32)
    q, k = fused[..., :24].view(2, 3, 3, 8), fused[..., 24:].view(2, 3, 2, 8)
    positions = torch.randint(0, 6, (1, 3), device=DEVICE).expand(2, 3)
    cos, sin = table(6, 4)
    for inplace in (False, True):
        expected = reference(q, cos, sin, positions), reference(k, cos, sin, positions)
        q_embed, k_embed = flag_gems.apply_rotary_pos_emb(q, k, cos, sin, positions, inplace=inplace)
        assert_close(q_embed, expected[0], torch.float32)
        assert_close(k_embed, expected[1], torch.float32)
    # Transposed heads, a strided table.
    q = make((2, 4, 3, 8), torch.float32).transpose(1, 2)
    k = make((1, 3, 2, 8), torch.float32).permute(2, 1, 0, 3)
    wide_cos, wide_sin = table(6, 8)
    cos, sin = wide_cos[:, ::2], wide_sin[:, ::2]
    q_embed, k_embed = flag_gems.apply_rotary_pos_emb(q, k, cos, sin, None, True)
    assert_close(q_embed, reference(q, cos, sin, None, True), torch.float32)
    assert_close(k_embed, reference(k, cos, sin, None, True), torch.float32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("interleaved", [False, True])
def test_gradients(dtype, interleaved):
    q0 = make((2, 3, 2, 10), dtype).requires_grad_()
    k0 = make((2, 3, 1, 10), dtype).requires_grad_()
    cos, sin = table(8, 4, dtype)
    positions = torch.randint(0, 8, (2, 3), device=DEVICE)
    grads = make(q0.shape, dtype), make(k0.shape, dtype).transpose(0, 1).contiguous().transpose(0, 1)

    def gradients(rotate, inplace):
        q, k = q0 * 1, k0 * 1  # not leaves: may be updated in place
        q_embed, k_embed = rotate(q, k, inplace)
        return torch.autograd.grad((q_embed * grads[0]).sum() + (k_embed * grads[1]).sum(), (q0, k0))

    expected = gradients(lambda q, k, _: (reference(q, cos, sin, positions, interleaved),
                                          reference(k, cos, sin, positions, interleaved)), False)
    for inplace in (False, True):
        ours = gradients(lambda q, k, inplace: flag_gems.apply_rotary_pos_emb(q, k, cos, sin, positions, interleaved,
                                                                              inplace), inplace)
        for mine, exact in zip(ours, expected):
            assert mine.dtype == dtype
            assert_close(mine, exact, dtype)


def test_gradcheck():
    q = make((1, 2, 2, 6), torch.float64).requires_grad_()
    k = make((1, 2, 1, 6), torch.float64).requires_grad_()
    cos, sin = table(4, 2, torch.float64)
    positions = torch.tensor([[3, 1]], device=DEVICE)
    assert torch.autograd.gradcheck(lambda a, b: flag_gems.apply_rotary_pos_emb(a, b, cos, sin, positions, True),
                                    (q, k), fast_mode=True)


def test_table_gradients_go_through_torch_ops():
    q, k = make((2, 3, 2, 8), torch.float64), make((2, 3, 1, 8), torch.float64)
    cos, sin = (t.requires_grad_() for t in table(5, 4, torch.float64))
    q_embed, k_embed = flag_gems.apply_rotary_pos_emb(q, k, cos, sin)
    ours = torch.autograd.grad(q_embed.sum() + k_embed.sum(), (cos, sin))
    expected = torch.autograd.grad(reference(q, cos, sin).sum() + reference(k, cos, sin).sum(), (cos, sin))
    for mine, exact in zip(ours, expected):
        assert_close(mine, exact, torch.float64)


def test_bad_input():
    q, k = make((2, 3, 2, 8), torch.float32), make((2, 3, 1, 8), torch.float32)
    cos, sin = table(4, 4)
    for case in (lambda: flag_gems.apply_rotary_pos_emb(q, k[:1], cos, sin),  # leading dims differ
                 lambda: flag_gems.apply_rotary_pos_emb(q, k, cos, sin[:, :2]),  # cos and sin differ
                 lambda: flag_gems.apply_rotary_pos_emb(q, k, *table(4, 5)),  # rotary_dim > head_dim
                 lambda: flag_gems.apply_rotary_pos_emb(q, k, cos, sin, torch.zeros(3, dtype=torch.long)),
                 lambda: flag_gems.apply_rotary_pos_emb(q[0, 0], k[0, 0], cos, sin),  # no sequence dim
                 lambda: flag_gems.apply_rotary_pos_emb(q, k, *table(2, 4))):  # seq_len beyond the table
        assert error_of(case) is ValueError
    positions = torch.full((2, 3), 4, device=DEVICE)
    if not ON_GPU:  # position ids on the CPU are checked on the host
        assert error_of(lambda: flag_gems.apply_rotary_pos_emb(q, k, cos, sin, positions)) is IndexError
    # Float position ids cannot index the table: torch's own error, from the torch composition.
    floats = torch.zeros(2, 3, device=DEVICE)
    assert error_of(lambda: flag_gems.apply_rotary_pos_emb(q, k, cos, sin, floats)) is error_of(lambda: cos[floats])
    # A leaf requiring grad cannot be rotated in place: torch's error, q unchanged.
    leaf = q.clone().requires_grad_()
    assert error_of(lambda: flag_gems.apply_rotary_pos_emb(leaf, k, cos, sin, inplace=True)) is RuntimeError
    assert torch.equal(leaf.detach(), q)


def test_same_tensor_in_place_and_empty():
    x = make((1, 2, 2, 8), torch.float32)
    cos, sin = table(2, 4)
    expected = reference(x, cos, sin)
    flag_gems.apply_rotary_pos_emb(x, x, cos, sin, inplace=True)  # k is q: rotated once, no race
    assert_close(x, expected, torch.float32)
    empty = make((0, 2, 2, 8), torch.float32)
    q_embed, k_embed = flag_gems.apply_rotary_pos_emb(empty, empty, cos, sin)
    assert q_embed.shape == empty.shape and k_embed.shape == empty.shape


# ---- Hugging Face's layout -----------------------------------------------------------------


def hf_inputs(batch, heads, kv_heads, seq, head_dim, dtype, cos_batch=None):
    """q and k as HF's attention makes them ([B, T, H, D] projections viewed [B, H, T, D]) and
    cos/sin as HF's rotary embedding returns them: [B, T, D], halves duplicated, in dtype."""
    q = make((batch, seq, heads, head_dim), dtype).transpose(1, 2)
    k = make((batch, seq, kv_heads, head_dim), dtype).transpose(1, 2)
    positions = torch.randint(0, 64, (cos_batch or batch, seq), device=DEVICE).double()
    inv_freq = 10000.0 ** (-torch.arange(0, head_dim, 2, device=DEVICE, dtype=torch.float64) / head_dim)
    angles = positions[..., None] * inv_freq
    both = torch.cat((angles, angles), -1)
    return q, k, both.cos().to(dtype), both.sin().to(dtype)


def assert_hf_close(ours, theirs, q, k, cos, sin, dtype, unsqueeze_dim=1):
    exact = hf_apply_rotary_pos_emb(q.double(), k.double(), cos.double(), sin.double(), unsqueeze_dim)
    for mine, native, fp64 in zip(ours, theirs, exact):
        assert mine.shape == native.shape and mine.dtype == native.dtype
        assert_close(mine, fp64, dtype, reduce_dim=tolerance(dtype))
        # HF rounds its two products and their sum to dtype, ours only the result: a few units
        # of the largest magnitude apart.
        slack = 4 * torch.finfo(dtype).eps * native.abs().max().item()
        torch.testing.assert_close(mine, native, rtol=0, atol=slack)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 4, 2, 3, 8), (1, 4, 1, 1, 16), (1, 2, 2, 5, 6), (1, 4, 2, 9, 64)], ids=str)
def test_hf_apply_rotary_pos_emb(dtype, shape):
    q, k, cos, sin = hf_inputs(*shape, dtype)
    ours = flag_gems.hf_apply_rotary_pos_emb(q, k, cos, sin)
    assert_hf_close(ours, hf_apply_rotary_pos_emb(q, k, cos, sin), q, k, cos, sin, dtype)
    assert all(t.is_contiguous() for t in ours)


def test_hf_layouts():
    # cos/sin of one batch row for a batch of two; Qwen3's function is the same function.
    q, k, cos, sin = hf_inputs(2, 2, 1, 3, 8, torch.float32, cos_batch=1)
    ours = flag_gems.hf_apply_rotary_pos_emb(q, k, cos, sin)
    assert_hf_close(ours, qwen3_apply_rotary_pos_emb(q, k, cos, sin), q, k, cos, sin, torch.float32)
    # [B, T, H, D] with unsqueeze_dim=2, contiguous q and k.
    q, k = q.transpose(1, 2).contiguous(), k.transpose(1, 2).contiguous()
    ours = flag_gems.hf_apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=2)
    assert_hf_close(ours, hf_apply_rotary_pos_emb(q, k, cos, sin, 2), q, k, cos, sin, torch.float32, 2)
    # Halves that differ, strided cos/sin: HF's formula holds for any table.
    wide = make((2, 3, 16), torch.float32)
    q, k, cos, sin = q.transpose(1, 2), k.transpose(1, 2), wide[..., ::2].cos(), wide[..., 1::2].sin()
    ours = flag_gems.hf_apply_rotary_pos_emb(q, k, cos, sin)
    assert_hf_close(ours, hf_apply_rotary_pos_emb(q, k, cos, sin), q, k, cos, sin, torch.float32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_hf_gradients(dtype):
    q, k, cos, sin = hf_inputs(2, 2, 1, 3, 8, dtype)
    q, k = q.requires_grad_(), k.requires_grad_()
    grads = make((2, 2, 3, 8), dtype), make((2, 1, 3, 8), dtype).transpose(2, 3).contiguous().transpose(2, 3)

    def gradients(rotate, *tables):
        q_embed, k_embed = rotate(q, k, *tables)
        return torch.autograd.grad((q_embed * grads[0]).sum() + (k_embed * grads[1]).sum(), (q, k))

    expected = gradients(hf_apply_rotary_pos_emb, cos.double(), sin.double())
    for mine, exact in zip(gradients(flag_gems.hf_apply_rotary_pos_emb, cos, sin), expected):
        assert_close(mine, exact, dtype)
    # Tables requiring grad: HF's formula in torch ops, gradients for them too.
    cos, sin = cos.requires_grad_(), sin.requires_grad_()
    ours = torch.autograd.grad(sum(t.sum() for t in flag_gems.hf_apply_rotary_pos_emb(q, k, cos, sin)), (cos, sin))
    theirs = torch.autograd.grad(sum(t.sum() for t in hf_apply_rotary_pos_emb(q, k, cos, sin)), (cos, sin))
    for mine, exact in zip(ours, theirs):
        assert_close(mine, exact, dtype)


def test_hf_falls_back_to_its_formula():
    q, k, cos, sin = hf_inputs(1, 2, 1, 3, 8, torch.bfloat16)
    # fp32 tables with bf16 q/k promote, as HF's formula does.
    wide = cos.float(), sin.float()
    ours = flag_gems.hf_apply_rotary_pos_emb(q, k, *wide)
    theirs = hf_apply_rotary_pos_emb(q, k, *wide)
    assert all(torch.equal(mine, native) for mine, native in zip(ours, theirs))
    # Shapes that do not broadcast raise HF's error.
    assert error_of(lambda: flag_gems.hf_apply_rotary_pos_emb(q, k, cos[:, :2], sin[:, :2])) is \
        error_of(lambda: hf_apply_rotary_pos_emb(q, k, cos[:, :2], sin[:, :2]))
    assert error_of(lambda: flag_gems.hf_apply_rotary_pos_emb(q, k, cos, sin, 5)) is \
        error_of(lambda: hf_apply_rotary_pos_emb(q, k, cos, sin, 5))


def test_hf_plans_do_not_mix_layouts():
    shapes = [(1, 2, 1, 3, 8), (2, 2, 2, 3, 8), (1, 2, 1, 3, 8)]
    for shape in shapes + shapes:
        q, k, cos, sin = hf_inputs(*shape, torch.float32)
        q = q.contiguous() if shape[0] == 2 else q
        assert_hf_close(flag_gems.hf_apply_rotary_pos_emb(q, k, cos, sin), hf_apply_rotary_pos_emb(q, k, cos, sin),
                        q, k, cos, sin, torch.float32)


@pytest.mark.skipif(not ON_GPU, reason="real shapes on a GPU")
def test_hf_real_shapes():
    for seq in (1, 512):
        q, k, cos, sin = hf_inputs(1, 32, 8, seq, 128, torch.bfloat16)
        assert_hf_close(flag_gems.hf_apply_rotary_pos_emb(q, k, cos, sin), hf_apply_rotary_pos_emb(q, k, cos, sin),
                        q, k, cos, sin, torch.bfloat16)
