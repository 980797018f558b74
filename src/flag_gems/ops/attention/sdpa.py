"""Scaled dot-product attention on the flash kernels (``flash.py``): the rows of the SDPA
backend operators PyTorch's ``F.scaled_dot_product_attention`` routes to, and the explicit
``scaled_dot_product_attention`` (differentiable through the Triton backward).

On a GPU, PyTorch picks a backend per call (``_fused_sdp_choice``) and calls its
operator: flash (halves, no mask), efficient (a mask, fp32), cudnn; their backward
operators come from autograd. On the CPU it calls ``_scaled_dot_product_flash_attention_for_cpu``
(+ backward) unless dropout sends it to the math path. Each row's output tuple is the
native one (see PyTorch's meta registrations): the log-sum-exp's shape per backend,
placeholder philox seed and offset, None for the cumulative sequence lengths and the
debug mask where native leaves them undefined. Dropout, a debug mask, nested tensors,
fp64, head dims over 256, bias gradients, empty operands: native.
"""

import math

import torch

from ...dispatch import Row
from .flash import attention_backward, attention_forward, attention_reason

__all__ = ["scaled_dot_product_attention"]


def _out_like(query, dv):
    """The output [B, H, Lq, DV] laid out in the query's dim order (as native allocates it)."""
    if dv == query.shape[-1]:
        return torch.empty_like(query)
    order = sorted(range(4), key=lambda i: -query.stride(i))
    shape = (*query.shape[:3], dv)
    return torch.empty_permuted(shape, order, dtype=query.dtype, device=query.device)


def _bhld(shape, like, dtype=None):
    """A [B, H, L, D] tensor stored as [B, L, H, D] (PyTorch's CUDA kernels' layout)."""
    return torch.empty_permuted(shape, (0, 2, 1, 3), dtype=dtype or like.dtype, device=like.device)


def _seed_offset(query, flash):
    """Placeholders for the philox seed and offset (no dropout: never read)."""
    if flash and not torch.version.hip:
        return (torch.empty((2,), dtype=torch.uint64, device=query.device),
                torch.empty((), dtype=torch.uint64, device=query.device))
    return (torch.empty((), dtype=torch.long, device=query.device),
            torch.empty((), dtype=torch.long, device=query.device))


def _lse_reason(lse, query, rows=None):
    """Why ``lse`` is not a forward's fp32 [B, H, >= Lq] log-sum-exp, or None."""
    B, H, Lq = query.shape[:3]
    if not isinstance(lse, torch.Tensor) or lse.dtype != torch.float32 or lse.dim() != 3:
        return "log-sum-exp is not fp32 [B, H, Lq]"
    if lse.shape[0] != B or lse.shape[1] != H or lse.shape[2] < Lq or (rows is not None and lse.shape[2] != rows):
        return "log-sum-exp of another shape"
    return None


def _backward_reason(grad_out, query, key, value, out, lse, dropout_p, scale, mask=None):
    reason = attention_reason(query, key, value, mask, dropout_p, scale)
    if reason is not None:
        return reason
    expected = (*query.shape[:3], value.shape[-1])
    for t in (grad_out, out):
        if not isinstance(t, torch.Tensor) or t.shape != expected or t.dtype != query.dtype or t.device != query.device:
            return "grad_out or out does not match the attention's output"
    if lse is None or lse.device != query.device:
        return "no log-sum-exp on the operands' device"
    return None


# ------------------------------------------------------------------ flash (CUDA)


def _flash_unsupported(query, key, value, dropout_p=0.0, is_causal=False, return_debug_mask=False, *, scale=None):
    if return_debug_mask:
        return "debug attention mask"
    return attention_reason(query, key, value, None, dropout_p, scale)


def _flash(query, key, value, dropout_p=0.0, is_causal=False, return_debug_mask=False, *, scale=None):
    B, H, Lq, _ = query.shape
    out = _out_like(query, value.shape[-1])
    lse = torch.empty((B, H, Lq), dtype=torch.float32, device=query.device)
    attention_forward(query, key, value, out, lse, causal=int(bool(is_causal)), scale=scale)
    seed, offset = _seed_offset(query, flash=True)
    debug = torch.empty(0, dtype=query.dtype, device=query.device)
    return out, lse, None, None, Lq, key.shape[2], seed, offset, debug


def _flash_backward_unsupported(grad_out, query, key, value, out, logsumexp, cum_seq_q, cum_seq_k, max_q, max_k,
                                dropout_p, is_causal, philox_seed, philox_offset, *, scale=None):
    if any(t is not None and t.numel() for t in (cum_seq_q, cum_seq_k)):
        return "nested tensors (cumulative sequence lengths)"
    return _backward_reason(grad_out, query, key, value, out, logsumexp, dropout_p, scale) or _lse_reason(
        logsumexp, query, query.shape[2])


