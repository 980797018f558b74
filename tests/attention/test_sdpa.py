"""Scaled dot-product attention, forward and backward, against the fp64 definition by the
flash-attention rule (our error at most twice PyTorch's own in the same dtype): through
``enable()`` (F.scaled_dot_product_attention reaching our SDPA rows) and the explicit
``flag_gems.ops.scaled_dot_product_attention``."""

import pytest
import torch
import torch.nn.functional as F

import flag_gems

from attention_checks import close, grads, operands, random_mask, reference
from conftest import ON_GPU, assert_same_error, error_of, make, pick, routed

HALVES = [torch.float16, torch.bfloat16]
DTYPES = [torch.float32, *HALVES]
SDPA_ROWS = "aten::_scaled_dot_product_"


def _leaves(*tensors):
    return [t.detach().double().requires_grad_() for t in tensors]


def check(q, k, v, mask=None, causal=False, scale=None, explicit=False, backward=True):
    """Our forward (and gradients) against fp64 and PyTorch's own in q's dtype; returns the
    (operator, where it ran) of every SDPA row the call reached."""
    kw = dict(attn_mask=mask, is_causal=causal, scale=scale)
    if k.shape[1] != q.shape[1]:
        kw["enable_gqa"] = True
    exact_leaves = _leaves(q, k, v)
    exact = reference(*exact_leaves, mask, int(causal), scale)
    low = F.scaled_dot_product_attention(q, k, v, **kw)
    g = make(low.shape, q.dtype)
    if explicit:
        ours, calls = flag_gems.ops.scaled_dot_product_attention(q, k, v, **kw), []
    else:
        ours, calls = routed(lambda: F.scaled_dot_product_attention(q, k, v, **kw))
    close(ours, low, exact)
    if backward:
        exact_grads = grads(exact, exact_leaves, g.double())
        low_grads = grads(low, (q, k, v), g)
        if explicit:
            ours_grads = grads(ours, (q, k, v), g)
        else:
            ours_grads, more = routed(lambda: grads(ours, (q, k, v), g))
            calls += more
        for mine, theirs, right in zip(ours_grads, low_grads, exact_grads):
            close(mine, theirs, right)
    return [(op, where) for op, where in calls if op.startswith(SDPA_ROWS)]


def assert_ours(calls, backward=True, reached=True):
    """Every SDPA row reached ran our kernels; on the CPU the forward and backward rows were
    reached; on a GPU some backend row was, unless PyTorch picks its math path (``reached``)."""
    assert all(where == "triton" for _, where in calls), calls
    assert calls or not reached, "no SDPA backend row was reached"
    if not ON_GPU:
        names = [op for op, _ in calls]
        assert f"{SDPA_ROWS}flash_attention_for_cpu" in names, calls
        assert not backward or f"{SDPA_ROWS}flash_attention_for_cpu_backward" in names, calls


SHAPES = [  # B, H, Hk, Lq, Lk, D
    (1, 2, 2, 16, 16, 16),
    (2, 2, 2, 19, 33, 32),  # odd lengths, Lq < Lk
    pick((1, 2, 2, 37, 21, 64), (2, 8, 8, 1000, 700, 64)),  # Lq > Lk
    pick((1, 2, 2, 24, 24, 64), (2, 16, 16, 2048, 2048, 128)),
]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_sdpa(shape, causal, dtype):
    q, k, v = operands(*shape, dtype, grad=True)
    assert_ours(check(q, k, v, causal=causal))


@pytest.mark.skipif(not ON_GPU, reason="head dims 96..256 at real sizes: GPU only")
@pytest.mark.parametrize("d", [96, 128, 256])
@pytest.mark.parametrize("dtype", HALVES)
def test_sdpa_head_dims(d, dtype):
    q, k, v = operands(2, 8, 8, 777, 777, d, dtype, grad=True)
    assert_ours(check(q, k, v, causal=True))


@pytest.mark.parametrize("d, dv", [(8, 8), (24, 24), (40, 40), (32, 16)])
def test_sdpa_padded_head_dims(d, dv):
    q, k, v = operands(1, 2, 2, 9, 13, d, torch.float32, DV=dv, grad=True)
    check(q, k, v, explicit=True)
    if d == dv:
        assert_ours(check(q, k, v))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_gqa(dtype, causal):
    q, k, v = operands(*pick((2, 4, 2, 20, 27, 32), (2, 32, 8, 1024, 1024, 128)), dtype, grad=True)
    # fp32 with grouped heads: PyTorch's GPU backends decline it (math path, no row)
    assert_ours(check(q, k, v, causal=causal), reached=not ON_GPU or dtype != torch.float32)
    check(q, k[:, :1], v[:, :1], causal=causal, explicit=True)  # one key head for all


