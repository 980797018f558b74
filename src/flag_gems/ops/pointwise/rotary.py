"""Rotary position embedding (RoPE), q and k rotated in one kernel launch (rotary_kernels),
differentiable with the backward on the same kernel (the rotation by minus the angle):

- ``apply_rotary_pos_emb(q, k, cos, sin, position_ids=None, rotary_interleaved=False,
  inplace=False)``: FlagGems' layout. q [..., q_heads, head_dim], k [..., k_heads, head_dim]
  (the same leading dims), cos/sin [max_positions, rotary_dim // 2] tables; ``position_ids``
  (q's leading shape) picks each token's row, else a token's position is its index along
  dim -3 ([..., seq_len, heads, head_dim]). The first rotary_dim elements of a head are
  rotated, as halves (NeoX) or as interleaved pairs (GPT-J); the rest passes through.
- ``hf_apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1)``: Hugging Face's
  ``apply_rotary_pos_emb`` (Llama, Qwen2/3, Mistral, Gemma, ...): q [B, H, T, D] of any
  strides, cos/sin [B, T, D] unsqueezed at ``unsqueeze_dim`` and broadcast, a value per
  element (the halves duplicated, as HF's rotary embedding makes them, or not).

A call layout is planned once (launch_plan keyed on shapes, strides, dtypes, alignment):
a repeated layout only allocates its outputs and replays one launch. Inputs the kernel
does not take (dtypes, devices, ranks, cos/sin that require grad) are computed by the same
formulas in torch ops, which raise torch's errors where the input is invalid.
"""

import torch
from torch.autograd.function import once_differentiable

from ... import runtime
from ...codegen.launch import layout_key, planned
from ...utils.dtypes import float_accumulator
from ...utils.layout import may_overlap_itself
from .rotary_kernels import Geometry, RotaryLaunch

__all__ = ["apply_rotary_pos_emb", "hf_apply_rotary_pos_emb"]

_POSITION_DTYPES = (torch.int32, torch.int64)


class _Rotation:
    """A call layout's forward launch, and its backward launches by gradient layout."""

    __slots__ = ("geometry", "in_place", "launch", "backward_launches")

    def __init__(self, geometry, q, k, in_place):
        self.geometry, self.in_place = geometry, in_place
        self.launch = RotaryLaunch(geometry, q, k, in_place=in_place)
        self.backward_launches = {}

    def forward(self, q, k, cos, sin, positions):
        if self.in_place:
            q_out, k_out = q, k
        else:
            q_out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
            k_out = torch.empty(k.shape, dtype=k.dtype, device=k.device)
        self.launch(q, k, q_out, k_out, cos, sin, positions)
        return q_out, k_out

    def backward(self, grad_q, grad_k, cos, sin, positions):
        launch = planned(self.backward_launches, (layout_key(grad_q), layout_key(grad_k)),
                         lambda: RotaryLaunch(self.geometry, grad_q, grad_k, backward=True))
        dq = torch.empty(grad_q.shape, dtype=grad_q.dtype, device=grad_q.device)
        dk = torch.empty(grad_k.shape, dtype=grad_k.dtype, device=grad_k.device)
        launch(grad_q, grad_k, dq, dk, cos, sin, positions)
        return dq, dk


class _RotaryFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, cos, sin, positions, rotation):
        q_out, k_out = rotation.forward(q, k, cos, sin, positions)
        if rotation.in_place:
            ctx.mark_dirty(q, k)
        ctx.rotation = rotation
        ctx.save_for_backward(cos, sin, positions)
        return q_out, k_out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_q, grad_k):
        cos, sin, positions = ctx.saved_tensors
        dq, dk = ctx.rotation.backward(grad_q, grad_k, cos, sin, positions)
        return dq if ctx.needs_input_grad[0] else None, dk if ctx.needs_input_grad[1] else None, None, None, None, None


def _kernel_dtypes(*tensors):
    """Whether the kernel takes these floating dtypes on this vendor."""
    supported = runtime.supported_dtypes()
    return all(t.dtype.is_floating_point and t.dtype in supported for t in tensors)


def _compute_dtype(*tensors):
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def _run(rotation, q, k, cos, sin, positions):
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad):
        return _RotaryFunction.apply(q, k, cos, sin, positions, rotation)
    return rotation.forward(q, k, cos, sin, positions)


# ---- FlagGems' layout ----------------------------------------------------------------------


