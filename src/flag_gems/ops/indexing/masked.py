"""``nonzero``, ``masked_select`` and ``masked_scatter`` / ``masked_scatter_`` (each +out):
compactions (see ``compaction``), whose output size the host reads, as native does.

``masked_select`` packs ``self``'s elements where the mask holds (both broadcast), in
row-major order; ``masked_scatter_`` writes the source's first values, in order, where the
mask holds (a source with too few values raises aten's error). ``masked_scatter`` is
CompositeExplicitAutograd: a copy of ``self`` broadcast with the mask, then the in-place form.
An ``out=`` must be empty (it is resized, as native resizes it without a warning then).
"""

import torch

from ...codegen.pointwise import broadcast_strides
from ...dispatch import aten_rows
from ...utils.layout import broadcast_shapes
from ..movement.copy import copy_
from .common import flat, inplace_reason, on_one_device, operands_reason, out_reason, separate_output_reason
from .compaction import Compaction

__all__ = ["nonzero", "masked_select", "masked_scatter", "masked_scatter_"]


def _sized(out, shape, dtype, device):
    """``out`` resized to ``shape`` (the condition let only an empty one through), or a new tensor."""
    if out is None:
        return torch.empty(shape, dtype=dtype, device=device)
    return out.resize_(shape)


def _empty_out_reason(out, dtype, *inputs):
    if out.numel() or out.dtype != dtype or not on_one_device(out, *inputs):
        return "out= with elements or of another dtype or device (native resizes it, warning)"
    return separate_output_reason(out, *inputs)


def nonzero(self, *, out=None):
    """The coordinates of ``self``'s nonzero elements, one row each, in row-major order."""
    found = Compaction(self, self.shape, self.stride())
    out = _sized(out, (found.count, self.dim()), torch.int64, self.device)
    return found.coordinates(out) if self.dim() else out


def _nonzero_unsupported(self, *, out=None):
    reason = operands_reason(self)
    if reason is None and out is not None:
        return _empty_out_reason(out, torch.int64, self)
    return reason


def masked_select(self, mask, *, out=None):
    """``self``'s elements where ``mask`` holds (both broadcast), as a 1-d tensor."""
    shape = broadcast_shapes((self.shape, mask.shape))
    found = Compaction(mask, shape, broadcast_strides(mask, shape))
    out = _sized(out, (found.count,), self.dtype, self.device)
    return found.select(self, broadcast_strides(self, shape), out)


def _mask_reason(self, mask, *others):
    reason = operands_reason(self, *others)
    if reason is not None:
        return reason
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.device != self.device:
        return "mask is not a bool tensor on self's device"
    try:
        broadcast_shapes((self.shape, mask.shape))
    except RuntimeError:
        return "mask does not broadcast with self"
    return None


def _masked_select_unsupported(self, mask, *, out=None):
    reason = _mask_reason(self, mask)
    if reason is None and out is not None:
        return _empty_out_reason(out, self.dtype, self, mask)
    return reason


def masked_scatter_(self, mask, source):
    """``self`` taking ``source``'s first values, in order, where ``mask`` (broadcast) holds."""
    found = Compaction(mask, self.shape, broadcast_strides(mask, self.shape))
    if found.count > source.numel():
        raise RuntimeError("Number of elements of source < number of ones in mask")  # aten's words
    return found.scatter(self, self.stride(), flat(source))


def masked_scatter(self, mask, source, *, out=None):
    shape = broadcast_shapes((self.shape, mask.shape))
    result = torch.empty(shape, dtype=self.dtype, device=self.device) if out is None else out
    return masked_scatter_(copy_(result, self), mask, source)


def _source_reason(self, mask, source):
    reason = _mask_reason(self, mask, source)
    if reason is None and source.dtype != self.dtype:
        return "source of another dtype"
    return reason


def _masked_scatter_unsupported(self, mask, source, *, out=None):
    reason = _source_reason(self, mask, source)
    if reason is None and out is not None:
        return out_reason(out, broadcast_shapes((self.shape, mask.shape)), self.dtype, self, mask, source)
    return reason


def _masked_scatter_inplace_unsupported(self, mask, source):
    reason = _source_reason(self, mask, source)
    if reason is None and broadcast_shapes((self.shape, mask.shape)) != self.shape:
        return "mask does not broadcast to self"
    return reason or inplace_reason(self, mask, source)


ATEN = (
    *aten_rows("nonzero", nonzero, _nonzero_unsupported, ("", "out")),
    *aten_rows("masked_select", masked_select, _masked_select_unsupported, ("", "out")),
    *aten_rows("masked_scatter", masked_scatter, _masked_scatter_unsupported, ("", "out"), masked_scatter_,
               _masked_scatter_inplace_unsupported),
)
