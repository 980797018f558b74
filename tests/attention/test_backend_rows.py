"""The SDPA backend rows called explicitly, as PyTorch's internals call them: the output
tuple as native gives it (shapes, dtypes and layouts of PyTorch's meta functions,
placeholders), values against the fp64 definition, and the backward rows on the
forward's log-sum-exp. On the CPU the CUDA backends' implementations are called
directly (their aten operators have no CPU kernel); on a GPU through the dispatcher."""

import pytest
import torch

from flag_gems.ops.attention import sdpa

from attention_checks import close, grads, operands, reference
from conftest import ON_GPU, make, pick, routed

aten = torch.ops.aten
SHAPE = pick((2, 2, 2, 19, 27, 32), (2, 8, 8, 600, 900, 128))  # B, H, Hk, Lq, Lk, D


def _meta(tensors):
    return [t.detach().to("meta") if isinstance(t, torch.Tensor) else t for t in tensors]


def forward(name, args, kwargs):
    """(our result, native's meta result): ours through the dispatcher on a GPU (checked to
    run our kernels), through the implementation on the CPU."""
    op = getattr(aten, name).default
    expected = op(*_meta(args), **kwargs)
    if ON_GPU:
        result, calls = routed(lambda: op(*args, **kwargs))
        assert (f"aten::{name}", "triton") in calls, calls
    else:
        impl = {"_scaled_dot_product_flash_attention": sdpa._flash,
                "_scaled_dot_product_efficient_attention": sdpa._efficient,
                "_scaled_dot_product_cudnn_attention": sdpa._cudnn}[name]
        assert getattr(sdpa, f"{impl.__name__}_unsupported")(*args, **kwargs) is None
        result = impl(*args, **kwargs)
    return result, expected


def backward(name, args, kwargs):
    op = getattr(aten, name).default
    if ON_GPU:
        result, calls = routed(lambda: op(*args, **kwargs))
        assert (f"aten::{name}", "triton") in calls, calls
        return result
    impl = {"_scaled_dot_product_flash_attention_backward": sdpa._flash_backward,
            "_scaled_dot_product_efficient_attention_backward": sdpa._efficient_backward,
            "_scaled_dot_product_cudnn_attention_backward": sdpa._cudnn_backward}[name]
    assert getattr(sdpa, f"{impl.__name__}_unsupported")(*args, **kwargs) is None
    return impl(*args, **kwargs)


def _defined(t, like):
    """An undefined tensor of a forward's result (None in Python) as the dispatcher takes it back: empty."""
    return torch.empty(0, dtype=torch.int32, device=like.device) if t is None else t


def same_structure(result, expected):
    assert len(result) == len(expected)
    for mine, theirs in zip(result, expected):
        if isinstance(theirs, torch.Tensor):
            assert isinstance(mine, torch.Tensor) and mine.shape == theirs.shape and mine.dtype == theirs.dtype, (
                mine, theirs)
        else:
            assert mine == theirs or (mine is None and theirs is None), (mine, theirs)


def check_grads(result, q, k, v, out, g, mask=None, causal=False, scale=None):
    leaves = [t.detach().double().requires_grad_() for t in (q, k, v)]
    exact = reference(*leaves, mask, int(causal), scale)
    low_leaves = [t.detach().requires_grad_() for t in (q, k, v)]
    low = reference(*low_leaves, mask, int(causal), scale).to(q.dtype)  # PyTorch's error stand-in: rounding
    for mine, theirs, right in zip(result, grads(low, low_leaves, g), grads(exact, leaves, g.double())):
        assert mine.shape == right.shape
        close(mine, theirs, right)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("causal", [False, True])
