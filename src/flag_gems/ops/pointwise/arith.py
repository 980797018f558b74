"""add, sub, mul, div: every overload (Tensor/Scalar, out=, in-place, rounding modes)."""

import math

import numpy
import torch
import triton
import triton.language as tl

from ...codegen.elementwise import Elementwise, Promotion, aten_rows
from ...utils.dtypes import promoted_dtype
from ...dispatch import Row
from ...fastpath import CppRoute
from ...utils.dtypes import number_as_tensor
from ...codegen.tl_math import device_math, ieee_div, trunc
from ...codegen.tl_math import fmod as float_fmod  # the name fmod is the aten operator's here

__all__ = ["add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "rsub", "floor_divide", "floor_divide_",
           "remainder", "remainder_", "fmod", "fmod_", "pow", "pow_", "maximum", "minimum", "fmax", "fmin",
           "clamp", "clamp_", "clamp_min", "clamp_min_", "clamp_max", "clamp_max_", "lerp", "lerp_",
           "addcmul", "addcmul_", "addcdiv", "addcdiv_", "hypot", "hypot_", "atan2", "atan2_", "copysign",
           "copysign_", "nextafter", "nextafter_"]


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
        mod = float_fmod(a, b)
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
    mod = float_fmod(a, b)
    return _floor_tail(b, mod, (a - mod) * inverse, a * inverse, RESULT)


ADD = Elementwise(_add, "add")
SUB = Elementwise(_sub, "sub")
MUL = Elementwise(_mul, "mul")
TRUE_DIV = Elementwise(_true_div, "true_div", Promotion.INT_TO_FLOAT)
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
    return ADD((self, other), (alpha,), out)


def add_(self, other, *, alpha=1):
    return ADD.inplace((self, other), (alpha,))


def sub(self, other, *, alpha=1, out=None):
    """``self - alpha * other``; ``other`` a tensor or a number."""
    return SUB((self, other), (alpha,), out)


def sub_(self, other, *, alpha=1):
    return SUB.inplace((self, other), (alpha,))


# ---- mul ------------------------------------------------------------------------------


def _mul_unsupported(self, other, *, out=None):
    return MUL.unsupported((self, other), out)


def _mul_inplace_unsupported(self, other):
    return MUL.unsupported((self, other), inplace=True)


def mul(self, other, *, out=None):
    return MUL((self, other), (), out)


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
    # A 0-d tensor divisor can promote where a number would not (int32 / tensor(2.5, f64) is f64).
    if divisor is None or not result_dtype.is_floating_point or MUL.dtypes((self, 1.0))[1] != result_dtype:
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
    return _divide(self, other, rounding_mode, out)


def div_(self, other, *, rounding_mode=None):
    return _divide(self, other, rounding_mode, self)


# ---- more binary and ternary arithmetic --------------------------------------------------

_libdevice_pow = device_math("pow", numpy.power)
_libdevice_hypot = device_math("hypot", numpy.hypot)
_libdevice_atan2 = device_math("atan2", numpy.arctan2)
_libdevice_copysign = device_math("copysign", numpy.copysign)
_libdevice_nextafter = device_math("nextafter", numpy.nextafter)


def _floats(dtype):
    return dtype.is_floating_point


def _reals(dtype):
    return dtype != torch.bool


@triton.jit
def _rsub(a, b, alpha):
    return b - a * alpha


@triton.jit
def _remainder(a, b):
    """Python's modulo: the sign of the divisor."""
    if a.dtype.is_floating():
        r = float_fmod(a, b)
    else:
        r = a % b  # C remainder: the sign of the dividend
    return tl.where((r != 0) & ((r < 0) != (b < 0)), r + b, r)


@triton.jit
def _fmod(a, b):
    if a.dtype.is_floating():
        return float_fmod(a, b)
    else:
        return a % b


@triton.jit
def _ieee_sqrt(x):
    if x.dtype == tl.float64:
        return tl.sqrt(x)  # sqrt.rn.f64; sqrt_rn takes fp32 only
    else:
        return tl.math.sqrt_rn(x)


@triton.jit
def _pow_by_number(a, e):
    """PyTorch's special cases for a number exponent (they differ from pow at
    e.g. pow(-inf, 0.5) = inf but sqrt(-inf) = nan)."""
    if e == 0.5:
        r = _ieee_sqrt(a)
    elif e == 2.0:
        r = a * a
    elif e == 3.0:
        r = a * a * a
    elif e == -0.5:
        r = ieee_div(tl.full(a.shape, 1.0, a.dtype), _ieee_sqrt(a))
    elif e == -1.0:
        r = ieee_div(tl.full(a.shape, 1.0, a.dtype), a)
    elif e == -2.0:
        r = ieee_div(tl.full(a.shape, 1.0, a.dtype), a * a)
    else:
        r = _libdevice_pow(a, e + tl.zeros(a.shape, a.dtype))
    return r