def _flash_backward(grad_out, query, key, value, out, logsumexp, cum_seq_q, cum_seq_k, max_q, max_k, dropout_p,
                    is_causal, philox_seed, philox_offset, *, scale=None):
    return attention_backward(grad_out, query, key, value, out, logsumexp, causal=int(bool(is_causal)), scale=scale)


# ------------------------------------------------------------------ efficient (CUDA)


def _efficient_unsupported(query, key, value, attn_bias, compute_log_sumexp, dropout_p=0.0, is_causal=False, *,
                           scale=None):
    if isinstance(key, torch.Tensor) and isinstance(query, torch.Tensor) and key.dim() == 4 and query.dim() == 4 \
            and key.shape[1] != query.shape[1]:
        return "grouped heads (native efficient attention takes none)"
    return attention_reason(query, key, value, attn_bias, dropout_p, scale)


def _efficient(query, key, value, attn_bias, compute_log_sumexp, dropout_p=0.0, is_causal=False, *, scale=None):
    B, H, Lq, _ = query.shape
    out = _bhld((B, H, Lq, value.shape[-1]), query)
    padded = math.ceil(Lq / 32) * 32
    lse = torch.empty((B, H, padded), dtype=torch.float32, device=query.device)
    attention_forward(query, key, value, out, lse[:, :, :Lq], attn_bias, int(bool(is_causal)), scale)
    seed, offset = _seed_offset(query, flash=False)
    return out, lse if compute_log_sumexp else lse[:, :, :0], seed, offset


def _efficient_backward_unsupported(grad_out_, query, key, value, attn_bias, out, logsumexp, philox_seed,
                                    philox_offset, dropout_p, grad_input_mask, is_causal=False, *, scale=None):
    if attn_bias is not None and len(grad_input_mask) > 3 and grad_input_mask[3]:
        return "the bias's gradient"
    if isinstance(key, torch.Tensor) and isinstance(query, torch.Tensor) and key.dim() == 4 and query.dim() == 4 \
            and key.shape[1] != query.shape[1]:
        return "grouped heads (native efficient attention takes none)"
    return _backward_reason(grad_out_, query, key, value, out, logsumexp, dropout_p, scale, attn_bias) or _lse_reason(
        logsumexp, query)


def _efficient_backward(grad_out_, query, key, value, attn_bias, out, logsumexp, philox_seed, philox_offset,
                        dropout_p, grad_input_mask, is_causal=False, *, scale=None):
    grads = (_bhld(query.shape, query), _bhld(key.shape, key), _bhld(value.shape, value))
    dq, dk, dv = attention_backward(grad_out_, query, key, value, out, logsumexp[:, :, :query.shape[2]], attn_bias,
                                    int(bool(is_causal)), scale, grads=grads)
    return dq, dk, dv, None


# ------------------------------------------------------------------ cudnn (CUDA)


def _cudnn_unsupported(query, key, value, attn_bias, compute_log_sumexp, dropout_p=0.0, is_causal=False,
                       return_debug_mask=False, *, scale=None):
    if return_debug_mask:
        return "debug attention mask"
    return attention_reason(query, key, value, attn_bias, dropout_p, scale)


def _cudnn(query, key, value, attn_bias, compute_log_sumexp, dropout_p=0.0, is_causal=False, return_debug_mask=False,
           *, scale=None):
    B, H, Lq, _ = query.shape
    out = _out_like(query, value.shape[-1])
    lse = torch.empty((B, H, Lq, 1), dtype=torch.float32, device=query.device)
    attention_forward(query, key, value, out, lse[..., 0], attn_bias, int(bool(is_causal)), scale)
    seed, offset = _seed_offset(query, flash=False)
    return out, lse, None, None, Lq, key.shape[2], seed, offset, None


def _cudnn_backward_unsupported(grad_out, query, key, value, out, logsumexp, philox_seed, philox_offset, attn_bias,
                                cum_seq_q, cum_seq_k, max_q, max_k, dropout_p, is_causal, *, scale=None):
    if any(t is not None and t.numel() for t in (cum_seq_q, cum_seq_k)):
        return "nested tensors (cumulative sequence lengths)"
    reason = _backward_reason(grad_out, query, key, value, out, logsumexp, dropout_p, scale, attn_bias)
    if reason is None and (logsumexp.dim() != 4 or logsumexp.shape[-1] != 1):
        return "log-sum-exp is not [B, H, Lq, 1]"
    return reason or _lse_reason(logsumexp[..., 0], query, query.shape[2])


def _cudnn_backward(grad_out, query, key, value, out, logsumexp, philox_seed, philox_offset, attn_bias, cum_seq_q,
                    cum_seq_k, max_q, max_k, dropout_p, is_causal, *, scale=None):
    return attention_backward(grad_out, query, key, value, out, logsumexp[..., 0], attn_bias, int(bool(is_causal)),
                              scale)


# ------------------------------------------------------------------ the CPU's flash attention


