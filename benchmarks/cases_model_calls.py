"""The calls a Llama-architecture model makes, as it makes them (hidden 2048, 16 heads of
128, FFN 5632, bf16), at decode (T=1) and prefill (T=512) shapes: broadcast operands,
Python numbers, mixed dtypes, slices of the last dim, casts, keepdim reductions, linear
with a transposed weight. Small calls: the wall-clock column is the point."""

import torch
import torch.nn.functional as F

from harness import Case, randn

HIDDEN, HEADS, HEAD_DIM, FFN, VOCAB = 2048, 16, 128, 5632, 32000
QUICK_HIDDEN, QUICK_HEADS, QUICK_HEAD_DIM, QUICK_FFN = 64, 4, 16, 128


def _rms_norm(x, weight):
    # LlamaRMSNorm.forward
    variance = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
    return weight * (x.to(torch.float32) * torch.rsqrt(variance + 1e-6)).to(x.dtype)


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _rotary(q, cos, sin):
    # apply_rotary_pos_emb, one of q and k
    return q * cos + _rotate_half(q) * sin


def _heads(shapes, dtype, device):
    """q as the attention makes it: [1, T, heads, dim] transposed to [1, heads, T, dim]; cos
    and sin [1, 1, T, dim]."""
    (t, heads, dim), = shapes
    q = randn((1, t, heads, dim), dtype, device).transpose(1, 2)
    return q, randn((1, 1, t, dim), dtype, device), randn((1, 1, t, dim), dtype, device)


def _weight_t(shapes, dtype, device):
    """Activation and nn.Linear's weight, as F.linear passes it to mm: transposed."""
    (t, k), (n, _) = shapes
    return randn((t, k), dtype, device), randn((n, k), dtype, device) * k ** -0.5


def _positive(shapes, dtype, device):
    return (randn(shapes[0], dtype, device).abs() + 1e-6,)


def _labels(shapes, dtype, device):
    (t, vocab), = shapes
    return randn((t, vocab), dtype, device), torch.randint(0, vocab, (t,), device=device)


def _cases():
    cases = []
    for t, quick_t in ((1, 1), (512, 8)):
        row, quick_row = (1, t, HIDDEN), (1, quick_t, QUICK_HIDDEN)
        column, quick_column = (1, t, 1), (1, quick_t, 1)
        suffix = f"t{t}"
        cases += [
            Case(f"llm_rms_norm_{suffix}", torch.bfloat16, (row, (HIDDEN,)), (quick_row, (QUICK_HIDDEN,)), _rms_norm),
            Case(f"llm_to_fp32_{suffix}", torch.bfloat16, (row,), (quick_row,), lambda x: x.to(torch.float32)),
            Case(f"llm_pow_{suffix}", torch.float32, (row,), (quick_row,), lambda x: x.pow(2)),
            Case(f"llm_mean_keepdim_{suffix}", torch.float32, (row,), (quick_row,),
                 lambda x: x.mean(-1, keepdim=True)),
            Case(f"llm_add_number_{suffix}", torch.float32, (column,), (quick_column,), lambda x: x + 1e-6),
            Case(f"llm_rsqrt_{suffix}", torch.float32, (column,), (quick_column,), torch.rsqrt, make=_positive),
            Case(f"llm_mul_broadcast_{suffix}", torch.float32, (row, column), (quick_row, quick_column), torch.mul),
            Case(f"llm_mul_weight_{suffix}", torch.bfloat16, ((HIDDEN,), row), ((QUICK_HIDDEN,), quick_row),
                 torch.mul),
            Case(f"llm_rotary_{suffix}", torch.bfloat16, ((t, HEADS, HEAD_DIM),),
                 ((quick_t, QUICK_HEADS, QUICK_HEAD_DIM),), _rotary, make=_heads),
            Case(f"llm_neg_slice_{suffix}", torch.bfloat16, ((t, HEADS, HEAD_DIM),),
                 ((quick_t, QUICK_HEADS, QUICK_HEAD_DIM),), lambda q, cos, sin: -q[..., q.shape[-1] // 2:],
                 make=_heads),
            Case(f"llm_silu_mul_{suffix}", torch.bfloat16, ((1, t, FFN), (1, t, FFN)),
                 ((1, quick_t, QUICK_FFN), (1, quick_t, QUICK_FFN)), lambda g, u: F.silu(g) * u),
            Case(f"llm_residual_add_{suffix}", torch.bfloat16, (row, row), (quick_row, quick_row), torch.add),
            Case(f"llm_softmax_{suffix}", torch.float32, ((HEADS, t, t),), ((QUICK_HEADS, quick_t, quick_t),),
                 lambda x: torch.softmax(x, -1)),
        ]
        for name, (k, n) in (("qkv", (HIDDEN, HIDDEN)), ("kv", (HIDDEN, 512)), ("up", (HIDDEN, FFN)),
                             ("down", (FFN, HIDDEN))):
            quick_k, quick_n = k // 32, n // 32
            cases.append(Case(f"llm_linear_{name}_{suffix}", torch.bfloat16, ((t, k), (n, k)),
                              ((quick_t, quick_k), (quick_n, quick_k)), lambda x, w: F.linear(x, w),
                              make=_weight_t, flops=lambda x, w: 2 * x.shape[0] * x.shape[1] * w.shape[0],
                              native_ok=True))  # mm runs cuBLAS where no tuned entry wins
    # the attention's output [1, heads, T, dim] back to [1, T, heads, dim] (a copy at T > 1)
    cases.append(Case("llm_contiguous_heads_t512", torch.bfloat16, ((1, HEADS, 512, HEAD_DIM),),
                      ((1, QUICK_HEADS, 8, QUICK_HEAD_DIM),), lambda x: x.transpose(1, 2).contiguous()))
    cases.append(Case("llm_cross_entropy_t512", torch.float32, ((512, VOCAB),), ((8, 128),),
                      lambda x, y: F.cross_entropy(x, y), make=_labels))
    return cases


CASES = _cases()
