"""polar: the complex tensor ``abs * (cos(angle) + i sin(angle))``, broadcast, with its
``out=`` form.

Triton has no complex type: the real and the imaginary parts are written as two
elementwise results into the interleaved float view of the complex result (any
broadcasting and strides, as every elementwise kernel takes them).
"""

import torch
import triton
import triton.language as tl  # noqa: F401 - Triton's interpreter needs it beside every formula

from ...codegen.pointwise import Pointwise, output_like
from ...codegen.tl_math import cos, sin
from ...dispatch import aten_rows
from ...utils.dtypes import COMPUTE_DTYPE
from ...utils.layout import broadcast_shape, separate_output_reason
from .common import SUPPORTED

__all__ = ["polar"]

_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}  # what PyTorch's polar takes


@triton.jit
def _real_part(magnitude, angle):
    return magnitude * cos(angle)


@triton.jit
def _imaginary_part(magnitude, angle):
    return magnitude * sin(angle)


REAL_PART = Pointwise(_real_part, "polar_real")
IMAGINARY_PART = Pointwise(_imaginary_part, "polar_imaginary")


def polar(magnitude, angle, *, out=None):
    """``magnitude * exp(i * angle)`` (aten's ``abs`` is the magnitude), of complex64 for
    float32 inputs and complex128 for float64."""
    if out is None:
        out = output_like(broadcast_shape((magnitude, angle)), _COMPLEX[magnitude.dtype], magnitude.device,
                          (magnitude, angle))
    parts = torch.view_as_real(out)
    compute = COMPUTE_DTYPE[magnitude.dtype]
    REAL_PART(parts.select(-1, 0), compute, magnitude, angle)
    IMAGINARY_PART(parts.select(-1, 1), compute, magnitude, angle)
    return out


def _polar_unsupported(magnitude, angle, *, out=None):
    if magnitude.dtype not in _COMPLEX or angle.dtype != magnitude.dtype or magnitude.dtype not in SUPPORTED:
        return "inputs other than two float32 or two float64 tensors (native raises)"
    if angle.device != magnitude.device:
        return "inputs on two devices"
    if magnitude.is_neg() or angle.is_neg():
        return "an input with a lazy negation bit"
    try:
        shape = broadcast_shape((magnitude, angle))
    except RuntimeError:
        return "inputs that do not broadcast (native raises)"
    if out is not None:
        if out.shape != shape or out.dtype != _COMPLEX[magnitude.dtype] or out.device != magnitude.device:
            return "out differs from the result (native resizes it or raises)"
        return separate_output_reason(out, magnitude, angle)
    return None


ATEN = aten_rows("polar", polar, _polar_unsupported, ("", "out"))
