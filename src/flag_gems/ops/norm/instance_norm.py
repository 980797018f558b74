"""Instance norm (FlagGems' explicit-call instance_norm, with autograd): group norm with one
channel per group, or batch norm on the running stats."""

import torch

from ... import runtime
from ...utils.dtypes import float_accumulator
from .batch_norm import batch_norm, native_batch_norm_backward, stats_ok
from .group_norm import group_norm_forward, native_group_norm_backward

__all__ = ["instance_norm"]

_FLOATS = runtime.supported_float_dtypes()


class _InstanceNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, weight, bias, running_mean, running_var, use_input_stats, momentum, eps):
        N, C = input.shape[:2]
        HxW = input.numel() // (N * C)
        ctx.use_input_stats, ctx.shape, ctx.eps = use_input_stats, (N, C, HxW), eps
        if not use_input_stats:
            out = batch_norm(input, weight, bias, running_mean, running_var, False, momentum, eps)[0]
            ctx.save_for_backward(input, weight, running_mean, running_var)
            return out
        x = input.contiguous()
        acc = float_accumulator(input.dtype)
        mean = torch.empty((N, C), dtype=acc, device=input.device)
        rstd = torch.empty((N, C), dtype=acc, device=input.device)
        out = torch.empty_like(x)
        group_norm_forward(x, weight, bias, N, C, HxW, C, eps, out, mean, rstd)
        if running_mean is not None:
            # As torch: each instance updates its own copy of the running stats (unbiased
            # variance), then the copies are averaged over the batch.
            var = (rstd.reciprocal().square() - eps) * (HxW / (HxW - 1))
            running_mean.mul_(1 - momentum).add_(mean.mean(0).to(running_mean.dtype), alpha=momentum)
            running_var.mul_(1 - momentum).add_(var.mean(0).to(running_var.dtype), alpha=momentum)
        ctx.save_for_backward(x, weight, mean, rstd)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        mask = ctx.needs_input_grad[:3]
        if ctx.use_input_stats:
            x, weight, mean, rstd = ctx.saved_tensors
            N, C, HxW = ctx.shape
            grads = native_group_norm_backward(grad_out.reshape(x.shape), x, mean, rstd, weight, N, C, HxW, C, mask)
        else:
            x, weight, running_mean, running_var = ctx.saved_tensors
            grads = native_batch_norm_backward(grad_out, x, weight, running_mean, running_var, None, None, False,
                                               ctx.eps, mask)
        return (*grads, None, None, None, None, None)


def instance_norm(input, weight=None, bias=None, running_mean=None, running_var=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """torch.nn.functional.instance_norm, computed per (n, c) by our kernels, with autograd."""
    fallback = (input.dtype not in _FLOATS or input.dim() < 2 or input.numel() == 0
                or not all(stats_ok(t, input.shape[1], input) for t in (weight, bias, running_mean, running_var))
                or (running_mean is None) != (running_var is None) or (not use_input_stats and running_mean is None)
                or (use_input_stats and input.numel() // (input.shape[0] * input.shape[1]) < 2))
    if fallback:  # torch computes it, or raises its own error
        return torch.nn.functional.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats,
                                                 momentum, eps)
    return _InstanceNorm.apply(input, weight, bias, running_mean, running_var, use_input_stats, momentum, eps)
