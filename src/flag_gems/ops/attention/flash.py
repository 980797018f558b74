"""The host side of the attention kernels (``attention_kernels``): which calls they take,
their tiles, and ``attention_forward`` / ``attention_backward``, which every entry point
of the family (the SDPA rows, the explicit calls, variable-length batches) runs on.

Tiles: ``runtime.config("attention", default_config)(kind, head_dim, dtype)`` gives
(BLOCK_M, BLOCK_N, num_warps, num_stages) per kernel kind ("forward", "split", "dkdv",
"dq"): a vendor can replace them. The forward's are tunable (``forward_config``, the
kernel ``attention_forward`` of the tuning cache): tuning times its space per bucket of
lengths, head dim, dtype, causality, mask kind and grouping. The split-KV forward runs where queries are few
(at most ``DECODE_QUERIES``) and keys many (at least four key blocks): the rows of a
key head's whole query group share one program, and the keys are split until about two
programs per multiprocessor run.
"""

import math

import torch

from ... import runtime, tuning
from ...utils.dtypes import itemsize
from ...utils.layout import cdiv, next_power_of_2
from . import attention_kernels
from .attention_kernels import COMBINE, DELTA, DKDV, DQ, FORWARD, LOG2E, SPLIT

DECODE_QUERIES = 16
MAX_HEAD_DIM = 256
_GRID_Y = 65535  # CUDA's limit on the grid's second dimension (batch * heads)


def default_config(kind, head_dim, dtype):
    """(BLOCK_M, BLOCK_N, num_warps, num_stages) of kernel ``kind`` for a padded head dim."""
    if runtime.selected_vendor().interpreted:
        return 16, 16, 4, 1  # every program runs in Python: small tiles, several blocks per test
    wide = dtype == torch.float32
    if kind == "forward":
        if head_dim <= 64:
            return (64, 64, 4, 2) if wide else (128, 64, 4, 3)
        if head_dim <= 128:
            return (64, 32, 4, 2) if wide else (128, 64, 8, 3)
        return (32, 32, 4, 1) if wide else (64, 64, 8, 2)
    if kind == "split":  # BLOCK_M is chosen from the rows; this one is ignored
        return (16, 32, 4, 2) if wide or head_dim > 128 else (16, 64, 4, 3)
    if kind == "dkdv":
        if head_dim <= 128:
            return (16, 32, 4, 2) if wide else (32, 64, 4, 3)
        return (16, 32, 4, 1) if wide else (16, 32, 4, 2)
    # dq
    if head_dim <= 128:
        return (32, 32, 4, 2) if wide else (64, 32, 4, 3)
    return (16, 32, 4, 1) if wide else (32, 32, 4, 2)


def _config(kind, block_d, dtype):
    return runtime.config("attention", default_config)(kind, block_d, dtype)


def _forward_fits(key, config):
    """A tile no taller than the queries, no wider than the keys, whose Q, K and V blocks fit
    shared memory at its stage count."""
    lq, lk, block_d, dtype = key[:4]
    block_m, block_n, _, stages = config
    if block_m > max(lq, 16) or block_n > max(lk, 16):
        return False
    shared = tuning.max_shared_memory()
    return shared is None or (block_m + 2 * block_n * stages) * block_d * itemsize(dtype) <= shared


def _forward_space():
    likely = [(128, 64, 8, 3), (128, 64, 4, 3), (64, 64, 4, 3), (128, 128, 8, 2), (64, 32, 4, 2), (128, 32, 4, 3)]
    grid = [(m, n, w, st) for m in (64, 128) for n in (32, 64, 128) for w in (4, 8) for st in (2, 3, 4)]
    return likely + [c for c in grid if c not in likely]


