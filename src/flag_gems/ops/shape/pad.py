"""Padding: constant_pad_nd, and the reflection and replication pads (1d, 2d, 3d) with
their backward.

The forwards are gathers whose padded dims read shifted (a constant outside the input),
reflected or clamped coordinates; negative padding crops, as in PyTorch. The backwards
sum, for each input element, the output gradients it was copied to (pad_kernels).
"""

import torch

from ... import runtime
from ...codegen.launch import layout_key, planned
from ...codegen.pointwise import TL_DTYPE
from ...dispatch import aten_rows
from ...utils.dtypes import FLOAT_DTYPES, float_accumulator, scalar_overflows
from ...utils.layout import INT32_LIMIT, cdiv, next_power_of_2, span
from .common import SUPPORTED, dtype_reason, out_reason, suggested_format
from .gather import GatherPlan, fill_argument, gather_config, one_source
from .gather_kernels import CLAMP, PAD, REFLECT
from .pad_kernels import PAD_BACKWARD

__all__ = ["constant_pad_nd", "reflection_pad1d", "reflection_pad2d", "reflection_pad3d", "replication_pad1d",
           "replication_pad2d", "replication_pad3d", "reflection_pad1d_backward", "reflection_pad2d_backward",
           "reflection_pad3d_backward", "replication_pad1d_backward", "replication_pad2d_backward",
           "replication_pad3d_backward"]

_plans = {}
_FLOATS = FLOAT_DTYPES & SUPPORTED