def test_flash_rows(dtype, causal):
    q, k, v = operands(*SHAPE, dtype, layout="blhd")
    (out, lse, cq, ck, max_q, max_k, seed, offset, debug), expected = forward(
        "_scaled_dot_product_flash_attention", (q, k, v, 0.0, causal), {"scale": 0.2})
    same_structure((out, lse, cq, ck, max_q, max_k, seed, offset, debug), expected)
    assert out.stride() == q.stride() and debug.numel() == 0
    exact = reference(q, k, v, None, int(causal), 0.2)
    close(out, exact.to(dtype), exact)
    g = make(out.shape, dtype)
    result = backward("_scaled_dot_product_flash_attention_backward",
                      (g, q, k, v, out, lse, _defined(cq, q), _defined(ck, q), max_q, max_k, 0.0, causal, seed, offset),
                      {"scale": 0.2})
    check_grads(result, q, k, v, out, g, causal=causal, scale=0.2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("compute_lse", [False, True])
def test_efficient_rows(dtype, with_bias, compute_lse):
    B, H, _, Lq, Lk, D = SHAPE
    q, k, v = operands(B, H, H, Lq, Lk, D, dtype)
    bias = make((B, 1, Lq, Lk), dtype) if with_bias else None
    (out, lse, seed, offset), expected = forward(
        "_scaled_dot_product_efficient_attention", (q, k, v, bias, compute_lse, 0.0, True), {})
    same_structure((out, lse, seed, offset), expected)
    assert out.stride() == expected[0].stride()
    exact = reference(q, k, v, bias, 1)
    close(out, exact.to(dtype), exact)
    if compute_lse:
        g = make(out.shape, dtype)
        dq, dk, dv, dbias = backward("_scaled_dot_product_efficient_attention_backward",
                                     (g, q, k, v, bias, out, lse, seed, offset, 0.0, [True, True, True, False], True),
                                     {})
        assert dbias is None
        check_grads((dq, dk, dv), q, k, v, out, g, bias, causal=True)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cudnn_rows(dtype):
    B, H, Hk, Lq, Lk, D = SHAPE
    q, k, v = operands(B, H, Hk, Lq, Lk, D, dtype, layout="blhd")
    mask = make((Lq, Lk), dtype)
    result, expected = forward("_scaled_dot_product_cudnn_attention", (q, k, v, mask, True, 0.0, False, False), {})
    same_structure(result, expected)
    out, lse, cq, ck, max_q, max_k, seed, offset, _ = result
    exact = reference(q, k, v, mask)
    close(out, exact.to(dtype), exact)
    g = make(out.shape, dtype)
    grads_ = backward("_scaled_dot_product_cudnn_attention_backward",
                      (g, q, k, v, out, lse, seed, offset, mask, _defined(cq, q), _defined(ck, q), max_q, max_k,
                       0.0, False), {})
    check_grads(grads_, q, k, v, out, g, mask)


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
def test_rows_decline_what_they_do_not_take():
    q, k, v = operands(1, 2, 2, 8, 8, 16, torch.float16)
    assert sdpa._flash_unsupported(q, k, v, 0.1) == "dropout"
    assert sdpa._flash_unsupported(q, k, v, 0.0, False, True) == "debug attention mask"
    assert sdpa._flash_unsupported(q.double(), k.double(), v.double()).startswith("dtype")
    assert sdpa._efficient_unsupported(q, k[:, :1], v[:, :1], None, True).startswith("grouped heads")
    bias = make((1, 2, 8, 8), torch.float16).requires_grad_()
    lse = torch.zeros(1, 2, 32)
    assert sdpa._efficient_backward_unsupported(q, q, k, v, bias, q, lse, None, None, 0.0,
                                                [True, True, True, True]) == "the bias's gradient"
    wide = make((1, 2, 8, 320), torch.float16)
    assert "head dims" in sdpa._flash_unsupported(wide, wide, wide)
    nested = torch.nested.nested_tensor([make((2, 8, 16), torch.float16)]).transpose(1, 2)
    assert sdpa._flash_unsupported(nested, nested, nested) == "nested tensors"


@pytest.mark.skipif(ON_GPU, reason="the CPU's own flash attention")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_rows_match_native(dtype):
    B, H, Hk, Lq, Lk, D = SHAPE
    q, k, v = operands(B, H, Hk, Lq, Lk, D, dtype)
    mask = make((1, 1, Lq, Lk), dtype)
    op, op_backward = aten._scaled_dot_product_flash_attention_for_cpu, \
        aten._scaled_dot_product_flash_attention_for_cpu_backward
    native_out, native_lse = op(q, k, v, 0.0, True, attn_mask=mask)
    (out, lse), calls = routed(lambda: op(q, k, v, 0.0, True, attn_mask=mask))
    assert calls == [("aten::_scaled_dot_product_flash_attention_for_cpu", "triton")]
    assert lse.shape == native_lse.shape and lse.stride() == native_lse.stride() and lse.dtype == native_lse.dtype
    torch.testing.assert_close(lse, native_lse, rtol=1e-3, atol=1e-3)
    exact = reference(q, k, v, mask, 1)
    close(out, native_out, exact)
    g = make(out.shape, dtype)
    native_grads = op_backward(g, q, k, v, native_out, native_lse, 0.0, True, attn_mask=mask)
    ours, calls = routed(lambda: op_backward(g, q, k, v, out, lse, 0.0, True, attn_mask=mask))
    assert calls == [("aten::_scaled_dot_product_flash_attention_for_cpu_backward", "triton")]
    leaves = [t.detach().double().requires_grad_() for t in (q, k, v)]
    exact_grads = grads(reference(*leaves, mask, 1), leaves, g.double())
    for mine, theirs, right in zip(ours, native_grads, exact_grads):
        assert mine.stride() == theirs.stride()
        close(mine, theirs, right)