@pytest.mark.parametrize("kind", ["float", "bool"])
@pytest.mark.parametrize("mask_shape", ["lq_lk", "b1_lq_lk", "bh_lq_lk", "1_lk"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_sdpa_masks(kind, mask_shape, dtype):
    B, H, Lq, Lk, D = pick((2, 2, 17, 23, 32), (2, 8, 500, 700, 64))
    q, k, v = operands(B, H, H, Lq, Lk, D, dtype, grad=True)
    shape = {"lq_lk": (Lq, Lk), "b1_lq_lk": (B, 1, Lq, Lk), "bh_lq_lk": (B, H, Lq, Lk), "1_lk": (1, Lk)}[mask_shape]
    mask = random_mask(shape, kind)
    mask = mask if kind == "bool" else mask.to(dtype)
    assert_ours(check(q, k, v, mask=mask))
    check(q, k, v, mask=mask, explicit=True)


def test_sdpa_fully_masked_row_is_zero():
    q, k, v = operands(1, 2, 2, 6, 9, 16, torch.float32)
    mask = torch.ones(6, 9, dtype=torch.bool, device=q.device)
    mask[2] = False
    out = flag_gems.ops.scaled_dot_product_attention(q, k, v, mask)
    assert torch.equal(out[:, :, 2], torch.zeros_like(out[:, :, 2]))
    close(out, F.scaled_dot_product_attention(q, k, v, mask), reference(q, k, v, mask))


@pytest.mark.parametrize("scale", [0.05, 1.0])
def test_sdpa_scale(scale):
    q, k, v = operands(1, 2, 2, 18, 18, 32, torch.float32, grad=True)
    assert_ours(check(q, k, v, causal=True, scale=scale))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sdpa_model_layout(dtype):
    """Views of [B, L, H, D] storage (as models transpose them), in place."""
    q, k, v = operands(*pick((2, 2, 2, 21, 21, 32), (4, 16, 16, 1024, 1024, 128)), dtype, layout="blhd", grad=True)
    assert not q.is_contiguous()
    assert_ours(check(q, k, v, causal=True))
    q2 = make((1, 2, 40, 64), dtype)[:, :, ::2, 16:48].requires_grad_()  # strided rows, offset features
    k2, v2 = make((1, 2, 30, 32), dtype).requires_grad_(), make((1, 2, 30, 32), dtype).requires_grad_()
    check(q2, k2, v2, explicit=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sdpa_explicit(dtype):
    q, k, v = operands(2, 4, 2, 17, 29, 32, dtype, grad=True)
    check(q, k, v, causal=True, explicit=True)
    with torch.no_grad():
        out = flag_gems.ops.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    assert out.dtype == dtype and out.shape == q.shape and not out.requires_grad


def test_sdpa_empty_runs_native():
    for shape in [(0, 2, 2, 5, 5, 16), (1, 2, 2, 0, 5, 16), (1, 2, 2, 5, 0, 16)]:
        q, k, v = operands(*shape, torch.float32)
        native = F.scaled_dot_product_attention(q, k, v)
        ours, calls = routed(lambda: F.scaled_dot_product_attention(q, k, v))
        torch.testing.assert_close(ours, native, equal_nan=True)
        assert all(where != "triton" for op, where in calls if op.startswith(SDPA_ROWS))
        torch.testing.assert_close(flag_gems.ops.scaled_dot_product_attention(q, k, v), native, equal_nan=True)


def test_sdpa_fallbacks():
    q, k, v = operands(1, 2, 2, 8, 8, 16, torch.float32)
    # dropout: the explicit call runs PyTorch's (random: compare a draw's shape only)
    assert flag_gems.ops.scaled_dot_product_attention(q, k, v, dropout_p=0.5).shape == q.shape
    if not ON_GPU:
        op = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
        # native raises its own error for dropout: the call went there
        assert_same_error(lambda: op(q, k, v, 0.5), message=True)
        assert error_of(lambda: op(q, k, v, 0.5)) is RuntimeError
        q64, k64, v64 = operands(1, 2, 2, 8, 8, 16, torch.float64)
        ours, calls = routed(lambda: op(q64, k64, v64))
        assert calls[0][1].startswith("native (dtype")
        torch.testing.assert_close(ours[0], op(q64, k64, v64)[0])
    # fp64 and a too wide head through the explicit call: PyTorch's results
    q64, k64, v64 = operands(1, 2, 2, 8, 8, 16, torch.float64)
    torch.testing.assert_close(flag_gems.ops.scaled_dot_product_attention(q64, k64, v64),
                               F.scaled_dot_product_attention(q64, k64, v64))
    wide = operands(1, 1, 1, 3, 3, 320, torch.float32)
    torch.testing.assert_close(flag_gems.ops.scaled_dot_product_attention(*wide),
                               F.scaled_dot_product_attention(*wide))


@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_forward_tiles_are_tuned(causal, tmp_path, monkeypatch):
    """In quick mode the forward's tiles are timed per bucket and the choice is remembered;
    the result is the heuristic tiles' result up to rounding."""
    from flag_gems import tuning
    from flag_gems.ops.attention.flash import forward_config

    monkeypatch.setenv("GEMS_CACHE_DIR", str(tmp_path))
    q, k, v = operands(1, 2, 2, pick(40, 1024), pick(40, 1024), 64, torch.float16)
    tuning.forget_choices()
    expected = flag_gems.ops.scaled_dot_product_attention(q, k, v, is_causal=causal)
    tuning.forget_choices()
    with tuning.forced("quick"):
        tuned = flag_gems.ops.scaled_dot_product_attention(q, k, v, is_causal=causal)
    decisions = [d for d in tuning.decisions() if d["kernel"] == "attention_forward"]
    assert decisions and decisions[-1]["config"] in [dict(zip(forward_config.fields, c)) for c in forward_config.space]
    torch.testing.assert_close(tuned, expected, atol=2e-3, rtol=2e-3)  # other tiles: another summation order
    tuning.forget_choices()