def _gems_shape_error(q, k, cos, sin, positions):
    """What is wrong with the shapes of a FlagGems-layout call, or None."""
    if q.dim() < 2 or q.shape[:-2] != k.shape[:-2] or q.shape[-1] != k.shape[-1]:
        return f"q and k must be [..., heads, head_dim] with the same leading dims and head_dim, got " \
               f"{tuple(q.shape)} and {tuple(k.shape)}"
    if cos.dim() != 2 or cos.shape != sin.shape:
        return f"cos and sin must be [positions, rotary_dim // 2] of one shape, got {tuple(cos.shape)} and " \
               f"{tuple(sin.shape)}"
    if not 0 < 2 * cos.shape[1] <= q.shape[-1]:
        return f"rotary_dim (twice cos's last dim, {2 * cos.shape[1]}) must be in 1..head_dim ({q.shape[-1]})"
    if positions is None:
        if q.dim() < 3:
            return f"without position_ids q must be [..., seq_len, heads, head_dim], got {tuple(q.shape)}"
        if q.shape[-3] > cos.shape[0]:
            return f"seq_len {q.shape[-3]} exceeds the {cos.shape[0]} positions of cos and sin"
    elif positions.shape != q.shape[:-2]:
        return f"position_ids must be of q's leading shape {tuple(q.shape[:-2])}, got {tuple(positions.shape)}"
    return None


def _gems_rotation(q, k, cos, sin, positions, interleaved, in_place):
    """The planned launch of a FlagGems-layout call, or None where torch ops compute it."""
    error = _gems_shape_error(q, k, cos, sin, positions)
    if error is not None:
        raise ValueError(f"apply_rotary_pos_emb: {error}")
    tensors = (q, k, cos, sin) if positions is None else (q, k, cos, sin, positions)
    if (any(t.device != q.device for t in tensors) or q.dim() > 4 or not _kernel_dtypes(q, k, cos, sin)
            or cos.stride() != sin.stride() or (positions is not None and positions.dtype not in _POSITION_DTYPES)
            or (in_place and (may_overlap_itself(q) or may_overlap_itself(k)))):
        return None
    if positions is None:
        index = (0, cos.stride(0), 0)  # the position is the index along dim -3
    else:
        index = (0,) * (2 - positions.dim()) + tuple(positions.stride()) + (0,)  # the same for every head
    geometry = Geometry(index, positions is not None, cos.stride(0), cos.stride(1), 0, cos.shape[0], cos.shape[1],
                        bool(interleaved), _compute_dtype(q, k, cos, sin))
    return _Rotation(geometry, q, k, bool(in_place))


def _rotated(x, cos, sin, interleaved):
    """x's first 2 * half elements rotated by cos/sin [..., half] (broadcast), in torch ops."""
    half = cos.shape[-1]
    rotary = x[..., :2 * half].to(torch.promote_types(x.dtype, cos.dtype))
    x1, x2 = (rotary[..., 0::2], rotary[..., 1::2]) if interleaved else (rotary[..., :half], rotary[..., half:])
    y1, y2 = x1 * cos - x2 * sin, x2 * cos + x1 * sin
    rotated = torch.stack((y1, y2), -1).flatten(-2) if interleaved else torch.cat((y1, y2), -1)
    return torch.cat((rotated.to(x.dtype), x[..., 2 * half:]), -1)


def _gems_composite(q, k, cos, sin, positions, interleaved, in_place):
    rows = slice(q.shape[-3]) if positions is None else positions
    cos, sin = cos[rows].unsqueeze(-2), sin[rows].unsqueeze(-2)  # one row per token, for every head
    q_out, k_out = _rotated(q, cos, sin, interleaved), _rotated(k, cos, sin, interleaved)
    if in_place:
        return q.copy_(q_out), k.copy_(k_out)
    return q_out, k_out


def _leaf_requiring_grad(*tensors):
    return torch.is_grad_enabled() and any(t.is_leaf and t.requires_grad for t in tensors)


def _check_host_positions(positions, cos):
    """Position ids on the CPU are checked here (as indexing the table would); on a device the
    kernel asserts where device asserts are on (TRITON_DEBUG=1), else an id out of range
    gives NaN, never a read out of bounds."""
    if positions is not None and positions.device.type == "cpu" and positions.numel() and (
            positions.min() < 0 or positions.max() >= cos.shape[0]):
        raise IndexError(f"apply_rotary_pos_emb: position_ids out of range of the {cos.shape[0]} positions of cos "
                         "and sin")


_gems_plans = {}


