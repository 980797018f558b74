"""add, sub, mul, div: every overload (Tensor/Scalar, out=, in-place, rounding modes)."""

import math

import numpy
import torch
import triton
import triton.language as tl

from ..codegen.elementwise import Elementwise, Promotion, aten_rows
from .tl_math import fmod, ieee_div, trunc

__all__ = ["add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_"]


@triton.jit
def _add(a, b, alpha):
    return a + b * alpha


@triton.jit
def _sub(a, b, alpha):
    return a - b * alpha


@triton.jit
def _mul(a, b):
    return a * b


@triton.jit
def _true_div(a, b):
    return ieee_div(a, b)


@triton.jit
def _trunc_div(a, b, RESULT: tl.constexpr):
    if a.dtype.is_floating():
        # PyTorch rounds the quotient to the result dtype before truncating it.
        return trunc(ieee_div(a, b).to(RESULT).to(a.dtype))
    else:
        return a // b  # integer division truncates toward zero


@triton.jit
def _floor_tail(b, mod, div, quotient, RESULT: tl.constexpr):
    """The end of PyTorch's div_floor_floating: ``div`` is (a - fmod(a, b)) / b;
    the floor is kept in the result dtype, as PyTorch keeps it."""
    div = tl.where((mod != 0) & ((b < 0) != (mod < 0)), div - 1, div)
    floor = tl.floor(div).to(RESULT).to(div.dtype)
    floor = tl.where(div - floor > 0.5, (floor + 1).to(RESULT).to(div.dtype), floor)
    return tl.where(div == 0, quotient * 0.0, floor)  # a signed zero, as copysign(0, a / b)


@triton.jit
def _floor_div(a, b, RESULT: tl.constexpr):
    if a.dtype.is_floating():
        mod = fmod(a, b)
        quotient = ieee_div(a, b)
        return tl.where(b == 0, quotient, _floor_tail(b, mod, ieee_div(a - mod, b), quotient, RESULT))
    else:
        q = a // b
        r = a - q * b
        return tl.where((r != 0) & ((r < 0) != (b < 0)), q - 1, q)


# PyTorch's CUDA kernels divide by a CPU scalar through its reciprocal, computed
# once in the op-math dtype; these forms give the same results bit for bit.


@triton.jit
def _trunc_mul(a, inverse):
    return trunc(a * inverse)


@triton.jit
def _floor_mul(a, b, inverse, RESULT: tl.constexpr):
    mod = fmod(a, b)
    return _floor_tail(b, mod, (a - mod) * inverse, a * inverse, RESULT)


# fast_id: the ids under which flag_gems.c_operators keeps their compiled kernels.
ADD = Elementwise(_add, "add", fast_id=1)
SUB = Elementwise(_sub, "sub", fast_id=2)
MUL = Elementwise(_mul, "mul", fast_id=3)
TRUE_DIV = Elementwise(_true_div, "true_div", Promotion.INT_TO_FLOAT, fast_id=4)
TRUNC_DIV = Elementwise(_trunc_div, "trunc_div", takes_result_dtype=True)
FLOOR_DIV = Elementwise(_floor_div, "floor_div", takes_result_dtype=True)
TRUNC_MUL = Elementwise(_trunc_mul, "trunc_mul")
FLOOR_MUL = Elementwise(_floor_mul, "floor_mul", takes_result_dtype=True)
_DIV_BY_MODE = {None: TRUE_DIV, "trunc": TRUNC_DIV, "floor": FLOOR_DIV}


def _alpha_unsupported(op, operands, alpha):
    """PyTorch's alpha rules: True and 1.0 equal 1 but are checked as a bool and a float."""
    if type(alpha) is int and alpha == 1:
        return None
    dtype = op.dtypes(operands)[1]
    if type(alpha) is bool:
        return None if dtype == torch.bool else "bool alpha with a non-bool result"
    if type(alpha) is float:
        return None if dtype.is_floating_point else "float alpha with an integral result"
    if type(alpha) is int:
        return None if -(2**63) <= alpha < 2**63 else "alpha out of int64 range"
    return f"alpha of type {type(alpha).__name__}"


def _has_bool(operands):
    return any(type(op) is bool or (isinstance(op, torch.Tensor) and op.dtype == torch.bool) for op in operands)


# ---- add / sub ------------------------------------------------------------------------


def _add_unsupported(self, other, *, alpha=1, out=None):
    return ADD.unsupported((self, other), out) or _alpha_unsupported(ADD, (self, other), alpha)


def _add_inplace_unsupported(self, other, *, alpha=1):
    return ADD.unsupported((self, other), inplace=True) or _alpha_unsupported(ADD, (self, other), alpha)


def _sub_unsupported(self, other, *, alpha=1, out=None):
    if _has_bool((self, other)):
        return "subtraction with a bool operand"
    return _add_unsupported(self, other, alpha=alpha, out=out)