def _padded_shape(shape, pad):
    """``shape`` grown by ``pad`` (before, after pairs from the last dim backwards)."""
    shape = list(shape)
    for i in range(len(pad) // 2):
        shape[-1 - i] += pad[2 * i] + pad[2 * i + 1]
    return shape


def _pad_modes(self, pad, mode):
    """{dim: (mode, size, padding before)} of the padded dims."""
    rank = self.dim()
    return {rank - 1 - i: (mode, self.shape[rank - 1 - i], pad[2 * i]) for i in range(len(pad) // 2)}


def _pad_forward(self, pad, mode, out, fill=0):
    if out.numel():
        pad = tuple(pad)
        key = (mode, pad, repr(fill), layout_key(self), layout_key(out))  # repr: -0.0 and NaN as keys
        planned(_plans, key, lambda: GatherPlan(one_source(out.shape, self.stride(), out.stride(),
                                                           _pad_modes(self, pad, mode)),
                                                fill=fill_argument(fill, out.dtype)))(out, (self,))
    return out


def constant_pad_nd(self, pad, value=0, *, out=None):
    """``self`` padded with ``value`` by ``pad`` (before, after pairs from the last dim
    backwards; negative values crop)."""
    if out is None:
        out = torch.empty(_padded_shape(self.shape, pad), dtype=self.dtype, device=self.device,
                          memory_format=suggested_format(self))
    return _pad_forward(self, pad, PAD, out, value)


def _fill_reason(value, dtype):
    """Why ``value`` does not go to ``dtype`` as PyTorch converts it (it may raise), or None."""
    if type(value) not in (bool, int, float) or scalar_overflows(value, dtype):
        return "fill value of another kind, or out of range"
    if isinstance(value, float) and not (dtype.is_floating_point or dtype == torch.bool):
        return "a float fill value for integers (Triton passes it as fp32)"
    return None


def _constant_pad_unsupported(self, pad, value=0, *, out=None):
    if len(pad) % 2 or len(pad) > 2 * self.dim():
        return "invalid padding"
    shape = _padded_shape(self.shape, pad)
    if min(shape, default=0) < 0:
        return "padding leaves a negative size"
    return (dtype_reason(self) or _fill_reason(value, self.dtype)
            or out_reason(out, shape, self.dtype, self))


def _pad_rank_reason(self, padding, dims):
    """Why PyTorch refuses (or we do not take) a ``dims``-d reflection or replication pad."""
    if len(padding) != 2 * dims or self.dim() not in (dims + 1, dims + 2):
        return "invalid rank or padding"
    if any(size == 0 for size in self.shape[1:]) or self.dtype == torch.bool:
        return "empty non-batch dim or bool"
    if min(_padded_shape(self.shape[-dims:], padding)) < 1:
        return "padding leaves no output"
    return None


def _reflect_reason(self, padding):
    sizes = self.shape[::-1]
    if any(pad >= sizes[i // 2] for i, pad in enumerate(padding)):
        return "reflection padding as large as the input"
    return None


def _five_dims(tensor, dims):
    """(sizes, strides) of ``tensor``, whose last ``dims`` dims are padded, read as
    [N, C, D, H, W]."""
    batch, spatial = 2 - (tensor.dim() - dims), 3 - dims
    sizes, strides = list(tensor.shape), list(tensor.stride())
    return ([1] * batch + sizes[:-dims] + [1] * spatial + sizes[-dims:],
            [0] * batch + strides[:-dims] + [0] * spatial + strides[-dims:])


def _candidates(mode, pad_before, pad_after, out_size):
    """[first, end) of the loop over the output positions an input position was copied to."""
    if pad_before == pad_after == 0:
        return (1, 2) if mode == REFLECT else (0, 1)
    if mode == REFLECT:
        return 0, 3
    return 0, min(out_size, max(pad_before, 0) + max(pad_after, 0) + 1)


def _pad_backward(grad_output, self, padding, mode, grad_input):
    if not grad_input.numel():
        return grad_input
    dims = len(padding) // 2
    (N, C, D, H, W), in_strides = _five_dims(grad_input, dims)
    out_sizes, out_strides = _five_dims(grad_output, dims)
    # padding lists the last dim's pair first
    pairs = [(0, 0)] * (3 - dims) + [(padding[2 * i], padding[2 * i + 1]) for i in reversed(range(dims))]
    loops = [bound for (before, after), out_size in zip(pairs, out_sizes[2:])
             for bound in _candidates(mode, before, after, out_size)]
    rows = N * C * D * H
    block_r, block_c, warps = runtime.config("pad_backward", gather_config)(next_power_of_2(rows), next_power_of_2(W),
                                                                         False)
    index64 = max(span(grad_output), span(grad_input), grad_output.numel()) >= INT32_LIMIT
    PAD_BACKWARD((cdiv(rows, block_r) * cdiv(W, block_c),), grad_output, grad_input, rows, C, D, H, W,
                 *out_sizes[2:], *out_strides, *in_strides, *(before for before, _ in pairs), *loops,
                 MODE=mode, ACC=TL_DTYPE[float_accumulator(grad_input.dtype)], BLOCK_R=block_r, BLOCK_C=block_c,
                 INDEX64=index64, num_warps=warps)
    return grad_input


def _pad_operator(name, dims, mode):
    """(forward, backward, rows) of ``name``, a ``dims``-d reflection or replication pad."""
    def forward(self, padding, *, out=None):
        if out is None:
            out = torch.empty(_padded_shape(self.shape, padding), dtype=self.dtype, device=self.device)
        return _pad_forward(self, padding, mode, out)

    def forward_unsupported(self, padding, *, out=None):
        reason = _pad_rank_reason(self, padding, dims) or dtype_reason(self)
        if reason is None and mode == REFLECT:
            reason = _reflect_reason(self, padding)
        return reason or out_reason(out, _padded_shape(self.shape, padding), self.dtype, self)

    def backward(grad_output, self, padding, *, grad_input=None):
        if grad_input is None:
            grad_input = torch.empty(self.shape, dtype=self.dtype, device=self.device)
        return _pad_backward(grad_output, self, padding, mode, grad_input)

    def backward_unsupported(grad_output, self, padding, *, grad_input=None):
        if self.dtype not in _FLOATS or grad_output.dtype != self.dtype:
            return "gradients of a dtype we do not sum"
        if tuple(grad_output.shape) != tuple(_padded_shape(self.shape, padding)):
            return "grad_output of another shape"
        if grad_output.device != self.device:
            return "grad_output on another device"
        return forward_unsupported(self, padding) or out_reason(grad_input, self.shape, self.dtype, grad_output, self)

    forward.__name__ = forward.__qualname__ = name
    forward.__doc__ = f"``self`` padded along its last {dims} dims."
    backward.__name__ = backward.__qualname__ = f"{name}_backward"
    backward.__doc__ = f"The gradient of ``{name}`` with respect to ``self``."
    rows = (*aten_rows(name, forward, forward_unsupported, ("", "out")),
            *aten_rows(f"{name}_backward", backward, backward_unsupported, ("", "grad_input")))
    return forward, backward, rows


reflection_pad1d, reflection_pad1d_backward, _REFLECTION_1D = _pad_operator("reflection_pad1d", 1, REFLECT)
reflection_pad2d, reflection_pad2d_backward, _REFLECTION_2D = _pad_operator("reflection_pad2d", 2, REFLECT)
reflection_pad3d, reflection_pad3d_backward, _REFLECTION_3D = _pad_operator("reflection_pad3d", 3, REFLECT)
replication_pad1d, replication_pad1d_backward, _REPLICATION_1D = _pad_operator("replication_pad1d", 1, CLAMP)
replication_pad2d, replication_pad2d_backward, _REPLICATION_2D = _pad_operator("replication_pad2d", 2, CLAMP)
replication_pad3d, replication_pad3d_backward, _REPLICATION_3D = _pad_operator("replication_pad3d", 3, CLAMP)

ATEN = (
    *aten_rows("constant_pad_nd", constant_pad_nd, _constant_pad_unsupported, ("", "out")),
    *_REFLECTION_1D, *_REFLECTION_2D, *_REFLECTION_3D, *_REPLICATION_1D, *_REPLICATION_2D, *_REPLICATION_3D,
)
