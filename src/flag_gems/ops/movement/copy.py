"""Copies and fills: copy_, _to_copy (.to(), .float(), .half()...), clone, fill_, zero_.

One identity formula serves every copy: the generator reads the source in
its own dtype, converts, and writes the destination in its dtype and layout
(any strides on either side, a broadcast source). Anything crossing devices,
layouts or memory formats we do not write goes to PyTorch's native kernel.
"""

import torch
import triton
import triton.language as tl  # noqa: F401 - Triton's interpreter needs it beside every formula

from ... import runtime
from ...codegen.pointwise import Pointwise
from ...dispatch import Row
from ...utils.dtypes import COMPUTE_DTYPE, scalar_overflows
from ...utils.layout import broadcast_shapes, overlaps_itself, partially_overlaps

__all__ = ["copy_", "to_copy", "clone", "fill_", "zero_"]

_SUPPORTED = runtime.supported_dtypes()
_LAYOUT_KEEPING = (None, torch.preserve_format, torch.contiguous_format)


@triton.jit
def _identity(x):
    return x


COPY = Pointwise(_identity, "copy")


def _write(dest, src):
    """``dest[...] = src`` converted to dest's dtype (src a tensor or a number)."""
    if isinstance(src, torch.Tensor):
        source_dtype = src.dtype
    else:
        source_dtype = dest.dtype
        if not dest.dtype.is_floating_point:
            # As c10 converts a number: 0.5 is true, 2**24 + 1.0 an exact integer (Triton
            # would pass a float as fp32 and the kernel cast it to int32 or int1).
            src = bool(src) if dest.dtype == torch.bool else int(src)
    # Float-to-integer casts truncate like C++; keep wide sources wide until the final cast.
    COPY(dest, COMPUTE_DTYPE[source_dtype], src)
    return dest


def _rounds_twice(source, target):
    """Triton converts fp64 to a half type through fp32: two roundings, not one."""
    return source == torch.float64 and target in (torch.float16, torch.bfloat16)


def _destination_unsupported(dest):
    if dest.dtype not in _SUPPORTED:
        return f"dtype {dest.dtype} is not supported"
    if overlaps_itself(dest):
        return "destination has internal overlap"
    return None


def copy_(self, src, non_blocking=False):
    """``self`` filled with ``src`` (broadcast, converted to self's dtype)."""
    if src.device != self.device:  # a CPU scalar tensor
        return _write(self, src.item())
    return _write(self, src)


def _copy_unsupported(self, src, non_blocking=False):
    reason = _destination_unsupported(self)
    if reason is not None:
        return reason
    if src.dtype not in _SUPPORTED:
        return f"source dtype {src.dtype} is not supported"
    if _rounds_twice(src.dtype, self.dtype):
        return "fp64 to a half type"
    if src.device != self.device and not (src.dim() == 0 and src.is_cpu):
        return "copy across devices"
    if src.is_neg() or src.is_conj():
        return "source with a lazy negation or conjugation bit"
    try:
        if broadcast_shapes((self.shape, src.shape)) != self.shape:
            return "source does not broadcast to the destination"
    except RuntimeError:
        return "source does not broadcast to the destination"
    if src.device == self.device and partially_overlaps(self, src):
        return "source overlaps the destination"
    return None


def to_copy(self, *, dtype=None, layout=None, device=None, pin_memory=None, non_blocking=False,
            memory_format=None):
    """A copy of ``self`` in ``dtype``, laid out as PyTorch would lay it out."""
    result = torch.empty_like(self, dtype=dtype or self.dtype,
                              memory_format=memory_format or torch.preserve_format)
    return _write(result, self)


def _to_copy_unsupported(self, *, dtype=None, layout=None, device=None, pin_memory=None, non_blocking=False,
                         memory_format=None):
    if self.dtype not in _SUPPORTED or (dtype is not None and dtype not in _SUPPORTED):
        return "dtype not supported"
    if dtype is not None and _rounds_twice(self.dtype, dtype):
        return "fp64 to a half type"
    if device is not None and torch.device(device) != self.device:
        return "copy to another device"
    if layout not in (None, torch.strided) or pin_memory:
        return "layout or pinned memory"
    if memory_format not in _LAYOUT_KEEPING or self.is_neg() or self.is_conj():
        return "memory format or lazy bits"
    return None


def clone(self, *, memory_format=None, out=None):
    result = out if out is not None else torch.empty_like(
        self, memory_format=memory_format or torch.preserve_format)
    return _write(result, self)


def _clone_unsupported(self, *, memory_format=None, out=None):
    if self.dtype not in _SUPPORTED:
        return f"dtype {self.dtype} is not supported"
    if memory_format not in _LAYOUT_KEEPING or self.is_neg() or self.is_conj():
        return "memory format or lazy bits"
    if out is not None and (out.shape != self.shape or out.dtype != self.dtype or out.device != self.device
                            or _destination_unsupported(out) or partially_overlaps(out, self)):
        return "out differs from the result"
    return None


def fill_(self, value):
    """Every element of ``self`` set to ``value`` (a number or a 0-d tensor)."""
    if isinstance(value, torch.Tensor) and value.device != self.device:
        value = value.item()
    return _write(self, value)


def _fill_unsupported(self, value):
    return _destination_unsupported(self) or fill_value_unsupported(value, self.dtype, self.device)


def fill_value_unsupported(value, dtype, device):
    """Why ``fill_`` does not take ``value`` (a number or a 0-d tensor) for a ``dtype``
    tensor on ``device``, or None. A number PyTorch would refuse to convert counts, so
    that native raises its error."""
    if isinstance(value, torch.Tensor):
        if value.dim() != 0 or value.dtype not in _SUPPORTED:
            return "value is not a supported 0-d tensor"
        if value.device == device:
            return None  # copied as copy_ converts, unchecked, as PyTorch does
        if not value.is_cpu:
            return "value on another device"
        value = value.item()  # a CPU number: PyTorch converts it as checked
    if type(value) not in (bool, int, float):
        return f"value {value!r} is not a real number"
    if scalar_overflows(value, dtype):
        return f"value {value!r} does not fit {dtype}"
    return None


def zero_(self):
    return _write(self, 0)


def _zero_unsupported(self):
    return _destination_unsupported(self)


ATEN = (
    Row("copy_", copy_, _copy_unsupported),
    Row("_to_copy", to_copy, _to_copy_unsupported),
    Row("clone", clone, _clone_unsupported),
    Row("clone.out", clone, _clone_unsupported),
    Row("fill_.Scalar", fill_, _fill_unsupported),
    Row("fill_.Tensor", fill_, _fill_unsupported),
    Row("zero_", zero_, _zero_unsupported),
)
