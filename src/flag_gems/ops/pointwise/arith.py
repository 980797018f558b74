"""Arithmetic: add, sub, mul, div, pow, remainder, clamp, lerp, addcmul and the like, every overload.

Each operator that PyTorch's elementwise semantics cover is one ``ElementwiseOperator``
declaration, from which its functional, out= and in-place forms and their conditions
derive; div, floor_divide, pow (a number base) and clamp (None bounds) are written out.
"""

import math

import numpy
import torch
import triton
import triton.language as tl

from ...codegen.elementwise import Elementwise, ElementwiseOperator, Promotion
from ...codegen.tl_math import device_math, ieee_div, trunc
from ...codegen.tl_math import fmod as float_fmod  # the name fmod is the aten operator's here
from ...dispatch import Row, aten_rows
from ...fastpath import CppRoute
from ...utils.dtypes import floating, not_bool, number_as_tensor, promoted_dtype


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


_libdevice_pow = device_math("pow", numpy.power)
_libdevice_hypot = device_math("hypot", numpy.hypot)
_libdevice_atan2 = device_math("atan2", numpy.arctan2)
_libdevice_copysign = device_math("copysign", numpy.copysign)
_libdevice_nextafter = device_math("nextafter", numpy.nextafter)


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


ADD = Elementwise(_add, "add")
SUB = Elementwise(_sub, "sub")
MUL = Elementwise(_mul, "mul")
TRUE_DIV = Elementwise(_true_div, "true_div", Promotion.INT_TO_FLOAT)
TRUNC_DIV = Elementwise(_trunc_div, "trunc_div", takes_result_dtype=True)
FLOOR_DIV = Elementwise(_floor_div, "floor_div", takes_result_dtype=True)
TRUNC_MUL = Elementwise(_trunc_mul, "trunc_mul")
FLOOR_MUL = Elementwise(_floor_mul, "floor_mul", takes_result_dtype=True)
_DIV_BY_MODE = {None: TRUE_DIV, "trunc": TRUNC_DIV, "floor": FLOOR_DIV}

RSUB = Elementwise(_rsub, "rsub")
REMAINDER = Elementwise(_remainder, "remainder", accepts=not_bool)
FMOD = Elementwise(_fmod, "fmod", accepts=not_bool)
POW = Elementwise(_pow, "pow", accepts=not_bool)
MAXIMUM = Elementwise(_maximum, "maximum")
MINIMUM = Elementwise(_minimum, "minimum")
FMAX = Elementwise(_fmax, "fmax", accepts=not_bool)
FMIN = Elementwise(_fmin, "fmin", accepts=not_bool)
CLAMP = Elementwise(_clamp, "clamp", accepts=not_bool, out_casts=False)
MAXIMUM_REAL = Elementwise(_maximum, "clamp_min", accepts=not_bool, out_casts=False)
MINIMUM_REAL = Elementwise(_minimum, "clamp_max", accepts=not_bool, out_casts=False)
LERP = Elementwise(_lerp, "lerp", accepts=floating)
ADDCMUL = Elementwise(_addcmul, "addcmul")
ADDCDIV = Elementwise(_addcdiv, "addcdiv", accepts=floating)
HYPOT = Elementwise(_hypot, "hypot", accepts=floating)
ATAN2 = Elementwise(_atan2, "atan2", Promotion.INT_TO_FLOAT)
COPYSIGN = Elementwise(_copysign, "copysign", Promotion.INT_TO_FLOAT)
# Halves step to the next half, not the next fp32: PyTorch's own kernel takes them.
NEXTAFTER = Elementwise(_nextafter, "nextafter", accepts=lambda dtype: dtype in (torch.float32, torch.float64))


# ---- conditions ------------------------------------------------------------------------


def _alpha_unsupported(operands, params):
    """PyTorch's rules for alpha (add, sub, rsub) and value (addcmul, addcdiv): True and
    1.0 equal 1 but are checked as a bool and a float against the result dtype."""
    alpha = params[0]
    if type(alpha) is int:
        return None if -(2**63) <= alpha < 2**63 else "alpha out of int64 range"
    for op in operands:  # a number the kernels do not take: the Elementwise's own conditions refuse it
        if type(op) is int and not -(2**63) <= op < 2**63 or type(op) not in (bool, int, float) and \
                not isinstance(op, torch.Tensor):
            return None
    if type(alpha) is bool:
        return None if promoted_dtype(operands) == torch.bool else "bool alpha with a non-bool result"
    if type(alpha) is float:
        return None if promoted_dtype(operands).is_floating_point else "float alpha with an integral result"
    return f"alpha of type {type(alpha).__name__}"


