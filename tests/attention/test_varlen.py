"""flash_attn_varlen_func: packed sequences of different lengths (flash-attn's layout and
bottom-right causal convention), forward and backward against fp64 per sequence."""

import pytest
import torch

import flag_gems
from flag_gems.ops.attention import varlen

from attention_checks import close, grads, reference
from conftest import DEVICE, ON_GPU, make, pick

LENGTHS = [  # (query lengths, key lengths)
    ([5, 17, 1], [9, 17, 30]),
    ([6, 0, 12], [3, 4, 12]),  # more queries than keys (causal: leading rows see none), an empty sequence
    pick(([33], [40]), ([1000, 37, 2048], [1000, 2000, 2048])),
]


def _cu(lengths):
    return torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32, device=DEVICE)


def _reference(q, k, v, lq, lk, causal, scale=None):
    """[total_q, H, DV] by the definition, one sequence at a time."""
    outs, sq, sk = [], 0, 0
    for a, b in zip(lq, lk):
        per = reference(q[sq:sq + a].transpose(0, 1), k[sk:sk + b].transpose(0, 1), v[sk:sk + b].transpose(0, 1),
                        causal=2 if causal else 0, scale=scale)
        outs.append(per.transpose(0, 1))
        sq, sk = sq + a, sk + b
    return torch.cat(outs)


@pytest.mark.parametrize("lengths", LENGTHS, ids=str)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_varlen(lengths, causal, dtype):
    lq, lk = lengths
    H, Hk, D = pick((4, 2, 32), (16, 4, 128))
    q = make((sum(lq), H, D), dtype).requires_grad_()
    k, v = make((sum(lk), Hk, D), dtype).requires_grad_(), make((sum(lk), Hk, D), dtype).requires_grad_()
    leaves = [t.detach().double().requires_grad_() for t in (q, k, v)]
    exact = _reference(*leaves, lq, lk, causal)
    low = _reference(q, k, v, lq, lk, causal).to(dtype)  # rounding to the dtype: the stand-in for PyTorch's error
    ours = flag_gems.ops.flash_attn_varlen_func(q, k, v, _cu(lq), _cu(lk), max(lq), max(lk), causal=causal)
    close(ours, low, exact)
    g = make(ours.shape, dtype)
    for mine, theirs, right in zip(grads(ours, (q, k, v), g), grads(low, (q, k, v), g),
                                   grads(exact, leaves, g.double())):
        close(mine, theirs, right)


def test_varlen_scale_and_strided_operands():
    lq, lk = [7, 11], [7, 20]
    qkv = make((sum(lq), 3, 2, 32), torch.float32)  # one packed projection, split by views
    q = qkv[:7 + 11, 0]
    kv = make((sum(lk), 2, 2, 32), torch.float32)
    k, v = kv[:, 0], kv[:, 1]
    ours = flag_gems.ops.flash_attn_varlen_func(q, k, v, _cu(lq), _cu(lk), 11, 20, softmax_scale=0.3, causal=True)
    exact = _reference(q, k, v, lq, lk, True, 0.3)
    close(ours, exact.float(), exact)


def test_varlen_fallback_matches():
    """What the kernels do not take (fp64 here) runs a loop of PyTorch's attention, same conventions."""
    lq, lk = [6, 3], [3, 5]
    q, k, v = make((9, 2, 16), torch.float64), make((8, 2, 16), torch.float64), make((8, 2, 16), torch.float64)
    assert varlen._varlen_reason(q, k, v, _cu(lq), _cu(lk), 6, 5, 0.0, None) is not None
    ours = flag_gems.ops.flash_attn_varlen_func(q, k, v, _cu(lq), _cu(lk), 6, 5, causal=True)
    torch.testing.assert_close(ours, _reference(q, k, v, lq, lk, True))
    if not ON_GPU:
        q32, k32, v32 = q.float(), k.float(), v.float()
        assert varlen._varlen_reason(q32, k32, v32, _cu(lq), _cu(lk), 6, 5, 0.5, None) == "dropout"
