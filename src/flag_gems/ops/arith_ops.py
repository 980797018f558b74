"""add, sub, mul, div: every overload (Tensor/Scalar, out=, in-place, rounding modes)."""

import math

import numpy
import torch
import triton
import triton.language as tl

from .. import runtime
from ..codegen.pointwise import COMPUTE_DTYPE, Pointwise, output_like
from ..dispatch import Row
from .tl_math import fmod, ieee_div, trunc

__all__ = ["add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_"]

_SUPPORTED = runtime.supported_dtypes()
_NUMBERS = (bool, int, float)


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
ADD = Pointwise(_add, "add", fast_id=1)
SUB = Pointwise(_sub, "sub", fast_id=2)
MUL = Pointwise(_mul, "mul", fast_id=3)
TRUE_DIV = Pointwise(_true_div, "true_div", fast_id=4)
TRUNC_DIV = Pointwise(_trunc_div, "trunc_div", takes_result_dtype=True)
FLOOR_DIV = Pointwise(_floor_div, "floor_div", takes_result_dtype=True)
TRUNC_MUL = Pointwise(_trunc_mul, "trunc_mul")
FLOOR_MUL = Pointwise(_floor_mul, "floor_mul", takes_result_dtype=True)
_DIV_BY_MODE = {None: TRUE_DIV, "trunc": TRUNC_DIV, "floor": FLOOR_DIV}


# ---- type promotion and the checks that send a call to native -------------------------


def _result_dtype(self, other):
    if isinstance(other, torch.Tensor):
        if other.dtype == self.dtype:
            return self.dtype
    elif self.dtype.is_floating_point and type(other) in _NUMBERS:
        return self.dtype
    return torch.result_type(self, other)


def _true_div_dtype(self, other):
    dtype = _result_dtype(self, other)
    return dtype if dtype.is_floating_point else torch.get_default_dtype()


def _broadcast_shape(self, other):
    if isinstance(other, torch.Tensor) and other.shape != self.shape:
        return torch.broadcast_shapes(self.shape, other.shape)
    return self.shape


def _operands_unsupported(self, other):
    if self.dtype not in _SUPPORTED:
        return f"dtype {self.dtype} is not supported"
    if isinstance(other, torch.Tensor):
        if other.dtype not in _SUPPORTED:
            return f"dtype {other.dtype} is not supported"
        if other.device != self.device and not (other.dim() == 0 and other.device.type == "cpu"):
            return "operands on different devices"
        if other.shape != self.shape:
            try:
                torch.broadcast_shapes(self.shape, other.shape)
            except RuntimeError:
                return "shapes do not broadcast"
    elif type(other) not in _NUMBERS:
        return f"operand of type {type(other).__name__}"
    elif type(other) is int and not -(2**63) <= other < 2**63:
        return "integer operand out of int64 range"
    return None


def _shares_memory(a, b):
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def _destination_unsupported(dest, shape, dtype, self, other):
    """Reasons ``dest`` (an out= tensor or self for in-place) can't be written here;
    PyTorch then resizes it, or raises the error users expect."""
    if dest.dtype not in _SUPPORTED:
        return f"output dtype {dest.dtype} is not supported"
    if dest.device != self.device:
        return "output on another device"
    if dest.shape != shape:
        return "output shape differs from the result shape"
    if not torch.can_cast(dtype, dest.dtype):
        return f"result type {dtype} can't be cast to {dest.dtype}"
    if dest.numel() > 1 and torch._debug_has_internal_overlap(dest) == 1:
        return "output has internal overlap"
    for src in (self, other):
        if isinstance(src, torch.Tensor) and src is not dest and _shares_memory(src, dest):
            same_view = (src.data_ptr() == dest.data_ptr() and src.stride() == dest.stride()
                         and src.shape == dest.shape)
            if not same_view:
                return "output overlaps an input"
    return None


def _alpha_unsupported(dtype, alpha):
    if type(alpha) is bool:
        return None if dtype == torch.bool else "bool alpha with a non-bool result"
    if type(alpha) is float:
        return None if dtype.is_floating_point else "float alpha with an integral result"
    if type(alpha) is int:
        return None if -(2**63) <= alpha < 2**63 else "alpha out of int64 range"
    return f"alpha of type {type(alpha).__name__}"


def _call_unsupported(self, other, dtype_of, out, inplace, alpha=1):
    """Why a call can't run here, or None; ``dtype_of(self, other)`` is its result dtype."""
    reason = _operands_unsupported(self, other)
    if reason is not None:
        return reason
    dtype = dtype_of(self, other)
    if not (type(alpha) is int and alpha == 1):  # True and 1.0 equal 1 but are checked like torch
        reason = _alpha_unsupported(dtype, alpha)
    if reason is None and (out is not None or inplace):
        dest = self if inplace else out
        reason = _destination_unsupported(dest, _broadcast_shape(self, other), dtype, self, other)
    return reason


def _run(op, self, other, extra, dtype, out):
    if out is not None and out.dtype == dtype:
        return op(out, COMPUTE_DTYPE[dtype], self, other, *extra)
    shape = _broadcast_shape(self, other)
    same_device = isinstance(other, torch.Tensor) and other.is_cpu == self.is_cpu
    tensors = (self, other) if same_device else (self,)
    result = op(output_like(shape, dtype, self.device, tensors), COMPUTE_DTYPE[dtype], self, other, *extra)
    # An out= of another dtype receives the result rounded to its own dtype first, as in PyTorch.
    return result if out is None else out.copy_(result)


