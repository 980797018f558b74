"""Residual-add fusions of the norms: x + residual and its norm in one pass.

- ``fused_add_rms_norm(x, residual, ...)``: FlagGems' in-place form (residual <- x + residual,
  x <- its RMS norm);
- ``add_rms_norm(x, residual, ...)``: the same, out of place: (norm, x + residual), as a
  decoder layer that keeps its residual stream for backward needs it;
- ``skip_layer_norm(x, residual, ...)``: layer_norm(x + residual).

All differentiable; kernels and autograd helpers are layer_norm's.
"""

import torch

from ...utils.dtypes import float_accumulator
from .layer_norm import (_default_rms_eps, _needs_grad, _norm_backward, _norm_forward, _normalized_shape,
                         _params_unsupported)

__all__ = ["fused_add_rms_norm", "add_rms_norm", "skip_layer_norm"]


def _residual_unsupported(x, residual, normalized_shape, weight):
    if residual.shape != x.shape or residual.dtype != x.dtype or residual.device != x.device:
        return "the residual differs from x in shape, dtype or device"
    return _params_unsupported(x, normalized_shape, weight)


class _FusedAddRMSNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, residual, normalized_shape, weight, eps):
        rstd = _fused_add_rms_norm(x, residual, normalized_shape, weight, eps)
        ctx.mark_dirty(x, residual)
        # The residual stream is usually updated in place again by the next layer: keep h apart.
        ctx.save_for_backward(residual.clone(), weight, rstd)
        ctx.ndim = len(normalized_shape)
        return x, residual

    @staticmethod
    def backward(ctx, dy, dsum):
        return _sum_and_norm_backward(ctx, dy, dsum)


def _sum_and_norm_backward(ctx, dy, dsum):
    """Gradients of (x, residual, shape, weight, eps) from those of (norm of h, h = x + residual)."""
    h, weight, rstd = ctx.saved_tensors
    dh, dw, _ = _norm_backward(dy, h, ctx.ndim, None, rstd, weight, True, ctx.needs_input_grad[3], False,
                               dh=None if dsum is None else dsum.contiguous())
    return dh, dh, None, dw, None


def _fused_add_rms_norm(x, residual, normalized_shape, weight, eps):
    """x <- rms_norm(x + residual) * weight, residual <- x + residual, in one pass; returns rstd."""
    in_place = x.is_contiguous() and residual.is_contiguous()
    h = residual if in_place else torch.empty(x.shape, dtype=x.dtype, device=x.device)
    y, _, rstd = _norm_forward(x, len(normalized_shape), weight, None, _default_rms_eps(eps, x.dtype), False,
                               float_accumulator(x.dtype),
                               residual=residual.contiguous(), h=h, out=x if in_place else None)
    if not in_place:
        x.copy_(y)
        residual.copy_(h)
    return rstd


def fused_add_rms_norm(x, residual, normalized_shape, weight=None, eps=1e-5):
    """FlagGems' fused residual add and RMS norm, in place: ``residual`` becomes x + residual and
    ``x`` its RMS norm times ``weight``. Returns (x, residual); differentiable."""
    normalized_shape = _normalized_shape(normalized_shape)
    if _residual_unsupported(x, residual, normalized_shape, weight) is not None:
        residual.add_(x)
        x.copy_(torch.nn.functional.rms_norm(residual, normalized_shape, weight, eps))
        return x, residual
    if _needs_grad(x, residual, weight):
        return _FusedAddRMSNorm.apply(x, residual, normalized_shape, weight, eps)
    _fused_add_rms_norm(x, residual, normalized_shape, weight, eps)
    return x, residual


class _AddRMSNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, residual, normalized_shape, weight, eps):
        h = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        y, _, rstd = _norm_forward(x, len(normalized_shape), weight, None, _default_rms_eps(eps, x.dtype), False,
                                   float_accumulator(x.dtype), residual=residual.contiguous(), h=h)
        ctx.save_for_backward(h, weight, rstd)
        ctx.ndim = len(normalized_shape)
        return y, h

    @staticmethod
    def backward(ctx, dy, dsum):
        return _sum_and_norm_backward(ctx, dy, dsum)


def add_rms_norm(x, residual, normalized_shape, weight=None, eps=1e-5):
    """(RMS norm of h times ``weight``, h) for h = x + residual (rounded to x's dtype as an unfused
    add would be), in one pass; nothing is written in place. Differentiable."""
    normalized_shape = _normalized_shape(normalized_shape)
    if _residual_unsupported(x, residual, normalized_shape, weight) is not None:
        h = x + residual
        return torch.nn.functional.rms_norm(h, normalized_shape, weight, eps), h
    if _needs_grad(x, residual, weight):
        return _AddRMSNorm.apply(x, residual, normalized_shape, weight, eps)
    h = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    y, _, _ = _norm_forward(x, len(normalized_shape), weight, None, _default_rms_eps(eps, x.dtype), False,
                            float_accumulator(x.dtype), residual=residual.contiguous(), h=h)
    return y, h


class _SkipLayerNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, residual, normalized_shape, weight, bias, eps):
        h = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        y, mean, rstd = _norm_forward(x, len(normalized_shape), weight, bias, eps, True, float_accumulator(x.dtype),
                                      residual=residual.contiguous(), h=h)
        ctx.save_for_backward(h, weight, mean, rstd)
        ctx.ndim = len(normalized_shape)
        return y

    @staticmethod
    def backward(ctx, dy):
        h, weight, mean, rstd = ctx.saved_tensors
        need = ctx.needs_input_grad
        dh, dw, db = _norm_backward(dy, h, ctx.ndim, mean, rstd, weight, need[0] or need[1], need[3], need[4])
        return dh if need[0] else None, dh if need[1] else None, None, dw, db, None


def skip_layer_norm(x, residual, normalized_shape, weight=None, bias=None, eps=1e-5):
    """FlagGems' fused residual add and layer norm: layer_norm(x + residual); differentiable."""
    normalized_shape = _normalized_shape(normalized_shape)
    if (_residual_unsupported(x, residual, normalized_shape, weight) is not None
            or _params_unsupported(x, normalized_shape, bias) is not None):
        return torch.nn.functional.layer_norm(x + residual, normalized_shape, weight, bias, eps)
    if _needs_grad(x, residual, weight, bias):
        return _SkipLayerNorm.apply(x, residual, normalized_shape, weight, bias, eps)
    return _norm_forward(x, len(normalized_shape), weight, bias, eps, True, float_accumulator(x.dtype),
                         residual=residual.contiguous())[0]
