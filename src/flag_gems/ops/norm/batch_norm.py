"""Batch norm, forward (training and eval, with its out= forms) and backward: one row per
channel, over the kernels of ``moments``."""

import torch

from ... import runtime
from ...codegen.pointwise import TL_DTYPE
from ...dispatch import Row
from ...utils.dtypes import float_accumulator
from ...utils.layout import cdiv, merged_stride
from .moments import NORM_COEFFICIENTS, PARAM_GRADS, affine, block, finish_block, partial_moments, partial_sums

__all__ = [
    "native_batch_norm", "native_batch_norm_out", "native_batch_norm_legit", "native_batch_norm_legit_no_stats",
    "native_batch_norm_backward",
]

_FLOATS = runtime.supported_float_dtypes()


def _spatial(t):
    """(t, stride of its dims after the first two merged), copying ``t`` when they do not merge."""
    stride = merged_stride(t, 2, t.dim())
    if stride is None:
        t = t.contiguous()
        stride = 1
    return t, stride


def _channel_view(tensors):
    """Tensors shaped [N, C, *] seen as [R=C, A=N, B=HxW]: (tensors, sizes, strides per tensor).
    N merges into B when every tensor allows it (channels_last, 2-d inputs)."""
    N, C = tensors[0].shape[:2]
    L = tensors[0].numel() // max(N * C, 1)
    tensors, spatial = zip(*(_spatial(t) for t in tensors))
    if all(N == 1 or L == 1 or t.stride(0) == L * s for t, s in zip(tensors, spatial)):
        strides = [(t.stride(1), 0, s if L > 1 else t.stride(0)) for t, s in zip(tensors, spatial)]
        return tensors, (C, 1, N * L), strides
    return tensors, (C, N, L), [(t.stride(1), t.stride(0), s) for t, s in zip(tensors, spatial)]


def _like(x):
    """An empty tensor like ``x``, channels_last when ``x`` is laid out so (as torch suggests)."""
    if x.dim() in (4, 5) and not x.is_contiguous():
        order = sorted(range(x.dim()), key=lambda d: -x.stride(d))
        if order[0] == 0 and order[-1] == 1:
            fmt = torch.channels_last if x.dim() == 4 else torch.channels_last_3d
            return torch.empty_like(x, memory_format=fmt)
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _stat_dtype(x):
    """save_mean / save_invstd dtype, as each device's native kernel makes them: the
    accumulation type (fp32 for halves) on CUDA, the input's own dtype on the CPU."""
    return x.dtype if x.device.type == "cpu" else float_accumulator(x.dtype)


def _empty_eval_stats(x, training):
    """Whether the native kernel returns empty saved statistics: eval mode on the CPU
    (CUDA's returns the running mean and 1/sqrt(running_var + eps))."""
    return not training and x.device.type == "cpu"


def batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps,
               out=None, save_mean=None, save_invstd=None):
    """(out, save_mean, save_invstd); eval mode saves running_mean and 1/sqrt(running_var + eps),
    or nothing where the native kernel saves nothing."""
    C = input.shape[1]
    if out is None:
        out = _like(input)
    saves_nothing = save_mean is None and _empty_eval_stats(input, training)
    if save_mean is None:
        save_mean = torch.empty((C,), dtype=_stat_dtype(input), device=input.device)
        save_invstd = torch.empty((C,), dtype=_stat_dtype(input), device=input.device)
    (x, y), sizes, (x_strides, y_strides) = _channel_view((input, out))
    if training:
        partials, splits = partial_moments(x, sizes, x_strides)
    else:
        partials, splits = x, 1
    acc = float_accumulator(input.dtype)
    coefs = torch.empty((4, C), dtype=acc, device=input.device)
    block_q = finish_block(C, splits)
    NORM_COEFFICIENTS((cdiv(C, block_q),), partials, x, coefs, save_mean, save_invstd,
                      x if weight is None else weight, x if bias is None else bias,
                      x if running_mean is None else running_mean, x if running_var is None else running_var,
                      C, C, 1, splits, C, x_strides[0], float(momentum), eps, HAS_WEIGHT=weight is not None,
                      HAS_BIAS=bias is not None, FROM_RUNNING=not training,
                      UPDATE_RUNNING=training and running_mean is not None, BLOCK_Q=block_q,
                      BLOCK_S=block(splits, 64), ACC=TL_DTYPE[acc])
    affine(y, None, x, coefs, sizes, y_strides, None, x_strides, has_bias=True)
    if y is not out:
        out.copy_(y)
    if saves_nothing:
        return out, save_mean.new_empty(0), save_invstd.new_empty(0)
    return out, save_mean, save_invstd


def native_batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps):
    return batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps)


def native_batch_norm_out(input, weight, bias, running_mean, running_var, training, momentum, eps, *,
                          out, save_mean, save_invstd):
    return batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps,
                      out, save_mean, save_invstd)


def native_batch_norm_legit(input, weight, bias, running_mean, running_var, training, momentum, eps, *,
                            out=None, save_mean=None, save_invstd=None):
    return batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps,
                      out, save_mean, save_invstd)


def native_batch_norm_legit_no_stats(input, weight, bias, training, momentum, eps, *,
                                     out=None, save_mean=None, save_invstd=None):
    return batch_norm(input, weight, bias, None, None, training, momentum, eps, out, save_mean, save_invstd)


