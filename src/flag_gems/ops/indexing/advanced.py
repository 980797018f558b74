"""Advanced indexing: ``index.Tensor`` (+out) reads ``self[indices]``, and ``index_put`` /
``index_put_`` / ``_index_put_impl_`` (+ the functional and out= forms) write there, storing
or (``accumulate``) adding.

``indices`` holds an index tensor or None per leading dim of ``self``. As aten does, a bool
mask becomes its ``nonzero`` columns (one index per dim it covers: the host learns their
length, as native does), the index tensors broadcast together, and their shape takes the
place of the indexed dims in the result: where they are, if they are adjacent, else in front.
Negative indices count from the end. One walk does it all, every index tensor moving the
indexed side by its dim's stride.

``index_put`` and ``_index_put_impl`` are CompositeExplicitAutograd (they call
``_index_put_impl_``); registering them on the backend key runs this kernel directly.
``index``'s backward (an accumulating ``index_put`` into zeros) reaches ``_index_put_impl_``.
"""

import torch

from ...codegen.pointwise import broadcast_strides
from ...dispatch import aten_rows
from ...utils.layout import broadcast_shapes
from .common import index_reason, inplace_reason, operands_reason, out_reason, update
from .compaction import nonzero_of
from .walk import Index, walk

__all__ = ["index", "index_put", "index_put_"]


def _expanded(indices):
    """``indices`` with each bool mask replaced by its nonzero columns (aten's expandTensors)."""
    entries = []
    for entry in indices:
        if entry is not None and entry.dtype == torch.bool:
            entries.extend(nonzero_of(entry).unbind(1))
        else:
            entries.append(entry)
    return entries


def _layout(self, entries):
    """(the indexed shape, ``self``'s strides over it, the walk's ``Index`` per index tensor)."""
    positions = [d for d, entry in enumerate(entries) if entry is not None]
    tensors = [entries[d] for d in positions]
    index_shape = list(broadcast_shapes([t.shape for t in tensors]))
    rest = [d for d in range(self.dim()) if d not in positions]
    adjacent = positions[-1] - positions[0] + 1 == len(positions)
    before = [d for d in rest if d < positions[0]] if adjacent else []
    after = [d for d in rest if d not in before]
    shape = [self.shape[d] for d in before] + index_shape + [self.shape[d] for d in after]
    strides = [self.stride(d) for d in before] + [0] * len(index_shape) + [self.stride(d) for d in after]
    outside = [0] * len(before), [0] * len(after)
    walked = tuple(Index(t, outside[0] + broadcast_strides(t, index_shape) + outside[1], self.stride(d), self.shape[d])
                   for d, t in zip(positions, tensors))
    return shape, strides, walked


def _indices_reason(self, indices):
    """Why the kernels do not take ``indices`` into ``self`` (invalid ones included), or None."""
    if not isinstance(indices, (list, tuple)) or len(indices) > self.dim():
        return "too many indices, or not a list"
    present = [entry for entry in indices if entry is not None]
    if not present:
        return "no index tensor"
    masks = [entry for entry in present if isinstance(entry, torch.Tensor) and entry.dtype == torch.bool]
    if masks and len(present) > 1:
        return "a mask beside other index tensors"
    dim = 0
    for entry in indices:
        if entry is None:
            dim += 1
        elif entry.dtype == torch.bool:
            if entry.device != self.device or entry.dim() == 0 or entry.shape != self.shape[dim:dim + entry.dim()]:
                return "a mask that is 0-d, on another device or unlike self's dims"
            dim += entry.dim()
        else:
            reason = index_reason(entry, self.shape[dim], self.device, negative=True)
            if reason is not None:
                return reason
            dim += 1
    if dim > self.dim():
        return "too many indices"
    try:
        broadcast_shapes([t.shape for t in present])
    except RuntimeError:
        return "index tensors do not broadcast together"
    return None


def index(self, indices, *, out=None):
    """``self[indices]``."""
    shape, strides, walked = _layout(self, _expanded(indices))
    if out is None:
        out = torch.empty(shape, dtype=self.dtype, device=self.device)
    walk(shape, out, out.stride(), walked, src=self, src_strides=strides, wrap=True)
    return out


def _index_unsupported(self, indices, *, out=None):
    reason = operands_reason(self) or _indices_reason(self, indices)
    if reason is None and out is not None:
        if any(entry is not None and entry.dtype == torch.bool for entry in indices):
            return "out= with a mask"  # the result's shape is not known before the mask is read
        shape, _, _ = _layout(self, list(indices))
        return out_reason(out, torch.Size(shape), self.dtype, self, *[t for t in indices if t is not None])
    return reason


def _put_into(result, initial, indices, values, accumulate):
    entries = _expanded(indices)

    def put(target):
        shape, strides, walked = _layout(target, entries)
        if not _fits(values.shape, shape):
            raise RuntimeError(f"shape mismatch: value tensor of shape {list(values.shape)} cannot be broadcast to "
                               f"indexing result of shape {shape}")  # a mask's count decides: as aten says
        walk(shape, target, strides, walked, src=values, src_strides=broadcast_strides(values, shape), scatter=True,
             write="atomic_add" if accumulate else "store", wrap=True)

    return update(result, initial, put, atomic=accumulate)


def _fits(values_shape, shape):
    """Whether values of ``values_shape`` broadcast to ``shape`` (never adding dims to it)."""
    return len(values_shape) <= len(shape) and all(
        v in (1, s) for v, s in zip(reversed(values_shape), reversed(shape)))


def index_put(self, indices, values, accumulate=False, unsafe=False, *, out=None):
    """``self`` with ``values`` written (or added) at ``self[indices]``; laid out as ``self``."""
    result = out if out is not None else torch.empty_like(self)
    return _put_into(result, self, indices, values, accumulate)


def index_put_(self, indices, values, accumulate=False, unsafe=False):
    return _put_into(self, None, indices, values, accumulate)


def _put_reason(self, indices, values):
    reason = operands_reason(self, values) or _indices_reason(self, indices)
    if reason is not None:
        return reason
    if values.dtype != self.dtype:
        return "values of another dtype"
    if any(entry is not None and entry.dtype == torch.bool for entry in indices):
        return None  # the walk checks the values' shape once the mask's count is known
    if not _fits(values.shape, _layout(self, list(indices))[0]):
        return "values do not broadcast to the indexed shape"
    return None


def _index_put_unsupported(self, indices, values, accumulate=False, unsafe=False, *, out=None):
    reason = _put_reason(self, indices, values)
    if reason is None and out is not None:
        return out_reason(out, self.shape, self.dtype, self, values, *[t for t in indices if t is not None])
    return reason


def _index_put_inplace_unsupported(self, indices, values, accumulate=False, unsafe=False):
    reason = _put_reason(self, indices, values)
    return reason or inplace_reason(self, values, *[t for t in indices if t is not None])


ATEN = (
    *aten_rows("index", index, _index_unsupported, ("Tensor", "Tensor_out")),
    *aten_rows("index_put", index_put, _index_put_unsupported, ("", "out"), index_put_, _index_put_inplace_unsupported),
    *aten_rows("_index_put_impl", index_put, _index_put_unsupported, ("", "out"), index_put_,
               _index_put_inplace_unsupported),
)
