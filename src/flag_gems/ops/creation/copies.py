"""The view-copy operators alias_copy, t_copy and lift_fresh_copy, with their ``out=``
forms: the view's elements written to a new contiguous tensor (or into ``out``, any
strides) by movement's copy kernel."""

import torch

from ...dispatch import aten_rows
from ...utils.layout import separate_output_reason
from ..movement.copy import copy_
from .common import SUPPORTED, out_unsupported

__all__ = ["alias_copy", "t_copy", "lift_fresh_copy"]


def _copied(view, out):
    if out is None:
        out = torch.empty(view.shape, dtype=view.dtype, device=view.device)
    return copy_(out, view)


def _copy_unsupported(self, view_shape, out):
    if self.dtype not in SUPPORTED:
        return f"dtype {self.dtype} is not supported"
    if self.is_neg() or self.is_conj():
        return "a lazy negation or conjugation bit"
    if out is not None:
        return out_unsupported(out, view_shape, self.dtype, self.device) or separate_output_reason(out, self)
    return None


def alias_copy(self, *, out=None):
    """A contiguous copy of ``self``."""
    return _copied(self, out)


def _alias_copy_unsupported(self, *, out=None):
    return _copy_unsupported(self, self.shape, out)


def lift_fresh_copy(self, *, out=None):
    """A contiguous copy of ``self`` (what ``torch.tensor`` lifts a constant with under tracing)."""
    return _copied(self, out)


def t_copy(self, *, out=None):
    """A contiguous copy of ``self.t()`` (``self`` of at most 2 dimensions)."""
    return _copied(self.t(), out)


def _t_copy_unsupported(self, *, out=None):
    if self.dim() > 2:
        return "more than 2 dimensions (native raises)"
    return _copy_unsupported(self, self.shape[::-1], out)


ATEN = (
    aten_rows("alias_copy", alias_copy, _alias_copy_unsupported, ("", "out"))
    + aten_rows("t_copy", t_copy, _t_copy_unsupported, ("", "out"))
    + aten_rows("lift_fresh_copy", lift_fresh_copy, _alias_copy_unsupported, ("", "out"))
)
