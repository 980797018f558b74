"""``flash_attn_varlen_func``: attention over a batch of sequences of different lengths
packed along one dim (flash-attn's signature and conventions), on the flash kernels
(``flash.py``), differentiable.

``q`` is [total_q, Hq, D], ``k`` / ``v`` [total_k, Hk, D]; sequence ``b`` holds rows
``cu_seqlens_q[b]:cu_seqlens_q[b + 1]`` of ``q`` (and likewise of ``k``, ``v``). Causal
masking is aligned to the bottom right as in flash-attn: query i of a sequence sees key j
when j <= i + len_k - len_q; a query that sees no key gets 0. What the kernels do not
take (dropout, fp64, ...) runs a loop of PyTorch's attention over the sequences.
"""

import math

import torch

from .flash import attention_backward, attention_forward, attention_reason

__all__ = ["flash_attn_varlen_func"]


def _varlen_reason(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, dropout_p, softmax_scale):
    reason = attention_reason(q, k, v, None, dropout_p, softmax_scale, varlen=True)
    if reason is not None:
        return reason
    for cu in (cu_seqlens_q, cu_seqlens_k):
        if not isinstance(cu, torch.Tensor) or cu.dtype not in (torch.int32, torch.int64) or cu.dim() != 1 \
                or cu.device != q.device:
            return "cumulative lengths are not a 1-d int32/int64 tensor on the operands' device"
    if cu_seqlens_q.numel() != cu_seqlens_k.numel() or cu_seqlens_q.numel() < 2:
        return "cumulative lengths of different batches"
    if (cu_seqlens_q.numel() - 1) * q.shape[1] > 65535:
        return "more than 65535 batch * heads"
    if not all(isinstance(n, int) and n > 0 for n in (max_seqlen_q, max_seqlen_k)):
        return "maximum lengths are not positive integers"
    return None


class _VarlenAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, scale, causal):
        out = torch.empty((*q.shape[:2], v.shape[-1]), dtype=q.dtype, device=q.device)
        lse = torch.empty((q.shape[1], q.shape[0]), dtype=torch.float32, device=q.device)
        cu_seqlens = (cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k)
        attention_forward(q, k, v, out, lse, None, 2 if causal else 0, scale, cu_seqlens)
        ctx.save_for_backward(q, k, v, out, lse, cu_seqlens_q, cu_seqlens_k)
        ctx.params = (max_seqlen_q, max_seqlen_k, scale, causal)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, out, lse, cu_seqlens_q, cu_seqlens_k = ctx.saved_tensors
        max_seqlen_q, max_seqlen_k, scale, causal = ctx.params
        dq, dk, dv = attention_backward(grad_out, q, k, v, out, lse, None, 2 if causal else 0, scale,
                                        (cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k))
        return dq, dk, dv, None, None, None, None, None, None


def _varlen_native(q, k, v, cu_seqlens_q, cu_seqlens_k, dropout_p, softmax_scale, causal):
    """The same attention as a loop of PyTorch's, one sequence at a time."""
    starts_q, starts_k = cu_seqlens_q.tolist(), cu_seqlens_k.tolist()
    group = q.shape[1] // k.shape[1]
    outs = []
    for b in range(len(starts_q) - 1):
        qb = q[starts_q[b]:starts_q[b + 1]].transpose(0, 1)
        kb = k[starts_k[b]:starts_k[b + 1]].transpose(0, 1).repeat_interleave(group, 0)
        vb = v[starts_k[b]:starts_k[b + 1]].transpose(0, 1).repeat_interleave(group, 0)
        mask = None
        if causal:
            len_q, len_k = qb.shape[1], kb.shape[1]
            mask = torch.ones(len_q, len_k, dtype=torch.bool, device=q.device).tril(len_k - len_q)
        out = torch.nn.functional.scaled_dot_product_attention(qb, kb, vb, mask, dropout_p, scale=softmax_scale)
        if mask is not None:  # flash-attn: a query that sees no key gets 0
            out = out.masked_fill(~mask.any(-1)[:, None], 0)
        outs.append(out.transpose(0, 1))
    return torch.cat(outs) if outs else q.new_empty((0, q.shape[1], v.shape[-1]))


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, dropout_p=0.0,
                           softmax_scale=None, causal=False):
    """flash-attn's ``flash_attn_varlen_func`` (its first ten arguments): the attention
    output [total_q, Hq, Dv] of packed variable-length sequences."""
    if _varlen_reason(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, dropout_p,
                      softmax_scale) is not None:
        return _varlen_native(q, k, v, cu_seqlens_q, cu_seqlens_k, dropout_p, softmax_scale, causal)
    scale = 1.0 / math.sqrt(q.shape[-1]) if softmax_scale is None else softmax_scale
    return _VarlenAttention.apply(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, scale,
                                  bool(causal))