def _subtraction_unsupported(operands, params):
    if any(type(op) is bool or (isinstance(op, torch.Tensor) and op.dtype == torch.bool) for op in operands):
        return "subtraction with a bool operand"
    return _alpha_unsupported(operands, params)


def _integer_zero_divisor(operands, params=()):
    """PyTorch raises ZeroDivisionError for an integer zero divisor (on CPU tensors and numbers)."""
    if promoted_dtype(operands).is_floating_point:
        return None
    other = operands[1]
    if isinstance(other, torch.Tensor):
        return "integer division by zero" if other.device.type == "cpu" and bool((other == 0).any()) else None
    return "integer division by zero" if other == 0 else None


def _negative_integer_power(operands, params):
    self, exponent = operands
    if isinstance(exponent, (int, float)) and not isinstance(exponent, bool) and isinstance(self, torch.Tensor):
        if not self.dtype.is_floating_point and type(exponent) is int and exponent < 0:
            return "integers to negative integer powers"
    return None


def _lerp_dtypes_unsupported(operands, params):
    # lerp does not promote: end (and a weight tensor) must have self's floating dtype.
    self, end, weight = operands
    if not self.dtype.is_floating_point or not isinstance(end, torch.Tensor) or end.dtype != self.dtype or (
            isinstance(weight, torch.Tensor) and weight.dtype != self.dtype):
        return "lerp needs operands of one floating dtype"
    return None


# ---- declared operators ------------------------------------------------------------------

_TENSOR_SCALAR = ("Tensor", "Scalar", "out", "Scalar_out")
_TENSOR_SCALAR_OUTS = ("Tensor", "Scalar", "Tensor_out", "Scalar_out")
_PLAIN = ("", "out")

# The hottest overloads try the C++ wrappers straight from the router (alpha's default is 1).
ADD_OP, add, add_ = ElementwiseOperator("add", ADD, _TENSOR_SCALAR, check=_alpha_unsupported,
                            cpp={"Tensor": CppRoute(ADD.pointwise, alpha=1)})
SUB_OP, sub, sub_ = ElementwiseOperator("sub", SUB, _TENSOR_SCALAR, check=_subtraction_unsupported,
                            cpp={"Tensor": CppRoute(SUB.pointwise, alpha=1)})
MUL_OP, mul, mul_ = ElementwiseOperator("mul", MUL, _TENSOR_SCALAR, cpp={"Tensor": CppRoute(MUL.pointwise)})
RSUB_OP, rsub, _ = ElementwiseOperator("rsub", RSUB, _TENSOR_SCALAR_OUTS, check=_subtraction_unsupported, inplace=False)
REMAINDER_OP, remainder, remainder_ = ElementwiseOperator("remainder", REMAINDER, _TENSOR_SCALAR_OUTS, check=_integer_zero_divisor)
FMOD_OP, fmod, fmod_ = ElementwiseOperator("fmod", FMOD, _TENSOR_SCALAR_OUTS, check=_integer_zero_divisor)
MAXIMUM_OP, maximum, _ = ElementwiseOperator("maximum", MAXIMUM, _PLAIN, inplace=False)
MINIMUM_OP, minimum, _ = ElementwiseOperator("minimum", MINIMUM, _PLAIN, inplace=False)
FMAX_OP, fmax, _ = ElementwiseOperator("fmax", FMAX, _PLAIN, inplace=False)
FMIN_OP, fmin, _ = ElementwiseOperator("fmin", FMIN, _PLAIN, inplace=False)
CLAMP_MIN_OP, clamp_min, clamp_min_ = ElementwiseOperator("clamp_min", MAXIMUM_REAL, ("", "Tensor", "out", "Tensor_out"))
CLAMP_MAX_OP, clamp_max, clamp_max_ = ElementwiseOperator("clamp_max", MINIMUM_REAL, ("", "Tensor", "out", "Tensor_out"))
LERP_OP, lerp, lerp_ = ElementwiseOperator("lerp", LERP, ("Scalar", "Tensor", "Scalar_out", "Tensor_out"),
                               check=_lerp_dtypes_unsupported)
