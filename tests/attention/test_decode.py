"""The split-KV forward (flash decoding): a few queries over a long key cache, the keys
split across programs and combined, chosen by itself; forward and backward against fp64."""

import pytest
import torch
import torch.nn.functional as F

import flag_gems
from flag_gems.ops.attention import flash

from attention_checks import close, grads, operands, random_mask, reference
from conftest import ON_GPU, make, pick

LONG = pick(150, 4096)


def _block_n(D, dtype):
    return flash.default_config("split", max(16, D), dtype)[1]


def check(q, k, v, mask=None, causal=False, backward=False):
    B, H, Lq, D = q.shape
    assert flash.decode_splits(B, H, k.shape[1], Lq, k.shape[2], _block_n(D, q.dtype)) > 1 or ON_GPU
    kw = dict(attn_mask=mask, is_causal=causal, enable_gqa=k.shape[1] != H)
    leaves = [t.detach().double().requires_grad_() for t in (q, k, v)]
    exact = reference(*leaves, mask, int(causal))
    low = F.scaled_dot_product_attention(q, k, v, **kw)
    ours = flag_gems.ops.scaled_dot_product_attention(q, k, v, **kw)
    close(ours, low, exact)
    if backward:
        g = make(low.shape, q.dtype)
        for mine, theirs, right in zip(grads(ours, (q, k, v), g), grads(low, (q, k, v), g),
                                       grads(exact, leaves, g.double())):
            close(mine, theirs, right)


@pytest.mark.parametrize("lq", [1, 3, 16])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_decode(lq, dtype):
    B, H, Hk, D = pick((2, 2, 2, 32), (8, 32, 32, 128))
    check(*operands(B, H, Hk, lq, LONG, D, dtype))


@pytest.mark.parametrize("group", [2, 4])
@pytest.mark.parametrize("lq", [1, 5])
def test_decode_gqa(group, lq):
    """A key head's query group shares its programs (rows = heads x queries)."""
    B, Hk, D = pick((1, 2, 16), (8, 8, 128))
    check(*operands(B, Hk * group, Hk, lq, LONG + 7, D, torch.float16, layout="blhd"))


@pytest.mark.parametrize("kind", ["float", "bool"])
def test_decode_masks_and_causal(kind):
    B, H, Lq, D = pick((1, 2, 4, 32), (4, 16, 4, 128))
    q, k, v = operands(B, H, H, Lq, LONG, D, torch.float32)
    mask = random_mask((B, 1, Lq, LONG), kind)
    check(q, k, v, mask=mask)
    # causal is top-left: query i sees keys 0..i only (the split holding them does the work)
    check(q, k, v, causal=True)


def test_decode_backward():
    q, k, v = operands(*pick((1, 4, 2, 2, 130, 32), (4, 32, 8, 4, 4096, 128)), torch.float32, grad=True)
    check(q, k, v, backward=True)


def test_decode_is_chosen_for_short_queries_only():
    assert flash.decode_splits(1, 32, 8, 1, 4096, 64) > 0
    assert flash.decode_splits(1, 32, 8, 16, 4096, 64) > 0
    assert flash.decode_splits(1, 32, 8, 17, 4096, 64) == 0  # a prefill runs the plain forward
    assert flash.decode_splits(1, 32, 8, 1, 100, 64) == 0  # keys too few to split