def _sub_inplace_unsupported(self, other, *, alpha=1):
    if _has_bool((self, other)):
        return "subtraction with a bool operand"
    return _add_inplace_unsupported(self, other, alpha=alpha)


def add(self, other, *, alpha=1, out=None):
    """``self + alpha * other``; ``other`` a tensor or a number."""
    result = ADD.pointwise.fast(self, other, alpha) if out is None else None
    return result if result is not None else ADD((self, other), (alpha,), out)


def add_(self, other, *, alpha=1):
    return ADD.inplace((self, other), (alpha,))


def sub(self, other, *, alpha=1, out=None):
    """``self - alpha * other``; ``other`` a tensor or a number."""
    result = SUB.pointwise.fast(self, other, alpha) if out is None else None
    return result if result is not None else SUB((self, other), (alpha,), out)


def sub_(self, other, *, alpha=1):
    return SUB.inplace((self, other), (alpha,))


# ---- mul ------------------------------------------------------------------------------


def _mul_unsupported(self, other, *, out=None):
    return MUL.unsupported((self, other), out)


def _mul_inplace_unsupported(self, other):
    return MUL.unsupported((self, other), inplace=True)


def mul(self, other, *, out=None):
    result = MUL.pointwise.fast(self, other) if out is None else None
    return result if result is not None else MUL((self, other), (), out)


def mul_(self, other):
    return MUL.inplace((self, other))


# ---- div ------------------------------------------------------------------------------


def _div_unsupported_for(self, other, rounding_mode, out, inplace):
    if rounding_mode not in _DIV_BY_MODE:
        return f"rounding_mode {rounding_mode!r}"
    op = _DIV_BY_MODE[rounding_mode]
    reason = op.unsupported((self, other), out, inplace)
    if reason is None and rounding_mode is not None and not op.dtypes((self, other))[1].is_floating_point:
        # PyTorch raises ZeroDivisionError for integers (on the GPU too, for a number).
        if isinstance(other, torch.Tensor):
            if other.device.type == "cpu" and bool((other == 0).any()):
                return "integer division by zero"
        elif other == 0:
            return "integer division by zero"
    return reason


def _div_unsupported(self, other, *, rounding_mode=None, out=None):
    return _div_unsupported_for(self, other, rounding_mode, out, False)


def _div_inplace_unsupported(self, other, *, rounding_mode=None):
    return _div_unsupported_for(self, other, rounding_mode, None, True)


def _cpu_scalar(value):
    """``value`` as a Python number when it is one or a 0-d CPU tensor, else None."""
    if isinstance(value, torch.Tensor):
        return value.item() if value.dim() == 0 and value.device.type == "cpu" else None
    return value


def _divide(self, other, rounding_mode, out):
    op = _DIV_BY_MODE[rounding_mode]
    divisor = _cpu_scalar(other) if self.device.type == "cuda" else None
    result_dtype = op.dtypes((self, other))[1]
    if divisor is None or not result_dtype.is_floating_point:
        return op((self, other), (), out)
    # PyTorch's CUDA kernels multiply by the reciprocal of a CPU scalar, taken in op-math precision.
    if result_dtype == torch.float64:
        inverse = 1.0 / divisor if divisor != 0 else math.copysign(math.inf, divisor)
    else:
        with numpy.errstate(divide="ignore"):
            inverse = float(numpy.float32(1.0) / numpy.float32(divisor))
        divisor = float(numpy.float32(divisor))
    if rounding_mode is None or divisor == 0:  # PyTorch sends b == 0 to true division too
        return MUL((self, inverse), (), out)  # promotes exactly as the division would
    if rounding_mode == "trunc":
        return TRUNC_MUL((self, inverse), (), out)
    return FLOOR_MUL((self, divisor), (inverse,), out)


def div(self, other, *, rounding_mode=None, out=None):
    """``self / other``, truncated or floored when ``rounding_mode`` says so."""
    result = TRUE_DIV.pointwise.fast(self, other) if out is None and rounding_mode is None else None
    return result if result is not None else _divide(self, other, rounding_mode, out)


def div_(self, other, *, rounding_mode=None):
    return _divide(self, other, rounding_mode, self)


ATEN = (
    aten_rows("add", add, add_, _add_unsupported, _add_inplace_unsupported,
          ("Tensor", "Scalar", "out", "Scalar_out"))
    + aten_rows("sub", sub, sub_, _sub_unsupported, _sub_inplace_unsupported,
            ("Tensor", "Scalar", "out", "Scalar_out"))
    + aten_rows("mul", mul, mul_, _mul_unsupported, _mul_inplace_unsupported,
            ("Tensor", "Scalar", "out", "Scalar_out"))
    + aten_rows("div", div, div_, _div_unsupported, _div_inplace_unsupported,
            ("Tensor", "Scalar", "Tensor_mode", "Scalar_mode", "out", "out_mode", "Scalar_out", "Scalar_mode_out"))
)