@tuning.tunable("attention_forward", space=_forward_space, prune=_forward_fits,
                key=lambda lq, lk, block_d, dtype, causal, mask, grouped: (
                    tuning.next_power_of_2(lq), tuning.next_power_of_2(lk), block_d,
                    str(dtype).replace("torch.", ""), causal, mask, grouped),
                sources=[attention_kernels.attention_forward_kernel, attention_kernels._attend,
                         attention_kernels._mask_scores],
                fields=("BLOCK_M", "BLOCK_N", "num_warps", "num_stages"))
def forward_config(lq, lk, block_d, dtype, causal, mask, grouped):
    """(BLOCK_M, BLOCK_N, num_warps, num_stages) of the forward: the vendor's or default
    tiles until tuning (``GEMS_TUNE``, ``flag_gems.pretune``) times the space."""
    return _config("forward", block_d, dtype)


def _head_block(d):
    return max(16, next_power_of_2(d))  # tl.dot takes 16 and more


def _real(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def attention_reason(query, key, value, mask=None, dropout_p=0.0, scale=None, varlen=False):
    """Why the kernels do not take attention over these operands, or None. Dense operands
    are [B, H, L, D]; ``varlen``: packed [total, H, D]."""
    tensors = (query, key, value)
    if not all(isinstance(t, torch.Tensor) for t in tensors):
        return "an operand is not a tensor"
    if any(t.is_nested for t in tensors):
        return "nested tensors"
    dtype = query.dtype
    if dtype not in (torch.float16, torch.bfloat16, torch.float32) or dtype not in runtime.supported_dtypes():
        return f"dtype {dtype} not supported"
    if key.dtype != dtype or value.dtype != dtype:
        return "operands of different dtypes"
    if key.device != query.device or value.device != query.device:
        return "operands on different devices"
    rank = 3 if varlen else 4
    if query.dim() != rank or key.dim() != rank or value.dim() != rank:
        return f"operands are not {rank}-d"
    if not _real(dropout_p) or dropout_p != 0:
        return "dropout"
    if scale is not None and (not _real(scale) or not math.isfinite(scale)):
        return "scale is not a finite real number"
    hq, hk = query.shape[1], key.shape[1]
    if value.shape[1] != hk or hk == 0 or hq % hk:
        return "key/value heads do not divide the query heads"
    d, dv = query.shape[-1], value.shape[-1]
    if key.shape[-1] != d or key.shape[-2 if not varlen else 0] != value.shape[-2 if not varlen else 0]:
        return "key and value do not match the query"
    if not varlen and (key.shape[0] != query.shape[0] or value.shape[0] != query.shape[0]):
        return "batch sizes differ"
    if d > MAX_HEAD_DIM or dv > MAX_HEAD_DIM or d == 0 or dv == 0:
        return f"head dims {d}, {dv} outside 1..{MAX_HEAD_DIM}"
    if any(t.numel() == 0 for t in tensors):
        return "empty operands"
    if not varlen and query.shape[0] * hq > _GRID_Y:
        return "more than 65535 batch * heads"
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.device != query.device:
            return "mask is not a tensor on the operands' device"
        if mask.dtype != torch.bool and mask.dtype != dtype:
            return f"mask of dtype {mask.dtype}"
        try:
            if torch.broadcast_shapes(mask.shape, (*query.shape[:-1], key.shape[-2])) != (
                    *query.shape[:-1], key.shape[-2]):
                return "mask does not broadcast to [B, H, Lq, Lk]"
        except RuntimeError:
            return "mask does not broadcast to [B, H, Lq, Lk]"
    return None


def _strides(t):
    """Four strides of a [B, H, L, D] tensor, or of packed [total, H, D] (batch stride 0)."""
    s = t.stride()
    return s if t.dim() == 4 else (0, s[1], s[0], s[2])


def _sizes(query, key, value, cu_seqlens):
    """(B, H, Hk, Lq, Lk, D, DV); Lq, Lk the longest sequences for packed operands."""
    if cu_seqlens is None:
        B, H, Lq, D = query.shape
        return B, H, key.shape[1], Lq, key.shape[2], D, value.shape[-1]
    cu_q, cu_k, max_q, max_k = cu_seqlens
    return cu_q.numel() - 1, query.shape[1], key.shape[1], max_q, max_k, query.shape[-1], value.shape[-1]


def _mask_view(mask, B, H, Lq, Lk, fallback):
    """(mask or a placeholder pointer, its four strides, MASK kind)."""
    if mask is None:
        return fallback, (0, 0, 0, 0), 0
    return mask, mask.expand(B, H, Lq, Lk).stride(), 2 if mask.dtype == torch.bool else 1


def _modes(dtype, causal, D, DV):
    upcast = dtype == torch.float32 or runtime.selected_vendor().interpreted
    return dict(CAUSAL=causal, UPCAST=upcast, PRECISION="ieee", EXACT_D=_exact(D, DV))


def _exact(D, DV):
    return D == _head_block(D) and DV == _head_block(DV)


def decode_splits(B, H, Hk, Lq, Lk, block_n):
    """How many key splits the split-KV forward runs for these sizes (0: the plain forward runs)."""
    if Lq > DECODE_QUERIES or Lk < 4 * block_n:
        return 0
    row_blocks = cdiv((H // Hk) * Lq, 128)
    wanted = cdiv(2 * runtime.multiprocessor_count(), B * Hk * row_blocks)
    return max(1, min(wanted, cdiv(Lk, 2 * block_n)))


def attention_forward(query, key, value, out, lse, mask=None, causal=0, scale=None, cu_seqlens=None):
    """Attention of ``query`` over ``key``/``value`` into ``out`` and the natural
    log-sum-exp into ``lse`` (any strides: [B, H, Lq] dense, [H, total_q] packed).
    ``causal``: 0, 1 top-left, 2 bottom-right. ``cu_seqlens``: (cu_q, cu_k, max_q, max_k)
    for packed operands."""
    B, H, Hk, Lq, Lk, D, DV = _sizes(query, key, value, cu_seqlens)
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    block_d, block_dv = _head_block(D), _head_block(DV)
    dtype = query.dtype
    mask, mask_strides, mask_kind = _mask_view(mask, B, H, Lq, Lk, query)
    modes = _modes(dtype, causal, D, DV)
    group = H // Hk
    block_m, block_n, warps, stages = _config("split", max(block_d, block_dv), dtype)
    splits = 0 if cu_seqlens is not None else decode_splits(B, H, Hk, Lq, Lk, block_n)
    qk_scale = scale * LOG2E
    if splits:
        rows = group * Lq
        block_m = max(16, min(next_power_of_2(rows), 128))
        split_len = cdiv(cdiv(Lk, splits), block_n) * block_n
        splits = cdiv(Lk, split_len)
        n_rows = B * H * Lq
        part = torch.empty((splits, n_rows, DV), dtype=torch.float32, device=query.device)
        part_lse = torch.empty((splits, n_rows), dtype=torch.float32, device=query.device)
        SPLIT((cdiv(rows, block_m), B * Hk, splits), query, key, value, mask, part, part_lse,
              *_strides(query), *_strides(key), *_strides(value), *mask_strides,
              Hk, group, Lq, Lk, D, DV, qk_scale, split_len, n_rows,
              BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_D=block_d, BLOCK_DV=block_dv, MASK=mask_kind, **modes,
              num_warps=warps, num_stages=stages)
        COMBINE((n_rows,), part, part_lse, out, lse, H, Lq, DV, n_rows, splits, *_strides(out), *lse.stride(),
                BLOCK_S=max(2, next_power_of_2(splits)), BLOCK_DV=block_dv, EXACT_D=_exact(D, DV), num_warps=4)
        return out, lse
    cu_q, cu_k = (cu_seqlens[0], cu_seqlens[1]) if cu_seqlens is not None else (query, query)

    def run(config):
        block_m, block_n, warps, stages = config
        FORWARD((cdiv(Lq, block_m), B * H), query, key, value, mask, out, lse, cu_q, cu_k,
                *_strides(query), *_strides(key), *_strides(value), *mask_strides, *_strides(out),
                *_lse_strides(lse, cu_seqlens), H, group, Lq, Lk, D, DV, qk_scale,
                BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_D=block_d, BLOCK_DV=block_dv, MASK=mask_kind,
                VARLEN=cu_seqlens is not None, **modes, num_warps=warps, num_stages=stages)

    raw = (Lq, Lk, max(block_d, block_dv), dtype, causal, mask_kind, group > 1)
    config = forward_config.cached(raw)
    run(config if config is not None else forward_config.choose(raw, run))  # tuning runs it too: idempotent
    return out, lse


def _lse_strides(lse, cu_seqlens):
    """(batch, head, position) strides of a [B, H, Lq] or packed [H, total_q] log-sum-exp."""
    return lse.stride() if cu_seqlens is None else (0, *lse.stride())


def attention_backward(grad_out, query, key, value, out, lse, mask=None, causal=0, scale=None, cu_seqlens=None,
                       grads=None):
    """(dq, dk, dv) of ``attention_forward``: ``grads`` the tensors to write them into,
    else new ones laid out as the operands."""
    B, H, Hk, Lq, Lk, D, DV = _sizes(query, key, value, cu_seqlens)
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    block_d, block_dv = _head_block(D), _head_block(DV)
    dtype = query.dtype
    mask, mask_strides, mask_kind = _mask_view(mask, B, H, Lq, Lk, query)
    modes = dict(_modes(dtype, causal, D, DV), MASK=mask_kind, VARLEN=cu_seqlens is not None, BLOCK_D=block_d,
                 BLOCK_DV=block_dv)
    dq, dk, dv = grads if grads is not None else (torch.empty_like(query), torch.empty_like(key),
                                                  torch.empty_like(value))
    cu_q, cu_k = (cu_seqlens[0], cu_seqlens[1]) if cu_seqlens is not None else (query, query)
    lse_strides = _lse_strides(lse, cu_seqlens)
    if cu_seqlens is None:
        delta = torch.empty((B, H, Lq), dtype=torch.float32, device=query.device)
    else:
        delta = torch.empty((H, query.shape[0]), dtype=torch.float32, device=query.device)
    delta_strides = _lse_strides(delta, cu_seqlens)
    rows_block = 16 if runtime.selected_vendor().interpreted else 64
    DELTA((cdiv(Lq, rows_block), B * H), out, grad_out, delta, cu_q, *_strides(out), *_strides(grad_out),
          *delta_strides, H, Lq, DV, BLOCK_M=rows_block, BLOCK_DV=block_dv, VARLEN=cu_seqlens is not None,
          EXACT_D=_exact(D, DV), num_warps=4)
    operands = (*_strides(query), *_strides(key), *_strides(value), *mask_strides, *_strides(grad_out),
                *lse_strides, *delta_strides)
    group, qk_scale = H // Hk, scale * LOG2E
    block_m, block_n, warps, stages = _config("dkdv", max(block_d, block_dv), dtype)
    DKDV((cdiv(Lk, block_n), B * Hk), query, key, value, mask, grad_out, lse, delta, dk, dv, cu_q, cu_k, *operands,
         *_strides(dk), *_strides(dv), Hk, group, Lq, Lk, D, DV, qk_scale, scale,
         BLOCK_M=block_m, BLOCK_N=block_n, **modes, num_warps=warps, num_stages=stages)
    block_m, block_n, warps, stages = _config("dq", max(block_d, block_dv), dtype)
    DQ((cdiv(Lq, block_m), B * H), query, key, value, mask, grad_out, lse, delta, dq, cu_q, cu_k, *operands,
       *_strides(dq), H, group, Lq, Lk, D, DV, qk_scale, scale,
       BLOCK_M=block_m, BLOCK_N=block_n, **modes, num_warps=warps, num_stages=stages)
    return dq, dk, dv
