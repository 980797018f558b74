"""Layer norm and RMS norm, forward, backward and fused with a residual add:
memory-bound, reported in GB/s (the bytes of the inputs and of the result
returned; a forward-and-backward case moves more than it counts)."""

import torch
import torch.nn.functional as F

import flag_gems
from harness import Case, randn

SHAPE = (16384, 4096)
QUICK = (64, 128)


def _params(shapes, dtype, device, grads=False):
    """x, weight, bias (requiring grad when ``grads``) and a gradient for the output."""
    x, w, b = randn(shapes[0], dtype, device), randn(shapes[1], dtype, device), randn(shapes[1], dtype, device)
    if grads:
        x, w, b = (t.requires_grad_() for t in (x, w, b))
    return x, w, b, randn(shapes[0], dtype, device)


def _layer_norm_train(x, w, b, g):
    """Forward and backward through autograd; returns dx."""
    y = F.layer_norm(x, x.shape[-1:], w, b)
    return torch.autograd.grad(y, (x, w, b), g)[0]


def _rms_norm_train(x, w, b, g):
    y = F.rms_norm(x, x.shape[-1:], w)
    return torch.autograd.grad(y, (x, w), g)[0]


def _layer_norm_backward_inputs(shapes, dtype, device):
    x, w, b, g = _params(shapes, dtype, device)
    _, mean, rstd = torch.native_layer_norm(x, x.shape[-1:], w, b, 1e-5)
    return g, x, mean, rstd, w, b


def _layer_norm_backward(g, x, mean, rstd, w, b):
    return torch.ops.aten.native_layer_norm_backward(g, x, x.shape[-1:], mean, rstd, w, b, [True, True, True])[0]


def _rms_norm_backward_inputs(shapes, dtype, device):
    x, w, _, g = _params(shapes, dtype, device)
    _, rstd = torch.ops.aten._fused_rms_norm(x, x.shape[-1:], w, None)
    return g, x, rstd, w


def _rms_norm_backward(g, x, rstd, w):
    return torch.ops.aten._fused_rms_norm_backward(g, x, x.shape[-1:], rstd, w, [True, True])[0]


def _gems_active():
    """Whether this call runs under flag_gems.use_gems() (the harness times each case both ways)."""
    return any(row.active for row in flag_gems.ops.collect_rows() if row.name == "native_layer_norm")


def _fused_add_rms_norm(x, residual, w):
    """In place, as FlagGems' fused_add_rms_norm: residual <- x + residual, x <- rms_norm(residual).
    Both sides mutate their inputs, so the harness's value check compares x with itself (the
    tests check the values); the fused function is called directly and reaches no aten row."""
    if _gems_active():
        return flag_gems.fused_add_rms_norm(x, residual, x.shape[-1:], w)[0]
    residual.add_(x)
    return x.copy_(F.rms_norm(residual, x.shape[-1:], w, 1e-5))


CASES = [
    Case("layer_norm_bf16", torch.bfloat16, (SHAPE, SHAPE[-1:], SHAPE[-1:]), (QUICK, QUICK[-1:], QUICK[-1:]),
         lambda x, w, b: F.layer_norm(x, x.shape[-1:], w, b)),
    Case("layer_norm_backward_bf16", torch.bfloat16, (SHAPE, SHAPE[-1:]), (QUICK, QUICK[-1:]),
         _layer_norm_backward, make=_layer_norm_backward_inputs),
    Case("layer_norm_train_bf16", torch.bfloat16, (SHAPE, SHAPE[-1:]), (QUICK, QUICK[-1:]), _layer_norm_train,
         make=lambda shapes, dtype, device: _params(shapes, dtype, device, grads=True)),
    Case("rms_norm_bf16", torch.bfloat16, (SHAPE, SHAPE[-1:]), (QUICK, QUICK[-1:]),
         lambda x, w: F.rms_norm(x, x.shape[-1:], w)),
    Case("rms_norm_backward_bf16", torch.bfloat16, (SHAPE, SHAPE[-1:]), (QUICK, QUICK[-1:]),
         _rms_norm_backward, make=_rms_norm_backward_inputs),
    Case("rms_norm_train_bf16", torch.bfloat16, (SHAPE, SHAPE[-1:]), (QUICK, QUICK[-1:]), _rms_norm_train,
         make=lambda shapes, dtype, device: _params(shapes, dtype, device, grads=True)),
    Case("rms_norm_fused_add_bf16", torch.bfloat16, (SHAPE, SHAPE, SHAPE[-1:]), (QUICK, QUICK, QUICK[-1:]),
         _fused_add_rms_norm, direct=True),
]
