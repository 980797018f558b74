"""Losses: memory-bound, reported in GB/s.

``cross_entropy_fused_*`` time ``flag_gems.cross_entropy_loss`` (under use_gems)
against ``F.cross_entropy`` (native); the fused function is called directly and
reaches no aten row. Its gradient is checked against fp64: native's backward
starts from log-probabilities rounded to bf16 and is the less exact of the two.
``cross_entropy_composite_*`` time ``F.cross_entropy`` itself, routed
(``_log_softmax`` + ``nll_loss_forward``).

``linear_cross_entropy_fused_fwdbwd_bf16``: a causal LM's lm_head and loss (Llama 3 8B's
head: 4 x 1024 tokens, H 4096, V 128256), forward and backward, as
``flag_gems.fused_linear_cross_entropy`` against ``F.cross_entropy(F.linear(h, w).float(), t)``
(what Hugging Face computes); the peak memory columns show the [N, V] logits native holds.
Reported in TFLOP/s of its three GEMMs; checked on the lm_head's gradient.
"""

import functools

import torch
import torch.nn.functional as F

import flag_gems
from flag_gems.ops import collect_rows
from harness import Case, randn


@functools.cache
def _nll_row():
    return next(row for row in collect_rows() if row.name == "nll_loss_forward")


def _gems_active():
    """Whether use_gems() is on: one attribute read, so the cases time the losses, not this."""
    return _nll_row().active


def _logits_and_targets(shapes, dtype, device):
    logits = randn(shapes[0], dtype, device).requires_grad_()
    return logits, torch.randint(0, shapes[0][1], shapes[0][:1], device=device)


def _log_probs_and_targets(shapes, dtype, device):
    log_probs = torch.log_softmax(randn(shapes[0], dtype, device), dim=-1)
    return log_probs, torch.randint(0, shapes[0][1], shapes[0][:1], device=device)


def _fused_forward(logits, target):
    with torch.no_grad():
        if _gems_active():
            return flag_gems.cross_entropy_loss(logits, target)
        return F.cross_entropy(logits, target)


def _fused_forward_backward(logits, target):
    loss = flag_gems.cross_entropy_loss(logits, target) if _gems_active() else F.cross_entropy(logits, target)
    return torch.autograd.grad(loss, logits)[0]


def _exact_gradient(logits, target):
    exact = logits.detach().double().requires_grad_()
    return torch.autograd.grad(F.cross_entropy(exact, target), exact)[0].to(logits.dtype)


def _composite_forward(logits, target):
    with torch.no_grad():
        return F.cross_entropy(logits, target)


def _composite_forward_backward(logits, target):
    return torch.autograd.grad(F.cross_entropy(logits, target), logits)[0]


def _probabilities(shapes, dtype, device):
    return randn(shapes[0], dtype, device), torch.rand(shapes[1], dtype=dtype, device=device)


def _hidden_weight_targets(shapes, dtype, device):
    hidden = randn(shapes[0], dtype, device).requires_grad_()
    weight = (randn(shapes[1], dtype, device) * shapes[1][1] ** -0.5).requires_grad_()  # logits of about 1
    return hidden, weight, torch.randint(0, shapes[1][0], shapes[0][:1], device=device)


def _linear_cross_entropy_forward_backward(hidden, weight, target):
    if _gems_active():
        loss = flag_gems.fused_linear_cross_entropy(hidden, weight, target)
    else:
        loss = F.cross_entropy(F.linear(hidden, weight).float(), target)
    return torch.autograd.grad(loss, (hidden, weight))[1]


def _lm_head_flops(hidden, weight, target):
    """The logits' GEMM and the two of the backward."""
    return 3 * 2 * hidden.shape[0] * hidden.shape[1] * weight.shape[0]


_VOCAB = ((4096, 32000),)
_VOCAB_QUICK = ((8, 100),)

CASES = [
    Case("cross_entropy_fused_bf16", torch.bfloat16, _VOCAB, _VOCAB_QUICK, _fused_forward,
         make=_logits_and_targets, direct=True),
    Case("cross_entropy_fused_fwdbwd_bf16", torch.bfloat16, _VOCAB, _VOCAB_QUICK, _fused_forward_backward,
         make=_logits_and_targets, reference=_exact_gradient, direct=True),
    Case("cross_entropy_composite_bf16", torch.bfloat16, _VOCAB, _VOCAB_QUICK, _composite_forward,
         make=_logits_and_targets),
    Case("cross_entropy_composite_fwdbwd_bf16", torch.bfloat16, _VOCAB, _VOCAB_QUICK,
         _composite_forward_backward, make=_logits_and_targets),
    Case("linear_cross_entropy_fused_fwdbwd_bf16", torch.bfloat16, ((4096, 4096), (128256, 4096)),
         ((8, 16), (100, 16)), _linear_cross_entropy_forward_backward, make=_hidden_weight_targets,
         flops=_lm_head_flops, direct=True),
    Case("nll_loss_bf16", torch.bfloat16, _VOCAB, _VOCAB_QUICK, F.nll_loss, make=_log_probs_and_targets),
    Case("mse_loss_mean_bf16", torch.bfloat16, ((64 << 20,), (64 << 20,)), ((4096,), (4096,)), F.mse_loss),
    Case("bce_with_logits_mean_bf16", torch.bfloat16, ((8192, 8192), (8192, 8192)), ((64, 64), (64, 64)),
         F.binary_cross_entropy_with_logits, make=_probabilities),
]