@triton.jit
def _pow(a, b):
    if a.dtype.is_floating():
        if len(b.shape) == 0:
            return _pow_by_number(a, b)
        else:
            return _libdevice_pow(a, b)
    else:
        # Integer power by squaring; negative exponents give 1, -1 or 0 as in PyTorch.
        result = tl.full(a.shape, 1, a.dtype) if len(a.shape) > 0 else a * 0 + 1
        base = a
        e = b
        for _ in tl.static_range(63):
            result = tl.where((e & 1) != 0, result * base, result)
            base = base * base
            e = e >> 1
        negative = tl.where(a == 1, 1, tl.where(a == -1, tl.where((b & 1) == 0, 1, -1), 0))
        return tl.where(b < 0, negative.to(a.dtype), result)


@triton.jit
def _maximum(a, b):
    return tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def _minimum(a, b):
    return tl.minimum(a, b, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def _fmax(a, b):
    """The larger, ignoring a NaN when the other is a number."""
    return tl.where(a != a, b, tl.where(b != b, a, tl.maximum(a, b)))


@triton.jit
def _fmin(a, b):
    return tl.where(a != a, b, tl.where(b != b, a, tl.minimum(a, b)))


@triton.jit
def _clamp(x, low, high):
    return tl.minimum(tl.maximum(x, low, propagate_nan=tl.PropagateNan.ALL), high,
                      propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def _lerp(a, b, weight):
    # PyTorch's form: exact at both ends and monotonic.
    return tl.where(tl.abs(weight) < 0.5, a + weight * (b - a), b - (b - a) * (1 - weight))


@triton.jit
def _addcmul(x, t1, t2, value):
    return x + value * t1 * t2


@triton.jit
def _addcdiv(x, t1, t2, value):
    return x + value * ieee_div(t1, t2)


@triton.jit
def _hypot(a, b):
    return _libdevice_hypot(a, b)


@triton.jit
def _atan2(a, b):
    return _libdevice_atan2(a, b)


@triton.jit
def _copysign(a, b):
    return _libdevice_copysign(a, b)


@triton.jit
def _nextafter(a, b):
    return _libdevice_nextafter(a, b)


RSUB = Elementwise(_rsub, "rsub")
REMAINDER = Elementwise(_remainder, "remainder", accepts=_reals)
FMOD = Elementwise(_fmod, "fmod", accepts=_reals)
POW = Elementwise(_pow, "pow", accepts=_reals)
MAXIMUM = Elementwise(_maximum, "maximum")
MINIMUM = Elementwise(_minimum, "minimum")
FMAX = Elementwise(_fmax, "fmax", accepts=_reals)
FMIN = Elementwise(_fmin, "fmin", accepts=_reals)
CLAMP = Elementwise(_clamp, "clamp", accepts=_reals, out_casts=False)
MAXIMUM_REAL = Elementwise(_maximum, "clamp_min", accepts=_reals, out_casts=False)
MINIMUM_REAL = Elementwise(_minimum, "clamp_max", accepts=_reals, out_casts=False)
LERP = Elementwise(_lerp, "lerp", accepts=_floats)
ADDCMUL = Elementwise(_addcmul, "addcmul")
ADDCDIV = Elementwise(_addcdiv, "addcdiv", accepts=_floats)
HYPOT = Elementwise(_hypot, "hypot", accepts=_floats)
ATAN2 = Elementwise(_atan2, "atan2", Promotion.INT_TO_FLOAT)
COPYSIGN = Elementwise(_copysign, "copysign", Promotion.INT_TO_FLOAT)
# Halves step to the next half, not the next fp32: PyTorch's own kernel takes them.
NEXTAFTER = Elementwise(_nextafter, "nextafter", accepts=lambda dtype: dtype in (torch.float32, torch.float64))


def _binary(op, extra_check=None):
    """functional, in-place and their conditions for ``op(self, other)``."""

    def functional(self, other, *, out=None):
        return op((self, other), (), out)

    def inplace(self, other):
        return op.inplace((self, other))

    def unsupported(self, other, *, out=None):
        return (extra_check and extra_check(self, other)) or op.unsupported((self, other), out)

    def inplace_unsupported(self, other):
        return (extra_check and extra_check(self, other)) or op.unsupported((self, other), inplace=True)

    return functional, inplace, unsupported, inplace_unsupported


def _no_integer_zero_divisor(self, other):
    """PyTorch raises ZeroDivisionError for an integer zero divisor (on CPU tensors and numbers)."""
    dtype = promoted_dtype((self, other))
    if dtype.is_floating_point:
        return None
    if isinstance(other, torch.Tensor):
        return "integer division by zero" if other.device.type == "cpu" and bool((other == 0).any()) else None
    return "integer division by zero" if other == 0 else None


def _no_negative_integer_power(self, exponent):
    if isinstance(exponent, (int, float)) and not isinstance(exponent, bool) and isinstance(self, torch.Tensor):
        if not self.dtype.is_floating_point and type(exponent) is int and exponent < 0:
            return "integers to negative integer powers"
    return None


remainder, remainder_, _remainder_unsupported, _remainder_inplace_unsupported = _binary(
    REMAINDER, _no_integer_zero_divisor)
fmod, fmod_, _fmod_unsupported, _fmod_inplace_unsupported = _binary(FMOD, _no_integer_zero_divisor)
_, pow_, _pow_unsupported, _pow_inplace_unsupported = _binary(POW, _no_negative_integer_power)
maximum, _, _maximum_unsupported, _ = _binary(MAXIMUM)
minimum, _, _minimum_unsupported, _ = _binary(MINIMUM)
fmax, _, _fmax_unsupported, _ = _binary(FMAX)
fmin, _, _fmin_unsupported, _ = _binary(FMIN)
hypot, hypot_, _hypot_unsupported, _hypot_inplace_unsupported = _binary(HYPOT)
atan2, atan2_, _atan2_unsupported, _atan2_inplace_unsupported = _binary(ATAN2)
copysign, copysign_, _copysign_unsupported, _copysign_inplace_unsupported = _binary(COPYSIGN)
nextafter, nextafter_, _nextafter_unsupported, _nextafter_inplace_unsupported = _binary(NEXTAFTER)


def _number_in_dtype(number, dtype):
    """``number`` as PyTorch's kernels see it beside tensors of result ``dtype``: cast to
    it first, so an int wraps (255 ** int8 is (-1) ** int8) and a float rounds to a half
    type (70000 ** fp16 is inf). fp32 and fp64 numbers reach the kernel rounded alike."""
    if dtype in (torch.float16, torch.bfloat16):
        return torch.tensor(number, dtype=dtype).item()
    if type(number) is int and not dtype.is_floating_point:
        info = torch.iinfo(dtype)
        return (number - info.min) % (1 << info.bits) + info.min
    return number


def pow(self, exponent, *, out=None):
    """``self ** exponent``; ``self`` may be a number (pow.Scalar)."""
    if not isinstance(self, torch.Tensor):
        result_dtype = POW.dtypes((self, exponent))[1]
        self = _number_in_dtype(self, result_dtype)
        if out is None:  # pow.Scalar's result is contiguous whatever the exponent's layout
            out = torch.empty(exponent.shape, dtype=result_dtype, device=exponent.device)
    return POW((self, exponent), (), out)


def _pow_number_base_natively(self, exponent, *, out=None):
    """Native pow.Scalar on a GPU wraps the number in a device tensor and redispatches to
    pow.Tensor_Tensor(_out), whose Python router PyTorch cannot call with it (it asserts
    that wrapped numbers live on the CPU). Instead, as native: the contiguous result
    (or ``out`` resized) filled with ones for a base of 1 (not True), else the power with the
    number in a 0-d CPU tensor of the result dtype."""
    if exponent.is_cpu or type(self) not in (bool, int, float, complex):
        return NotImplemented
    dtype = torch.result_type(self, exponent)
    fill = type(self) is not bool and self == 1  # native's test: True is no 1 there
    if out is None:
        out = torch.empty(exponent.shape, dtype=dtype, device=exponent.device)
    elif fill and out.shape != exponent.shape:
        out.resize_(exponent.shape)
    if fill:
        return out.fill_(1)
    return torch.pow(number_as_tensor(self, dtype), exponent, out=out)


def rsub(self, other, *, alpha=1, out=None):
    """``other - alpha * self``."""
    return RSUB((self, other), (alpha,), out)


def _rsub_unsupported(self, other, *, alpha=1, out=None):
    if _has_bool((self, other)):
        return "subtraction with a bool operand"
    return RSUB.unsupported((self, other), out) or _alpha_unsupported(RSUB, (self, other), alpha)


def floor_divide(self, other, *, out=None):
    return _divide(self, other, "floor", out)


def floor_divide_(self, other):
    return _divide(self, other, "floor", self)


def _floor_divide_unsupported(self, other, *, out=None):
    return _div_unsupported_for(self, other, "floor", out, False)


def _floor_divide_inplace_unsupported(self, other):
    return _div_unsupported_for(self, other, "floor", None, True)


def _bounds(low, high):
    """Operands and formula for clamp with either bound possibly None."""
    if low is None:
        return MINIMUM_REAL, (high,)
    if high is None:
        return MAXIMUM_REAL, (low,)
    return CLAMP, (low, high)


def clamp(self, min=None, max=None, *, out=None):
    op, bounds = _bounds(min, max)
    return op((self, *bounds), (), out)


def clamp_(self, min=None, max=None):
    op, bounds = _bounds(min, max)
    return op.inplace((self, *bounds))


def _clamp_unsupported(self, min=None, max=None, *, out=None):
    if min is None and max is None:
        return "neither min nor max"
    op, bounds = _bounds(min, max)
    return op.unsupported((self, *bounds), out)


def _clamp_inplace_unsupported(self, min=None, max=None):
    if min is None and max is None:
        return "neither min nor max"
    op, bounds = _bounds(min, max)
    return op.unsupported((self, *bounds), inplace=True)


def clamp_min(self, min, *, out=None):
    return MAXIMUM_REAL((self, min), (), out)


def clamp_min_(self, min):
    return MAXIMUM_REAL.inplace((self, min))


def clamp_max(self, max, *, out=None):
    return MINIMUM_REAL((self, max), (), out)


def clamp_max_(self, max):
    return MINIMUM_REAL.inplace((self, max))


_, _, _clamp_min_unsupported, _clamp_min_inplace_unsupported = _binary(MAXIMUM_REAL)
_, _, _clamp_max_unsupported, _clamp_max_inplace_unsupported = _binary(MINIMUM_REAL)


def lerp(self, end, weight, *, out=None):
    """``self + weight * (end - self)``, in PyTorch's exact form."""
    return LERP((self, end, weight), (), out)


def lerp_(self, end, weight):
    return LERP.inplace((self, end, weight))


def _lerp_dtypes_unsupported(self, end, weight):
    # lerp does not promote: end (and a weight tensor) must have self's floating dtype.
    if not self.dtype.is_floating_point or not isinstance(end, torch.Tensor) or end.dtype != self.dtype or (
            isinstance(weight, torch.Tensor) and weight.dtype != self.dtype):
        return "lerp needs operands of one floating dtype"
    return None


def _lerp_unsupported(self, end, weight, *, out=None):
    return _lerp_dtypes_unsupported(self, end, weight) or LERP.unsupported((self, end, weight), out)


def _lerp_inplace_unsupported(self, end, weight):
    return _lerp_dtypes_unsupported(self, end, weight) or LERP.unsupported((self, end, weight), inplace=True)


def addcmul(self, tensor1, tensor2, *, value=1, out=None):
    """``self + value * tensor1 * tensor2``."""
    return ADDCMUL((self, tensor1, tensor2), (value,), out)


def addcmul_(self, tensor1, tensor2, *, value=1):
    return ADDCMUL.inplace((self, tensor1, tensor2), (value,))


def addcdiv(self, tensor1, tensor2, *, value=1, out=None):
    """``self + value * tensor1 / tensor2``."""
    return ADDCDIV((self, tensor1, tensor2), (value,), out)


def addcdiv_(self, tensor1, tensor2, *, value=1):
    return ADDCDIV.inplace((self, tensor1, tensor2), (value,))


def _ternary_value_unsupported(op, self, tensor1, tensor2, value, out, inplace):
    return op.unsupported((self, tensor1, tensor2), out, inplace) or _alpha_unsupported(
        op, (self, tensor1, tensor2), value)


def _addcmul_unsupported(self, tensor1, tensor2, *, value=1, out=None):
    return _ternary_value_unsupported(ADDCMUL, self, tensor1, tensor2, value, out, False)


def _addcmul_inplace_unsupported(self, tensor1, tensor2, *, value=1):
    return _ternary_value_unsupported(ADDCMUL, self, tensor1, tensor2, value, None, True)


def _addcdiv_unsupported(self, tensor1, tensor2, *, value=1, out=None):
    return _ternary_value_unsupported(ADDCDIV, self, tensor1, tensor2, value, out, False)


def _addcdiv_inplace_unsupported(self, tensor1, tensor2, *, value=1):
    return _ternary_value_unsupported(ADDCDIV, self, tensor1, tensor2, value, None, True)


# The hottest overloads try the C++ wrappers straight from the router (alpha's default is 1).
_CPP_ROUTES = {"add.Tensor": CppRoute(ADD.pointwise, alpha=1), "sub.Tensor": CppRoute(SUB.pointwise, alpha=1),
               "mul.Tensor": CppRoute(MUL.pointwise), "div.Tensor": CppRoute(TRUE_DIV.pointwise)}

ATEN = (
    aten_rows("add", add, add_, _add_unsupported, _add_inplace_unsupported,
          ("Tensor", "Scalar", "out", "Scalar_out"))
    + aten_rows("sub", sub, sub_, _sub_unsupported, _sub_inplace_unsupported,
            ("Tensor", "Scalar", "out", "Scalar_out"))
    + aten_rows("mul", mul, mul_, _mul_unsupported, _mul_inplace_unsupported,
            ("Tensor", "Scalar", "out", "Scalar_out"))
    + aten_rows("div", div, div_, _div_unsupported, _div_inplace_unsupported,
            ("Tensor", "Scalar", "Tensor_mode", "Scalar_mode", "out", "out_mode", "Scalar_out", "Scalar_mode_out"))
    + aten_rows("rsub", rsub, None, _rsub_unsupported, None, ("Tensor", "Scalar", "Tensor_out", "Scalar_out"))
    + aten_rows("floor_divide", floor_divide, None, _floor_divide_unsupported, None,
                ("", "Scalar", "out", "Scalar_out"))
    + [Row(f"floor_divide_.{overload}", floor_divide_, _floor_divide_inplace_unsupported)
       for overload in ("Tensor", "Scalar")]
    + aten_rows("remainder", remainder, remainder_, _remainder_unsupported, _remainder_inplace_unsupported,
                ("Tensor", "Scalar", "Tensor_out", "Scalar_out"))
    + aten_rows("fmod", fmod, fmod_, _fmod_unsupported, _fmod_inplace_unsupported,
                ("Tensor", "Scalar", "Tensor_out", "Scalar_out"))
    + aten_rows("pow", pow, None, _pow_unsupported, None,
                ("Tensor_Tensor", "Tensor_Scalar", "Tensor_Tensor_out", "Tensor_Scalar_out"))
    + [Row(f"pow.{overload}", pow, _pow_unsupported, instead_of_native=_pow_number_base_natively)
       for overload in ("Scalar", "Scalar_out")]
    + [Row("pow_.Scalar", pow_, _pow_inplace_unsupported), Row("pow_.Tensor", pow_, _pow_inplace_unsupported)]
    + aten_rows("maximum", maximum, None, _maximum_unsupported, None, ("", "out"))
    + aten_rows("minimum", minimum, None, _minimum_unsupported, None, ("", "out"))
    + aten_rows("fmax", fmax, None, _fmax_unsupported, None, ("", "out"))
    + aten_rows("fmin", fmin, None, _fmin_unsupported, None, ("", "out"))
    + aten_rows("clamp", clamp, clamp_, _clamp_unsupported, _clamp_inplace_unsupported,
                ("", "Tensor", "out", "Tensor_out"))
    + aten_rows("clamp_min", clamp_min, clamp_min_, _clamp_min_unsupported, _clamp_min_inplace_unsupported,
                ("", "Tensor", "out", "Tensor_out"))
    + aten_rows("clamp_max", clamp_max, clamp_max_, _clamp_max_unsupported, _clamp_max_inplace_unsupported,
                ("", "Tensor", "out", "Tensor_out"))
    + aten_rows("lerp", lerp, lerp_, _lerp_unsupported, _lerp_inplace_unsupported,
                ("Scalar", "Tensor", "Scalar_out", "Tensor_out"))
    + aten_rows("addcmul", addcmul, addcmul_, _addcmul_unsupported, _addcmul_inplace_unsupported, ("", "out"))
    + aten_rows("addcdiv", addcdiv, addcdiv_, _addcdiv_unsupported, _addcdiv_inplace_unsupported, ("", "out"))
    + aten_rows("hypot", hypot, hypot_, _hypot_unsupported, _hypot_inplace_unsupported, ("", "out"))
    + aten_rows("atan2", atan2, atan2_, _atan2_unsupported, _atan2_inplace_unsupported, ("", "out"))
    + aten_rows("copysign", copysign, copysign_, _copysign_unsupported, _copysign_inplace_unsupported,
                ("Tensor", "Scalar", "out", "Scalar_out"))
    + aten_rows("nextafter", nextafter, nextafter_, _nextafter_unsupported, _nextafter_inplace_unsupported,
                ("", "out"))
)

for _row in ATEN:
    _row.cpp = _CPP_ROUTES.get(_row.name)
