"""Filled tensors: full, zeros, ones, their ``*_like`` and ``new_*`` forms, fill and zero,
each with its ``out=`` form.

Each allocates its result as PyTorch lays it out (a ``*_like`` keeps ``self``'s layout
where PyTorch does) and writes the value with movement's ``fill_`` kernel, which takes
any layout and converts the value as c10 converts a number. A value PyTorch refuses to
convert (300 into int8, 1e6 into float16) goes to native, which raises.
"""

import torch

from ...dispatch import aten_rows
from ...utils.dtypes import number_dtype
from ..movement.copy import fill_, fill_value_unsupported
from .common import options_unsupported, out_unsupported

__all__ = ["full", "zeros", "ones", "full_like", "zeros_like", "ones_like", "new_full", "new_zeros", "new_ones",
           "fill", "zero"]


def _unsupported(shape, dtype, value, device=None, layout=None, pin_memory=None, out=None):
    """Why the kernel does not make a ``shape`` tensor of ``dtype`` filled with ``value``
    (written into ``out`` when given), or None."""
    if out is not None and device is None:  # an out= form: the result is made where out is
        device = out.device
    reason = options_unsupported(dtype, layout, device, pin_memory)
    if reason is None and any(size < 0 for size in shape):
        reason = "a negative size"
    if reason is None and out is not None:
        reason = out_unsupported(out, shape, dtype, device)
    return reason or fill_value_unsupported(value, dtype, device)


# ---- full, zeros, ones: the size given; out= takes the result's dtype from out


def full(size, fill_value, *, dtype=None, layout=None, device=None, pin_memory=None, out=None):
    """A ``size`` tensor of ``fill_value``, of its dtype (bool, int64 or the default float)
    unless ``dtype`` says otherwise."""
    if out is None:
        out = torch.empty(size, dtype=dtype or number_dtype(fill_value), device=device)
    return fill_(out, fill_value)


def _full_unsupported(size, fill_value, *, dtype=None, layout=None, device=None, pin_memory=None, out=None):
    dtype = out.dtype if out is not None else dtype or number_dtype(fill_value)
    if dtype is None:
        return "a complex fill value"
    return _unsupported(size, dtype, fill_value, device, layout, pin_memory, out)


def zeros(size, *, dtype=None, layout=None, device=None, pin_memory=None, out=None):
    return full(size, 0, dtype=dtype or torch.get_default_dtype(), device=device, out=out)


def _zeros_unsupported(size, *, dtype=None, layout=None, device=None, pin_memory=None, out=None):
    return _full_unsupported(size, 0, dtype=dtype or torch.get_default_dtype(), layout=layout, device=device,
                             pin_memory=pin_memory, out=out)


def ones(size, *, dtype=None, layout=None, device=None, pin_memory=None, out=None):
    return full(size, 1, dtype=dtype or torch.get_default_dtype(), device=device, out=out)


def _ones_unsupported(size, *, dtype=None, layout=None, device=None, pin_memory=None, out=None):
    return _full_unsupported(size, 1, dtype=dtype or torch.get_default_dtype(), layout=layout, device=device,
                             pin_memory=pin_memory, out=out)


# ---- full_like, zeros_like, ones_like: self's shape, dtype, device and layout by default


def full_like(self, fill_value, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None,
              out=None):
    """A tensor like ``self`` (its layout kept under ``preserve_format``) of ``fill_value``."""
    if out is None:
        out = torch.empty_like(self, dtype=dtype or self.dtype, device=device,
                               memory_format=memory_format or torch.preserve_format)
    return fill_(out, fill_value)


def _full_like_unsupported(self, fill_value, *, dtype=None, layout=None, device=None, pin_memory=None,
                           memory_format=None, out=None):
    return _unsupported(self.shape, dtype or self.dtype, fill_value, device or self.device, layout, pin_memory, out)


def zeros_like(self, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None, out=None):
    return full_like(self, 0, dtype=dtype, device=device, memory_format=memory_format, out=out)


def _zeros_like_unsupported(self, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None,
                            out=None):
    return _full_like_unsupported(self, 0, dtype=dtype, layout=layout, device=device, pin_memory=pin_memory, out=out)


def ones_like(self, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None, out=None):
    return full_like(self, 1, dtype=dtype, device=device, memory_format=memory_format, out=out)


def _ones_like_unsupported(self, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None,
                           out=None):
    return _full_like_unsupported(self, 1, dtype=dtype, layout=layout, device=device, pin_memory=pin_memory, out=out)


# ---- new_full, new_zeros, new_ones: the size given, self's dtype and device by default


def new_full(self, size, fill_value, *, dtype=None, layout=None, device=None, pin_memory=None, out=None):
    """A contiguous ``size`` tensor of ``fill_value``, of ``self``'s dtype and device unless given."""
    if out is None:
        out = torch.empty(size, dtype=dtype or self.dtype, device=device or self.device)
    return fill_(out, fill_value)


def _new_full_unsupported(self, size, fill_value, *, dtype=None, layout=None, device=None, pin_memory=None,
                          out=None):
    return _unsupported(size, dtype or self.dtype, fill_value, device or self.device, layout, pin_memory, out)


def new_zeros(self, size, *, dtype=None, layout=None, device=None, pin_memory=None, out=None):
    return new_full(self, size, 0, dtype=dtype, device=device, out=out)


def _new_zeros_unsupported(self, size, *, dtype=None, layout=None, device=None, pin_memory=None, out=None):
    return _new_full_unsupported(self, size, 0, dtype=dtype, layout=layout, device=device, pin_memory=pin_memory,
                                 out=out)


def new_ones(self, size, *, dtype=None, layout=None, device=None, pin_memory=None, out=None):
    return new_full(self, size, 1, dtype=dtype, device=device, out=out)


def _new_ones_unsupported(self, size, *, dtype=None, layout=None, device=None, pin_memory=None, out=None):
    return _new_full_unsupported(self, size, 1, dtype=dtype, layout=layout, device=device, pin_memory=pin_memory,
                                 out=out)


# ---- fill and zero: the functional forms of fill_ and zero_


def fill(self, value, *, out=None):
    """A tensor like ``self`` of ``value`` (a number or a 0-d tensor)."""
    return full_like(self, value, out=out)


def _fill_unsupported(self, value, *, out=None):
    return _full_like_unsupported(self, value, out=out)


def zero(self, *, out=None):
    return full_like(self, 0, out=out)


def _zero_unsupported(self, *, out=None):
    return _full_like_unsupported(self, 0, out=out)


ATEN = (
    aten_rows("full", full, _full_unsupported, ("", "out"))
    + aten_rows("zeros", zeros, _zeros_unsupported, ("", "out"))
    + aten_rows("ones", ones, _ones_unsupported, ("", "out"))
    + aten_rows("full_like", full_like, _full_like_unsupported, ("", "out"))
    + aten_rows("zeros_like", zeros_like, _zeros_like_unsupported, ("", "out"))
    + aten_rows("ones_like", ones_like, _ones_like_unsupported, ("", "out"))
    + aten_rows("new_full", new_full, _new_full_unsupported, ("", "out"))
    + aten_rows("new_zeros", new_zeros, _new_zeros_unsupported, ("", "out"))
    + aten_rows("new_ones", new_ones, _new_ones_unsupported, ("", "out"))
    + aten_rows("fill", fill, _fill_unsupported, ("Scalar", "Tensor", "Scalar_out", "Tensor_out"))
    + aten_rows("zero", zero, _zero_unsupported, ("", "out"))
)