def native_batch_norm_backward(grad_out, input, weight, running_mean, running_var, save_mean, save_invstd,
                               train, eps, output_mask):
    """Training: the batch statistics depend on the input; eval: they are the running constants."""
    C = input.shape[1]
    grad_input = None
    if output_mask[0]:
        grad_input = _like(input)
        (x, dy, dx), sizes, (x_strides, dy_strides, dx_strides) = _channel_view((input, grad_out, grad_input))
    else:
        (x, dy), sizes, (x_strides, dy_strides) = _channel_view((input, grad_out))
    center, rstd = (save_mean, save_invstd) if train else (running_mean, running_var)
    acc = float_accumulator(input.dtype)
    if train or output_mask[1] or output_mask[2]:
        partials, splits = partial_sums(dy, x, center, 1, sizes, dy_strides, x_strides)
        rows = 1
    else:  # eval, input gradient only: no sums needed
        partials, splits, rows = x, 1, 0
    coefs = torch.empty((4, C), dtype=acc, device=input.device)
    param_dtype = x.dtype if weight is None else weight.dtype
    grad_weight = torch.empty((C,), dtype=param_dtype, device=x.device) if output_mask[1] else None
    grad_bias = torch.empty((C,), dtype=param_dtype, device=x.device) if output_mask[2] else None
    block_c = finish_block(C, splits)
    PARAM_GRADS((cdiv(C, block_c),), partials, coefs, center, rstd, x if weight is None else weight,
                x if grad_weight is None else grad_weight, x if grad_bias is None else grad_bias, C, rows,
                splits, C, 1, 1, 1, float(sizes[1] * sizes[2]), eps, RSTD_FROM_VAR=not train,
                HAS_WEIGHT=weight is not None, BATCH_NORM=True, TRAIN=train, WANT_WEIGHT=output_mask[1],
                WANT_BIAS=output_mask[2], BLOCK_C=block_c, BLOCK_S=block(splits, 64), ACC=TL_DTYPE[acc])
    if output_mask[0]:
        affine(dx, dy, x, coefs, sizes, dx_strides, dy_strides, x_strides, has_bias=train)
        if dx is not grad_input:
            grad_input.copy_(dx)
    return grad_input, grad_weight, grad_bias


def stats_ok(t, C, x):
    """Whether ``t`` (a weight, bias or statistic) is absent or one contiguous value per channel."""
    return t is None or (t.dim() == 1 and t.numel() == C and t.device == x.device and t.dtype in _FLOATS
                         and t.is_contiguous())


def _batch_norm_unsupported(input, weight, bias, running_mean, running_var, training, momentum, eps,
                            out=None, save_mean=None, save_invstd=None):
    if input.dtype not in _FLOATS:
        return f"dtype {input.dtype} is not supported"
    if input.dim() < 2 or input.numel() == 0:
        return "input is not a non-empty [N, C, *] tensor"
    C = input.shape[1]
    if not all(stats_ok(t, C, input) for t in (weight, bias, running_mean, running_var)):
        return "weight, bias or running stats of another shape, dtype, layout or device"
    if (running_mean is None) != (running_var is None) or (not training and running_mean is None):
        return "running stats missing"
    if out is not None:
        if out.shape != input.shape or out.dtype != input.dtype or out.device != input.device:
            return "out differs from the result"
        if merged_stride(out, 2, out.dim()) is None:
            return "out's spatial dims do not merge"
        if _empty_eval_stats(input, training):
            return "eval mode on the CPU resizes save_mean / save_invstd to nothing"
        for saved in (save_mean, save_invstd):
            if (saved.shape != (C,) or saved.dtype != _stat_dtype(input) or saved.device != input.device
                    or not saved.is_contiguous()):
                return "save_mean / save_invstd differ from the result"
    return None


def _legit_no_stats_unsupported(input, weight, bias, training, momentum, eps, *, out=None, save_mean=None,
                                save_invstd=None):
    return _batch_norm_unsupported(input, weight, bias, None, None, training, momentum, eps, out, save_mean,
                                   save_invstd)


def _batch_norm_backward_unsupported(grad_out, input, weight, running_mean, running_var, save_mean, save_invstd,
                                     train, eps, output_mask):
    reason = _batch_norm_unsupported(input, weight, None, running_mean, running_var, True, 0.0, eps)
    if reason is not None:
        return reason
    if grad_out.shape != input.shape or grad_out.dtype != input.dtype or grad_out.device != input.device:
        return "grad_out differs from input"
    needed = (save_mean, save_invstd) if train else (running_mean, running_var)
    if any(t is None for t in needed) or not all(stats_ok(t, input.shape[1], input) for t in needed):
        return "statistics missing or of another shape"
    if weight is None and (output_mask[1] or output_mask[2]):
        return "parameter gradients without a weight"
    return None


ATEN = (
    Row("native_batch_norm", native_batch_norm, _batch_norm_unsupported),
    Row("native_batch_norm.out", native_batch_norm_out, _batch_norm_unsupported),
    Row("_native_batch_norm_legit", native_batch_norm_legit, _batch_norm_unsupported),
    Row("_native_batch_norm_legit.out", native_batch_norm_legit, _batch_norm_unsupported),
    Row("_native_batch_norm_legit.no_stats", native_batch_norm_legit_no_stats, _legit_no_stats_unsupported),
    Row("_native_batch_norm_legit.no_stats_out", native_batch_norm_legit_no_stats, _legit_no_stats_unsupported),
    Row("native_batch_norm_backward", native_batch_norm_backward, _batch_norm_backward_unsupported),
)
