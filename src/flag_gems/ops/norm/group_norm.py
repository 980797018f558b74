"""Group norm, forward and backward: rows (n, group) for the statistics, (n, channel) for
the affine map, over the kernels of ``moments``."""

import torch

from ... import runtime
from ...codegen.pointwise import TL_DTYPE
from ...dispatch import Row
from ...utils.dtypes import HALF_DTYPES
from ...utils.layout import cdiv, merged_stride
from .moments import (GROUP_GRAD_COEFFICIENTS, NORM_COEFFICIENTS, PARAM_GRADS, affine, block, finish_block,
                      partial_moments, partial_sums)

__all__ = ["native_group_norm", "native_group_norm_backward"]

_FLOATS = runtime.supported_float_dtypes()


def group_norm_forward(x, weight, bias, N, C, HxW, group, eps, y, mean, rstd):
    """y, mean [N, group], rstd [N, group] of the contiguous ``x`` (written in place)."""
    size = C // group * HxW
    partials, splits = partial_moments(x, (N * group, 1, size), (size, 0, 1))
    acc = partials.dtype
    coefs = torch.empty((4, N * C), dtype=acc, device=x.device)
    block_q = finish_block(N * C, splits)
    NORM_COEFFICIENTS((cdiv(N * C, block_q),), partials, x, coefs, mean, rstd,
                      x if weight is None else weight, x if bias is None else bias, x, x,
                      N * C, C, C // group, splits, N * group, size, 0.0, eps, HAS_WEIGHT=weight is not None,
                      HAS_BIAS=bias is not None, FROM_RUNNING=False, UPDATE_RUNNING=False, BLOCK_Q=block_q,
                      BLOCK_S=block(splits, 64), ACC=TL_DTYPE[acc])
    strides = (HxW, 0, 1)
    affine(y, None, x, coefs, (N * C, 1, HxW), strides, None, strides, has_bias=True)


def _group_stat_dtype(x, weight, bias):
    mixed = x.dtype in HALF_DTYPES and any(p is not None and p.dtype == torch.float32 for p in (weight, bias))
    return torch.float32 if mixed else x.dtype


def native_group_norm(input, weight, bias, N, C, HxW, group, eps):
    """(y, mean, rstd): group norm over [N, C, HxW]; mean/rstd are [N, group]."""
    dtype = _group_stat_dtype(input, weight, bias)
    mean = torch.empty((N, group), dtype=dtype, device=input.device)
    rstd = torch.empty((N, group), dtype=dtype, device=input.device)
    y = torch.empty_like(input)
    group_norm_forward(input, weight, bias, N, C, HxW, group, eps, y, mean, rstd)
    return y, mean, rstd


def native_group_norm_backward(grad_out, input, mean, rstd, weight, N, C, HxW, group, output_mask):
    """(grad_input, grad_weight, grad_bias), each None where output_mask says so."""
    x = input
    dy = grad_out
    row, inner = merged_stride(dy, 0, 2), merged_stride(dy, 2, dy.dim())
    if row is None or inner is None:  # rows (n, c) need one stride, as do their spatial dims
        dy = dy.contiguous()
        row, inner = HxW, 1
    sizes = (N * C, 1, HxW)
    dy_strides = (row, 0, inner)
    x_strides = (HxW, 0, 1)
    partials, splits = partial_sums(dy, x, mean, C // group, sizes, dy_strides, x_strides)
    acc = partials.dtype
    coefs = torch.empty((4, N * C), dtype=acc, device=x.device)
    grad_input = grad_weight = grad_bias = None
    if output_mask[0]:
        GROUP_GRAD_COEFFICIENTS((N * group,), partials, coefs, mean, rstd, x if weight is None else weight, C,
                                C // group, splits, N * C, float(C // group * HxW), HAS_WEIGHT=weight is not None,
                                BLOCK_G=finish_block(C // group, splits), BLOCK_S=block(splits, 64),
                                ACC=TL_DTYPE[acc])
        grad_input = torch.empty_like(x)
        affine(grad_input, dy, x, coefs, sizes, x_strides, dy_strides, x_strides, has_bias=True)
    if output_mask[1] or output_mask[2]:
        param_dtype = x.dtype if weight is None else weight.dtype
        if output_mask[1]:
            grad_weight = torch.empty((C,), dtype=param_dtype, device=x.device)
        if output_mask[2]:
            grad_bias = torch.empty((C,), dtype=param_dtype, device=x.device)
        block_c = finish_block(C, splits)
        PARAM_GRADS((cdiv(C, block_c),), partials, coefs, mean, rstd, x, x if grad_weight is None
                    else grad_weight, x if grad_bias is None else grad_bias, C, N, splits, N * C, N, group,
                    C // group, 1.0, 0.0, RSTD_FROM_VAR=False, HAS_WEIGHT=False, BATCH_NORM=False, TRAIN=False,
                    WANT_WEIGHT=output_mask[1], WANT_BIAS=output_mask[2], BLOCK_C=block_c,
                    BLOCK_S=block(splits, 64), ACC=TL_DTYPE[acc])
    return grad_input, grad_weight, grad_bias


def _param_ok(p, C, x):
    return p is None or (p.dim() == 1 and p.numel() == C and p.device == x.device and p.dtype in _FLOATS)


def _group_norm_unsupported(input, weight, bias, N, C, HxW, group, eps):
    if input.dtype not in _FLOATS:
        return f"dtype {input.dtype} is not supported"
    if input.dim() < 2 or input.numel() == 0 or not input.is_contiguous():
        return "input is not a contiguous non-empty [N, C, *] tensor"
    if (input.shape[0], input.shape[1], input.numel()) != (N, C, N * C * HxW):
        return "N, C, HxW do not match the input"
    if not isinstance(group, int) or group <= 0 or C % group:
        return "C is not divisible by group"
    if not (_param_ok(weight, C, input) and _param_ok(bias, C, input)):
        return "weight or bias of another shape, dtype or device"
    dtype = _group_stat_dtype(input, weight, bias)
    if any(p is not None and p.dtype != dtype for p in (weight, bias)):
        return "weight and bias dtypes differ from the input's"
    if dtype != input.dtype and not input.is_cpu:
        return "half input with fp32 parameters (taken by the CPU kernel only: native raises here)"
    return None


def _group_norm_backward_unsupported(grad_out, input, mean, rstd, weight, N, C, HxW, group, output_mask):
    reason = _group_norm_unsupported(input, weight, None, N, C, HxW, group, 0.0)
    if reason is not None:
        return reason
    if grad_out.shape != input.shape or grad_out.dtype != input.dtype or grad_out.device != input.device:
        return "grad_out differs from input"
    for stat in (mean, rstd):
        if stat.numel() != N * group or not stat.is_contiguous() or stat.dtype not in _FLOATS:
            return "mean or rstd of another shape or layout"
    return None


ATEN = (
    Row("native_group_norm", native_group_norm, _group_norm_unsupported),
    Row("native_group_norm_backward", native_group_norm_backward, _group_norm_backward_unsupported),
)
