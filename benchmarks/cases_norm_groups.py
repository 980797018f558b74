"""Group, batch and weight norm, forward and forward+backward: memory-bound, reported in GB/s
(bytes of the inputs and the output; the backward's traffic is not counted)."""

import torch
import torch.nn.functional as F

from harness import Case, randn


def _with_params(shapes, dtype, device):
    """An input plus a weight and a bias of its channels, all requiring grad."""
    x = randn(shapes[0], dtype, device).requires_grad_()
    channels = shapes[0][1]
    return x, randn((channels,), dtype, device).requires_grad_(), randn((channels,), dtype, device).requires_grad_()


def _group_norm(x, w, b):
    return F.group_norm(x, 32, w, b)


def _with_params_and_grad(shapes, dtype, device):
    """As _with_params, plus a random output gradient (a constant one makes batch norm's dx zero)."""
    return (*_with_params(shapes, dtype, device), randn(shapes[0], dtype, device))


def _group_norm_fwd_bwd(x, w, b, dy):
    return torch.autograd.grad(F.group_norm(x, 32, w, b), (x, w, b), dy)[0]


def _batch_norm(x, w, b):
    return F.batch_norm(x, None, None, w, b, training=True)


def _batch_norm_fwd_bwd(x, w, b, dy):
    return torch.autograd.grad(F.batch_norm(x, None, None, w, b, training=True), (x, w, b), dy)[0]


def _channels_last_with_params(shapes, dtype, device):
    x, w, b = _with_params(shapes, dtype, device)
    return x.detach().contiguous(memory_format=torch.channels_last).requires_grad_(), w, b


def _weight_and_gain(shapes, dtype, device):
    return randn(shapes[0], dtype, device).requires_grad_(), randn(shapes[1], dtype, device).requires_grad_()


def _weight_and_gain_and_grad(shapes, dtype, device):
    return (*_weight_and_gain(shapes, dtype, device), randn(shapes[0], dtype, device))


def _weight_norm_fwd_bwd(v, g, dw):
    return torch.autograd.grad(torch._weight_norm(v, g, 0), (v, g), dw)[0]


CASES = [
    Case("groupnorm_fwd_bf16", torch.bfloat16, ((32, 512, 64, 64),), ((2, 64, 4, 4),), _group_norm, make=_with_params),
    Case("groupnorm_fwdbwd_bf16", torch.bfloat16, ((32, 512, 64, 64),), ((2, 64, 4, 4),), _group_norm_fwd_bwd,
         make=_with_params_and_grad, rtol=5e-2),  # torch keeps bf16 mean/rstd: dx carries their rounding,
    Case("batchnorm_train_fwd_bf16", torch.bfloat16, ((64, 256, 56, 56),), ((4, 16, 5, 5),), _batch_norm,
         make=_with_params),
    Case("batchnorm_train_fwdbwd_bf16", torch.bfloat16, ((64, 256, 56, 56),), ((4, 16, 5, 5),), _batch_norm_fwd_bwd,
         make=_with_params_and_grad),
    Case("batchnorm_channels_last_fwd_bf16", torch.bfloat16, ((64, 256, 56, 56),), ((4, 16, 5, 5),),
         _batch_norm, make=_channels_last_with_params),
    Case("weightnorm_fwd_fp32", torch.float32, ((4096, 4096), (4096, 1)), ((64, 32), (64, 1)),
         lambda v, g: torch._weight_norm(v, g, 0), make=_weight_and_gain),
    Case("weightnorm_fwdbwd_fp32", torch.float32, ((4096, 4096), (4096, 1)), ((64, 32), (64, 1)),
         _weight_norm_fwd_bwd, make=_weight_and_gain_and_grad),
]