ADDCMUL_OP, addcmul, addcmul_ = ElementwiseOperator("addcmul", ADDCMUL, _PLAIN, check=_alpha_unsupported)
ADDCDIV_OP, addcdiv, addcdiv_ = ElementwiseOperator("addcdiv", ADDCDIV, _PLAIN, check=_alpha_unsupported)
HYPOT_OP, hypot, hypot_ = ElementwiseOperator("hypot", HYPOT, _PLAIN)
ATAN2_OP, atan2, atan2_ = ElementwiseOperator("atan2", ATAN2, _PLAIN)
COPYSIGN_OP, copysign, copysign_ = ElementwiseOperator("copysign", COPYSIGN, _TENSOR_SCALAR)
NEXTAFTER_OP, nextafter, nextafter_ = ElementwiseOperator("nextafter", NEXTAFTER, _PLAIN)
# pow's conditions and in-place form; its functional form takes a number base too (below).
POW_OP, _, pow_ = ElementwiseOperator("pow", POW, ("Tensor_Tensor",), check=_negative_integer_power)


# ---- div and floor_divide: rounding modes --------------------------------------------------


def _div_unsupported_for(self, other, rounding_mode, out, inplace):
    if rounding_mode not in _DIV_BY_MODE:
        return f"rounding_mode {rounding_mode!r}"
    reason = _DIV_BY_MODE[rounding_mode].unsupported((self, other), out, inplace)
    if reason is None and rounding_mode is not None:
        # PyTorch raises ZeroDivisionError for integers (on the GPU too, for a number).
        return _integer_zero_divisor((self, other))
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


def floor_divide(self, other, *, out=None):
    return _divide(self, other, "floor", out)


def floor_divide_(self, other):
    return _divide(self, other, "floor", self)


def _floor_divide_unsupported(self, other, *, out=None):
    return _div_unsupported_for(self, other, "floor", out, False)


def _floor_divide_inplace_unsupported(self, other):
    return _div_unsupported_for(self, other, "floor", None, True)


# ---- pow: a number base (pow.Scalar) -------------------------------------------------------


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


# ---- clamp: either bound may be None -------------------------------------------------------


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


# ---- aten rows -----------------------------------------------------------------------------

_DIV_ROWS = aten_rows("div", div, _div_unsupported, ("Tensor", "Scalar", "Tensor_mode", "Scalar_mode", "out", "out_mode", "Scalar_out",
                       "Scalar_mode_out"), div_, _div_inplace_unsupported)
_DIV_ROWS[0].cpp = CppRoute(TRUE_DIV.pointwise)  # div.Tensor, as add.Tensor, sub.Tensor and mul.Tensor

ATEN = tuple(
    ADD_OP.rows + SUB_OP.rows + MUL_OP.rows + _DIV_ROWS + RSUB_OP.rows
    + aten_rows("floor_divide", floor_divide, _floor_divide_unsupported, ("", "Scalar", "out", "Scalar_out"))
    + [Row(f"floor_divide_.{overload}", floor_divide_, _floor_divide_inplace_unsupported)
       for overload in ("Tensor", "Scalar")]
    + REMAINDER_OP.rows + FMOD_OP.rows
    + [Row(f"pow.{overload}", pow, POW_OP.unsupported)
       for overload in ("Tensor_Tensor", "Tensor_Scalar", "Tensor_Tensor_out", "Tensor_Scalar_out")]
    + [Row(f"pow.{overload}", pow, POW_OP.unsupported, instead_of_native=_pow_number_base_natively)
       for overload in ("Scalar", "Scalar_out")]
    + [Row(f"pow_.{overload}", pow_, POW_OP.inplace_unsupported) for overload in ("Scalar", "Tensor")]
    + MAXIMUM_OP.rows + MINIMUM_OP.rows + FMAX_OP.rows + FMIN_OP.rows
    + aten_rows("clamp", clamp, _clamp_unsupported, ("", "Tensor", "out", "Tensor_out"), clamp_, _clamp_inplace_unsupported)
    + CLAMP_MIN_OP.rows + CLAMP_MAX_OP.rows + LERP_OP.rows + ADDCMUL_OP.rows + ADDCDIV_OP.rows
    + HYPOT_OP.rows + ATAN2_OP.rows + COPYSIGN_OP.rows + NEXTAFTER_OP.rows
)