def apply_rotary_pos_emb(q, k, cos, sin, position_ids=None, rotary_interleaved=False, inplace=False):
    """FlagGems' rotary embedding of q [..., q_heads, head_dim] and k [..., k_heads, head_dim] by
    cos/sin tables [max_positions, rotary_dim // 2] (see the module's docstring). Returns
    (q_embed, k_embed): q and k themselves when ``inplace``. Differentiable in q and k."""
    if not all(isinstance(t, torch.Tensor) for t in (q, k, cos, sin)) or not (
            position_ids is None or isinstance(position_ids, torch.Tensor)):
        raise TypeError("apply_rotary_pos_emb takes tensors q, k, cos, sin and position_ids (or None)")
    key = (layout_key(q), layout_key(k), layout_key(cos), layout_key(sin), layout_key(position_ids), q.device,
           k.device, cos.device, sin.device, None if position_ids is None else position_ids.device,
           bool(rotary_interleaved), bool(inplace))
    rotation = planned(_gems_plans, key, lambda: _gems_rotation(q, k, cos, sin, position_ids, rotary_interleaved,
                                                                inplace))
    _check_host_positions(position_ids, cos)
    # torch ops where the kernel cannot: cos/sin gradients, in-place updates that torch must refuse
    # (a leaf requiring grad) or that would race (k the same memory as q).
    if (rotation is None or (torch.is_grad_enabled() and (cos.requires_grad or sin.requires_grad))
            or (inplace and (_leaf_requiring_grad(q, k) or q.data_ptr() == k.data_ptr()))):
        return _gems_composite(q, k, cos, sin, position_ids, rotary_interleaved, inplace)
    return _run(rotation, q, k, cos, sin, position_ids)


# ---- Hugging Face's layout -----------------------------------------------------------------


def _hf_rotation(q, k, cos, sin, unsqueeze_dim):
    """The planned launch of a Hugging Face-layout call, or None where HF's own formula in torch
    ops computes it (and raises its errors)."""
    if (q.dim() != 4 or k.dim() != 4 or cos.dim() != 3 or cos.shape != sin.shape or cos.stride() != sin.stride()
            or any(t.device != q.device or t.dtype != q.dtype for t in (k, cos, sin)) or not _kernel_dtypes(q)
            or not -4 <= unsqueeze_dim <= 3):
        return None
    sizes, strides = list(cos.shape), list(cos.stride())
    sizes.insert(unsqueeze_dim % 4, 1)
    strides.insert(unsqueeze_dim % 4, 0)
    head_dim = q.shape[3]
    if head_dim == 0 or head_dim % 2 or k.shape[3] != head_dim or sizes[3] != head_dim:
        return None
    # cos must broadcast to q and to k without enlarging either (HF's result would be larger).
    if any(sizes[d] != 1 and not sizes[d] == q.shape[d] == k.shape[d] for d in range(3)):
        return None
    index = tuple(stride if size != 1 else 0 for size, stride in zip(sizes[:3], strides[:3]))
    half = head_dim // 2
    geometry = Geometry(index, False, 0, strides[3], half * strides[3], 0, half, False,
                        float_accumulator(q.dtype))
    return _Rotation(geometry, q, k, False)


def _hf_composite(q, k, cos, sin, unsqueeze_dim):
    """Hugging Face's formula: x * cos + rotate_half(x) * sin."""
    cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)

    def rotate_half(x):
        half = x.shape[-1] // 2
        return torch.cat((-x[..., half:], x[..., :half]), dim=-1)

    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


_hf_plans = {}


def hf_apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1):
    """Hugging Face's ``apply_rotary_pos_emb`` (same signature and results, within the rounding of
    computing in fp32): q [B, H, T, D], k [B, Hkv, T, D] of any strides, cos/sin [B, T, D].
    Returns contiguous (q_embed, k_embed); differentiable in q and k."""
    if not (isinstance(q, torch.Tensor) and isinstance(k, torch.Tensor) and isinstance(cos, torch.Tensor)
            and isinstance(sin, torch.Tensor) and type(unsqueeze_dim) is int):
        return _hf_composite(q, k, cos, sin, unsqueeze_dim)
    key = (layout_key(q), layout_key(k), layout_key(cos), layout_key(sin), q.device, k.device, cos.device,
           sin.device, unsqueeze_dim)
    rotation = planned(_hf_plans, key, lambda: _hf_rotation(q, k, cos, sin, unsqueeze_dim))
    if rotation is None or (torch.is_grad_enabled() and (cos.requires_grad or sin.requires_grad)):
        return _hf_composite(q, k, cos, sin, unsqueeze_dim)
    return _run(rotation, q, k, cos, sin, None)