def _cpu_unsupported(query, key, value, dropout_p=0.0, is_causal=False, *, attn_mask=None, scale=None):
    if attn_mask is not None and isinstance(query, torch.Tensor) and attn_mask.dtype != query.dtype:
        return "mask of another dtype than the query (native raises)"
    return attention_reason(query, key, value, attn_mask, dropout_p, scale)


def _cpu(query, key, value, dropout_p=0.0, is_causal=False, *, attn_mask=None, scale=None):
    B, H, Lq, _ = query.shape
    out = _out_like(query, value.shape[-1])
    lse = torch.empty((B, Lq, H), dtype=torch.float32, device=query.device).transpose(1, 2)
    attention_forward(query, key, value, out, lse, attn_mask, int(bool(is_causal)), scale)
    return out, lse


def _cpu_backward_unsupported(grad_out, query, key, value, out, logsumexp, dropout_p, is_causal, *, attn_mask=None,
                              scale=None):
    if attn_mask is not None and isinstance(query, torch.Tensor) and attn_mask.dtype != query.dtype:
        return "mask of another dtype than the query (native raises)"
    return _backward_reason(grad_out, query, key, value, out, logsumexp, dropout_p, scale, attn_mask) or _lse_reason(
        logsumexp, query, query.shape[2])


def _cpu_backward(grad_out, query, key, value, out, logsumexp, dropout_p, is_causal, *, attn_mask=None, scale=None):
    grads = (_bhld(query.shape, query), _bhld(key.shape, key), _bhld(value.shape, value))
    return attention_backward(grad_out, query, key, value, out, logsumexp, attn_mask, int(bool(is_causal)), scale,
                              grads=grads)


# ------------------------------------------------------------------ the explicit call


class _Attention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, query, key, value, mask, causal, scale):
        B, H, Lq, _ = query.shape
        out = _out_like(query, value.shape[-1])
        lse = torch.empty((B, H, Lq), dtype=torch.float32, device=query.device)
        attention_forward(query, key, value, out, lse, mask, causal, scale)
        ctx.save_for_backward(query, key, value, out, lse, mask)
        ctx.causal, ctx.scale = causal, scale
        return out

    @staticmethod
    def backward(ctx, grad_out):
        query, key, value, out, lse, mask = ctx.saved_tensors
        dq, dk, dv = attention_backward(grad_out, query, key, value, out, lse, mask, ctx.causal, ctx.scale)
        return dq, dk, dv, None, None, None


def sdpa_reason(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    """Why ``scaled_dot_product_attention`` runs PyTorch's, or None."""
    if not all(isinstance(t, torch.Tensor) for t in (query, key, value)):
        return "an operand is not a tensor"
    if query.dim() != 4:
        return "operands are not [B, H, L, D]"
    if key.dim() == 4 and key.shape[1] != query.shape[1] and not enable_gqa:
        return "grouped heads without enable_gqa"
    if attn_mask is not None and is_causal:
        return "a mask with is_causal (PyTorch raises)"
    if isinstance(attn_mask, torch.Tensor) and attn_mask.requires_grad and torch.is_grad_enabled():
        return "a mask that needs a gradient"
    return attention_reason(query, key, value, attn_mask, dropout_p, scale)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    """``F.scaled_dot_product_attention`` on the flash kernels for [B, H, L, D] operands, differentiable;
    what the kernels do not take (dropout, other ranks, fp64, ...) runs PyTorch's."""
    if sdpa_reason(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa) is not None:
        extra = {"enable_gqa": enable_gqa} if enable_gqa else {}
        return torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask, dropout_p, is_causal,
                                                                scale=scale, **extra)
    causal = int(bool(is_causal))
    if torch.is_grad_enabled() and any(t.requires_grad for t in (query, key, value)):
        return _Attention.apply(query, key, value, attn_mask, causal, scale)
    B, H, Lq, _ = query.shape
    out = _out_like(query, value.shape[-1])
    lse = torch.empty((B, H, Lq), dtype=torch.float32, device=query.device)
    return attention_forward(query, key, value, out, lse, attn_mask, causal, scale)[0]


ATEN = (
    Row("_scaled_dot_product_flash_attention", _flash, _flash_unsupported),
    Row("_scaled_dot_product_flash_attention_backward", _flash_backward, _flash_backward_unsupported),
    Row("_scaled_dot_product_efficient_attention", _efficient, _efficient_unsupported),
    Row("_scaled_dot_product_efficient_attention_backward", _efficient_backward, _efficient_backward_unsupported),
    Row("_scaled_dot_product_cudnn_attention", _cudnn, _cudnn_unsupported),
    Row("_scaled_dot_product_cudnn_attention_backward", _cudnn_backward, _cudnn_backward_unsupported),
    Row("_scaled_dot_product_flash_attention_for_cpu", _cpu, _cpu_unsupported),
    Row("_scaled_dot_product_flash_attention_for_cpu_backward", _cpu_backward, _cpu_backward_unsupported),
)