# ---- add / sub ------------------------------------------------------------------------


def _add_unsupported(self, other, *, alpha=1, out=None):
    return _call_unsupported(self, other, _result_dtype, out, False, alpha)


def _add_inplace_unsupported(self, other, *, alpha=1):
    return _call_unsupported(self, other, _result_dtype, None, True, alpha)


def _has_bool(self, other):
    return self.dtype == torch.bool or type(other) is bool or (
        isinstance(other, torch.Tensor) and other.dtype == torch.bool)


def _sub_unsupported(self, other, *, alpha=1, out=None):
    if _has_bool(self, other):
        return "subtraction with a bool operand"
    return _add_unsupported(self, other, alpha=alpha, out=out)


def _sub_inplace_unsupported(self, other, *, alpha=1):
    if _has_bool(self, other):
        return "subtraction with a bool operand"
    return _add_inplace_unsupported(self, other, alpha=alpha)


def add(self, other, *, alpha=1, out=None):
    """``self + alpha * other``; ``other`` a tensor or a number."""
    result = ADD.fast(self, other, alpha) if out is None else None
    return result if result is not None else _run(ADD, self, other, (alpha,), _result_dtype(self, other), out)


def add_(self, other, *, alpha=1):
    return _run(ADD, self, other, (alpha,), _result_dtype(self, other), self)


def sub(self, other, *, alpha=1, out=None):
    """``self - alpha * other``; ``other`` a tensor or a number."""
    result = SUB.fast(self, other, alpha) if out is None else None
    return result if result is not None else _run(SUB, self, other, (alpha,), _result_dtype(self, other), out)


def sub_(self, other, *, alpha=1):
    return _run(SUB, self, other, (alpha,), _result_dtype(self, other), self)


# ---- mul ------------------------------------------------------------------------------


def _mul_unsupported(self, other, *, out=None):
    return _call_unsupported(self, other, _result_dtype, out, False)


def _mul_inplace_unsupported(self, other):
    return _call_unsupported(self, other, _result_dtype, None, True)


def mul(self, other, *, out=None):
    result = MUL.fast(self, other) if out is None else None
    return result if result is not None else _run(MUL, self, other, (), _result_dtype(self, other), out)


def mul_(self, other):
    return _run(MUL, self, other, (), _result_dtype(self, other), self)


# ---- div ------------------------------------------------------------------------------


def _div_dtype(self, other, rounding_mode):
    return _true_div_dtype(self, other) if rounding_mode is None else _result_dtype(self, other)


def _div_unsupported_for(self, other, rounding_mode, out, inplace):
    if rounding_mode not in _DIV_BY_MODE:
        return f"rounding_mode {rounding_mode!r}"
    reason = _call_unsupported(self, other, lambda a, b: _div_dtype(a, b, rounding_mode), out, inplace)
    if reason is None and rounding_mode is not None and not _div_dtype(self, other, rounding_mode).is_floating_point:
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
    dtype = _div_dtype(self, other, rounding_mode)
    divisor = _cpu_scalar(other) if self.device.type == "cuda" and dtype.is_floating_point else None
    if divisor is None:
        return _run(_DIV_BY_MODE[rounding_mode], self, other, (), dtype, out)
    # As PyTorch's CUDA kernels do: multiply by the reciprocal, taken in op-math precision.
    if dtype == torch.float64:
        inverse = 1.0 / divisor if divisor != 0 else math.copysign(math.inf, divisor)
    else:
        with numpy.errstate(divide="ignore"):
            inverse = float(numpy.float32(1.0) / numpy.float32(divisor))
        divisor = float(numpy.float32(divisor))
    if rounding_mode is None or divisor == 0:
        return _run(MUL, self, inverse, (), dtype, out)
    if rounding_mode == "trunc":
        return _run(TRUNC_MUL, self, inverse, (), dtype, out)
    return _run(FLOOR_MUL, self, divisor, (inverse,), dtype, out)


def div(self, other, *, rounding_mode=None, out=None):
    """``self / other``, truncated or floored when ``rounding_mode`` says so."""
    result = TRUE_DIV.fast(self, other) if out is None and rounding_mode is None else None
    return result if result is not None else _divide(self, other, rounding_mode, out)


def div_(self, other, *, rounding_mode=None):
    return _divide(self, other, rounding_mode, self)


def _rows(name, functional, inplace, unsupported, inplace_unsupported, overloads):
    """Functional and out= overloads share ``functional``; in-place ones ``inplace``."""
    rows = []
    for overload in overloads:
        rows.append(Row(f"{name}.{overload}", functional, unsupported))
        if "out" not in overload:
            rows.append(Row(f"{name}_.{overload}", inplace, inplace_unsupported))
    return rows


ATEN = (
    _rows("add", add, add_, _add_unsupported, _add_inplace_unsupported,
          ("Tensor", "Scalar", "out", "Scalar_out"))
    + _rows("sub", sub, sub_, _sub_unsupported, _sub_inplace_unsupported,
            ("Tensor", "Scalar", "out", "Scalar_out"))
    + _rows("mul", mul, mul_, _mul_unsupported, _mul_inplace_unsupported,
            ("Tensor", "Scalar", "out", "Scalar_out"))
    + _rows("div", div, div_, _div_unsupported, _div_inplace_unsupported,
            ("Tensor", "Scalar", "Tensor_mode", "Scalar_mode", "out", "out_mode", "Scalar_out", "Scalar_mode_out"))
)
