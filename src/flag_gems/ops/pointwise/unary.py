"""Unary math (neg, abs, sqrt, exp, log, sin, erf, sigmoid, floor, round...), every overload.

Every aten overload (functional, out=, in-place) of neg, abs, reciprocal, sqrt,
rsqrt, sign, sgn, exp, exp2, expm1, log, log2, log10, log1p, the trigonometric
and hyperbolic functions and their inverses, erf, erfc, erfinv, sigmoid, logit,
lgamma, digamma, floor, ceil, round, trunc and frac. Each is one
``ElementwiseOperator`` declaration, but logit (eps) and round (decimals).

Accuracy: transcendental functions are libdevice's (``tl_math``), the CUDA
math library PyTorch's own kernels call, rather than core ``tl.exp``/``tl.log``/
``tl.sin``/``tl.cos``/``tl.rsqrt``, which lower to approximate instructions on
the GPU. sqrt is ``tl.sqrt_rn`` and divisions are ``div_rn`` (IEEE-rounded, as
CUDA's ``sqrt`` and ``/``). Half types compute in fp32, as PyTorch's opmath.
Triton links libdevice flushing fp32 denormals to zero (PyTorch does not):
the log family handles denormal inputs itself, rsqrt and lgamma are fixed up
below, and elsewhere a denormal input or result may read as a signed zero.

``aten::square`` is not here: it is CompositeImplicitAutograd (it decomposes
into ``pow`` above the backend keys), so a backend kernel would never be reached.
"""

import math

import numpy
import torch
import triton
import triton.language as tl

from ...codegen.elementwise import Elementwise, ElementwiseOperator, Promotion
# The operators below take the plain names (exp, log...), so formulas call the math_ ones.
# (Triton swaps libdevice's stubs for the backend's functions when they are reached through a
# name: through a module attribute, tl_math.exp, the stub would be called and nothing compiles.)
from ...codegen.tl_math import acos as math_acos, acosh as math_acosh, asin as math_asin, asinh as math_asinh
from ...codegen.tl_math import atan as math_atan, atanh as math_atanh, cos as math_cos, cosh as math_cosh
from ...codegen.tl_math import erf as math_erf, erfc as math_erfc, erfinv as math_erfinv, exp as math_exp
from ...codegen.tl_math import exp2 as math_exp2, expm1 as math_expm1, ieee_div, lgamma as math_lgamma
from ...codegen.tl_math import log as math_log, log1p as math_log1p, log2 as math_log2, log10 as math_log10
from ...codegen.tl_math import rint, rsqrt as math_rsqrt, sin as math_sin, sinh as math_sinh, tan as math_tan
from ...codegen.tl_math import tanh as math_tanh, trunc as math_trunc
from ...dispatch import aten_rows
from ...fastpath import CppRoute
from ...utils.dtypes import floating, not_bool

# ---- formulas -------------------------------------------------------------------------


@triton.jit
def _over(c: tl.constexpr, x):
    """``c / x`` rounded as IEEE division (``c`` a constant)."""
    return ieee_div(tl.zeros_like(x) + c, x)


@triton.jit
def _neg(x):
    return x * -1  # Triton's -x is 0 - x, which turns -0.0 into +0.0


@triton.jit
def _abs(x):
    return tl.abs(x)


@triton.jit
def _sign(x):
    # 0 for zeros of either sign and for NaN, as PyTorch's (0 < x) - (x < 0).
    return (x > 0).to(x.dtype) - (x < 0).to(x.dtype)


@triton.jit
def _reciprocal(x):
    return _over(1.0, x)


@triton.jit
def _sqrt(x):
    if x.dtype == tl.float64:
        return tl.sqrt(x)  # sqrt.rn.f64 (sqrt_rn takes fp32 only)
    else:
        return tl.sqrt_rn(x)  # tl.sqrt is sqrt.approx.ftz.f32


@triton.jit
def _rsqrt(x):
    if x.dtype == tl.float32:
        # Triton links libdevice in flush-to-zero mode: its fp32 rsqrt (rsqrt.approx.ftz) takes a
        # denormal for 0. Scaled by 2**24 it is normal; rsqrt(x * 2**24) * 2**12 is rsqrt(x).
        tiny = tl.abs(x) < 1.1754943508222875e-38
        r = math_rsqrt(tl.where(tiny, x * 16777216.0, x))
        return tl.where(tiny, r * 4096.0, r)
    else:
        return math_rsqrt(x)


@triton.jit
def _exp(x):
    return math_exp(x)


@triton.jit
def _exp2(x):
    return math_exp2(x)


@triton.jit
def _expm1(x):
    return math_expm1(x)


@triton.jit
def _log(x):
    return math_log(x)


@triton.jit
def _log2(x):
    return math_log2(x)


@triton.jit
def _log10(x):
    return math_log10(x)


@triton.jit
def _log1p(x):
    return math_log1p(x)


@triton.jit
def _sin(x):
    return math_sin(x)


@triton.jit
def _cos(x):
    return math_cos(x)


@triton.jit
def _tan(x):
    return math_tan(x)


@triton.jit
def _asin(x):
    return math_asin(x)


@triton.jit
def _acos(x):
    return math_acos(x)


@triton.jit
def _atan(x):
    return math_atan(x)


@triton.jit
def _sinh(x):
    return math_sinh(x)


@triton.jit
def _cosh(x):
    return math_cosh(x)


@triton.jit
def _tanh(x):
    return math_tanh(x)


@triton.jit
def _asinh(x):
    return math_asinh(x)


@triton.jit
def _acosh(x):
    return math_acosh(x)


@triton.jit
def _atanh(x):
    return math_atanh(x)


@triton.jit
def _erf(x):
    return math_erf(x)


@triton.jit
def _erfc(x):
    return math_erfc(x)


@triton.jit
def _erfinv(x):
    return math_erfinv(x)


@triton.jit
def _sigmoid(x):
    return _over(1.0, 1.0 + math_exp(-x))  # PyTorch's 1 / (1 + exp(-x))


@triton.jit
def _logit(x):
    return math_log(ieee_div(x, 1.0 - x))


@triton.jit
def _logit_clamped(x, lo, hi):
    # NaN stays NaN: both comparisons are false.
    z = tl.where(x < lo, lo, tl.where(x > hi, hi, x))
    return math_log(ieee_div(z, 1.0 - z))


@triton.jit
def _lgamma(x):
    if x.dtype == tl.float32:
        # libdevice's fp32 lgamma flushes denormals (ftz, as _rsqrt), which would give inf; for
        # them lgamma(x) = -log|x| to far below an ulp, and log handles denormals itself.
        tiny = tl.abs(x) < 1.1754943508222875e-38
        return tl.where(tiny, -math_log(tl.abs(x)), math_lgamma(x))
    else:
        return math_lgamma(x)


@triton.jit
def _digamma(x):
    """psi(x): reflection for x < 0, the recurrence psi(y) = psi(y + 1) - 1/y up
    to y >= 10, then the asymptotic series ln y - 1/(2y) - sum B_2k / (2k y^2k)."""
    negative = x < 0
    # psi(x) = psi(1 - x) - pi / tan(pi * x); tan of the fractional part, in fp64,
    # loses nothing to the reduction of large arguments.
    wide = x.to(tl.float64)
    reflection = (-3.141592653589793 / math_tan(3.141592653589793 * (wide - math_trunc(wide)))).to(x.dtype)
    y = tl.where(negative, 1.0 - x, x)
    result = tl.where(negative, reflection, 0.0)
    # y > 0 here: at most 10 steps reach 10.
    for _ in tl.static_range(10):
        small = y < 10.0
        result = tl.where(small, result - _over(1.0, y), result)
        y = tl.where(small, y + 1.0, y)
    z = _over(1.0, y * y)
    # B_2k / 2k for k = 7 .. 1: 1/12, -691/32760, 1/132, -1/240, 1/252, -1/120, 1/12.
    series = 0.08333333333333333
    series = series * z - 0.021092796092796094
    series = series * z + 0.007575757575757576
    series = series * z - 0.004166666666666667
    series = series * z + 0.003968253968253968
    series = series * z - 0.008333333333333333
    series = series * z + 0.08333333333333333
    series = tl.where(y < 1e17, z * series, 0.0)
    value = result + math_log(y) - _over(0.5, y) - series
    value = tl.where(y == 10.0, result + 2.251752589066721, value)  # psi(10) = H_9 - Euler's gamma
    value = tl.where(negative & (x == tl.floor(x)), float("nan"), value)  # poles (and -inf)
    return tl.where(x == 0, -_over(1.0, x), value)  # psi(+-0) = -+inf


@triton.jit
def _floor(x):
    if x.dtype.is_floating():
        # Compiled floor flushes denormal inputs to zero; PyTorch's floor(-1e-40) is -1.
        r = tl.floor(x)
        return tl.where((r == 0) & (x < 0), r - 1, r)
    else:
        return x


@triton.jit
def _ceil(x):
    if x.dtype.is_floating():
        r = tl.ceil(x)  # likewise ceil(1e-40) is 1
        return tl.where((r == 0) & (x > 0), r + 1, r)
    else:
        return x


@triton.jit
def _round(x):
    if x.dtype.is_floating():
        return rint(x)  # halves to even, as nearbyint
    else:
        return x


@triton.jit
def _round_scaled(x, scale):
    return ieee_div(rint(x * scale), tl.zeros_like(x) + scale)


@triton.jit
def _round_unscaled(x, scale):
    return rint(ieee_div(x, tl.zeros_like(x) + scale)) * scale


# PyTorch's CUDA kernel does round.decimals in the half type itself: every product
# and quotient rounds to it (its CPU kernel works in fp32, as the two above).
@triton.jit
def _round_scaled_in(x, scale, RESULT: tl.constexpr):
    scaled = (x * scale).to(RESULT).to(x.dtype)
    return ieee_div(rint(scaled), tl.zeros_like(x) + scale)


@triton.jit
def _round_unscaled_in(x, scale, RESULT: tl.constexpr):
    quotient = ieee_div(x, tl.zeros_like(x) + scale).to(RESULT).to(x.dtype)
    return rint(quotient) * scale


@triton.jit
def _trunc(x):
    if x.dtype.is_floating():
        return math_trunc(x)
    else:
        return x


@triton.jit
def _frac(x):
    return x - math_trunc(x)


# ---- operators ------------------------------------------------------------------------

_FLOAT = Promotion.INT_TO_FLOAT  # integral and bool inputs give the default float dtype
_SAME = Promotion.DEFAULT  # the input's dtype


def _self_is_number(operands, params):
    return "self is a number" if not isinstance(operands[0], torch.Tensor) else None


def _self_unsupported(op, self, out=None, inplace=False):
    return _self_is_number((self,), ()) or op.unsupported((self,), out, inplace)


def _ElementwiseOperator(name, formula, promotion, accepts=None):
    """``name``'s declaration, functional (out= too) and in-place forms; its functional row
    has a C++ route."""
    op = Elementwise(formula, name, promotion, accepts)
    declared, functional, inplace = ElementwiseOperator(name, op, ("", "out"), check=_self_is_number,
                                            cpp={"": CppRoute(op.pointwise)})
    functional.__doc__ = f"aten::{name} (and .out) elementwise."
    inplace.__doc__ = f"aten::{name}_ elementwise, in place."
    return declared, functional, inplace


# The input's dtype. PyTorch rejects neg of bool, floor/ceil/round/trunc of bool and frac of
# anything not floating; abs of bool it rejects on the CPU only, so native decides that too.
# floor/ceil/round/trunc of integers are copies.
NEG_OP, neg, neg_ = _ElementwiseOperator("neg", _neg, _SAME, not_bool)
ABS_OP, abs, abs_ = _ElementwiseOperator("abs", _abs, _SAME, not_bool)
SIGN_OP, sign, sign_ = _ElementwiseOperator("sign", _sign, _SAME)
SGN_OP, sgn, sgn_ = _ElementwiseOperator("sgn", _sign, _SAME)  # complex is not a supported dtype: native
FLOOR_OP, floor, floor_ = _ElementwiseOperator("floor", _floor, _SAME, not_bool)
CEIL_OP, ceil, ceil_ = _ElementwiseOperator("ceil", _ceil, _SAME, not_bool)
TRUNC_OP, trunc, trunc_ = _ElementwiseOperator("trunc", _trunc, _SAME, not_bool)
FRAC_OP, frac, frac_ = _ElementwiseOperator("frac", _frac, _SAME, floating)

# Floating results.
RECIPROCAL_OP, reciprocal, reciprocal_ = _ElementwiseOperator("reciprocal", _reciprocal, _FLOAT)
SQRT_OP, sqrt, sqrt_ = _ElementwiseOperator("sqrt", _sqrt, _FLOAT)
RSQRT_OP, rsqrt, rsqrt_ = _ElementwiseOperator("rsqrt", _rsqrt, _FLOAT)
EXP_OP, exp, exp_ = _ElementwiseOperator("exp", _exp, _FLOAT)
EXP2_OP, exp2, exp2_ = _ElementwiseOperator("exp2", _exp2, _FLOAT)
EXPM1_OP, expm1, expm1_ = _ElementwiseOperator("expm1", _expm1, _FLOAT)
LOG_OP, log, log_ = _ElementwiseOperator("log", _log, _FLOAT)
LOG2_OP, log2, log2_ = _ElementwiseOperator("log2", _log2, _FLOAT)
LOG10_OP, log10, log10_ = _ElementwiseOperator("log10", _log10, _FLOAT)
LOG1P_OP, log1p, log1p_ = _ElementwiseOperator("log1p", _log1p, _FLOAT)
SIN_OP, sin, sin_ = _ElementwiseOperator("sin", _sin, _FLOAT)
COS_OP, cos, cos_ = _ElementwiseOperator("cos", _cos, _FLOAT)
TAN_OP, tan, tan_ = _ElementwiseOperator("tan", _tan, _FLOAT)
ASIN_OP, asin, asin_ = _ElementwiseOperator("asin", _asin, _FLOAT)
ACOS_OP, acos, acos_ = _ElementwiseOperator("acos", _acos, _FLOAT)
ATAN_OP, atan, atan_ = _ElementwiseOperator("atan", _atan, _FLOAT)
SINH_OP, sinh, sinh_ = _ElementwiseOperator("sinh", _sinh, _FLOAT)
COSH_OP, cosh, cosh_ = _ElementwiseOperator("cosh", _cosh, _FLOAT)
TANH_OP, tanh, tanh_ = _ElementwiseOperator("tanh", _tanh, _FLOAT)
ASINH_OP, asinh, asinh_ = _ElementwiseOperator("asinh", _asinh, _FLOAT)
ACOSH_OP, acosh, acosh_ = _ElementwiseOperator("acosh", _acosh, _FLOAT)
ATANH_OP, atanh, atanh_ = _ElementwiseOperator("atanh", _atanh, _FLOAT)
ERF_OP, erf, erf_ = _ElementwiseOperator("erf", _erf, _FLOAT)
ERFC_OP, erfc, erfc_ = _ElementwiseOperator("erfc", _erfc, _FLOAT)
ERFINV_OP, erfinv, erfinv_ = _ElementwiseOperator("erfinv", _erfinv, _FLOAT)
SIGMOID_OP, sigmoid, sigmoid_ = _ElementwiseOperator("sigmoid", _sigmoid, _FLOAT)
LGAMMA_OP, lgamma, lgamma_ = _ElementwiseOperator("lgamma", _lgamma, _FLOAT)
DIGAMMA_OP, digamma, digamma_ = _ElementwiseOperator("digamma", _digamma, _FLOAT)

_DECLARED = (NEG_OP, ABS_OP, SIGN_OP, SGN_OP, FLOOR_OP, CEIL_OP, TRUNC_OP, FRAC_OP, RECIPROCAL_OP, SQRT_OP,
             RSQRT_OP, EXP_OP, EXP2_OP, EXPM1_OP, LOG_OP, LOG2_OP, LOG10_OP, LOG1P_OP, SIN_OP, COS_OP, TAN_OP,
             ASIN_OP, ACOS_OP, ATAN_OP, SINH_OP, COSH_OP, TANH_OP, ASINH_OP, ACOSH_OP, ATANH_OP, ERF_OP, ERFC_OP,
             ERFINV_OP, SIGMOID_OP, LGAMMA_OP, DIGAMMA_OP)


# ---- logit ----------------------------------------------------------------------------

_LOGIT = Elementwise(_logit, "logit", _FLOAT)
_LOGIT_CLAMPED = Elementwise(_logit_clamped, "logit_clamped", _FLOAT)


def _logit_unsupported(self, eps, out=None, inplace=False):
    if eps is not None and type(eps) not in (int, float):
        return f"eps of type {type(eps).__name__}"
    return _self_unsupported(_LOGIT, self, out, inplace)


def _logit_call(self, eps, out):
    if eps is None or eps < 0:  # PyTorch: no clamping for a negative eps
        return _LOGIT((self,), (), out)
    compute = _LOGIT.dtypes((self,))[0]
    if compute == torch.float64:
        lo = float(eps)
        hi = 1.0 - lo
    else:  # bounds in fp32, as PyTorch's accumulate type
        lo = numpy.float32(eps)
        hi = float(numpy.float32(1.0) - lo)
        lo = float(lo)
    return _LOGIT_CLAMPED((self,), (lo, hi), out)


def logit(self, eps=None, *, out=None):
    """log(x / (1 - x)), with x clamped to [eps, 1 - eps] when eps >= 0."""
    return _logit_call(self, eps, out)


def logit_(self, eps=None):
    return _logit_call(self, eps, self)


def _logit_functional_unsupported(self, eps=None, *, out=None):
    return _logit_unsupported(self, eps, out)


def _logit_inplace_unsupported(self, eps=None):
    return _logit_unsupported(self, eps, inplace=True)


# ---- round ----------------------------------------------------------------------------

_ROUND = Elementwise(_round, "round", _SAME, not_bool)
_ROUND_SCALED = Elementwise(_round_scaled, "round_scaled", _SAME, floating)
_ROUND_UNSCALED = Elementwise(_round_unscaled, "round_unscaled", _SAME, floating)
_ROUND_SCALED_IN = Elementwise(_round_scaled_in, "round_scaled_in", _SAME, floating, takes_result_dtype=True)
_ROUND_UNSCALED_IN = Elementwise(_round_unscaled_in, "round_unscaled_in", _SAME, floating,
                                 takes_result_dtype=True)


def _round_unsupported_for(self, decimals, out, inplace):
    if decimals is None:
        return _self_unsupported(_ROUND, self, out, inplace)
    if type(decimals) is not int:
        return f"decimals of type {type(decimals).__name__}"
    if not -(2**63) < decimals < 2**63:
        return "decimals out of range"  # PyTorch negates it in int64
    # round.decimals takes floating inputs only, even with decimals=0.
    return _self_unsupported(_ROUND_SCALED, self, out, inplace)


def _round_call(self, decimals, out):
    if not decimals:  # None (aten::round) or 0: nearest, halves to even
        return _ROUND((self,), (), out)
    # PyTorch: 10 ** |decimals| in double, then in the op-math dtype; x * 10**d or x / 10**d,
    # rounded, then scaled back.
    try:
        scale = 10.0 ** -decimals if decimals < 0 else 10.0 ** decimals
    except OverflowError:
        scale = math.inf
    if _ROUND.dtypes((self,))[0] != torch.float64:
        scale = float(numpy.float32(scale)) if scale < 3.5e38 else math.inf
    if self.dtype in (torch.float16, torch.bfloat16) and self.device.type == "cuda":
        scale = float(torch.tensor(scale).to(self.dtype))  # the factor itself is in the half type there
        op = _ROUND_UNSCALED_IN if decimals < 0 else _ROUND_SCALED_IN
    else:
        op = _ROUND_UNSCALED if decimals < 0 else _ROUND_SCALED
    return op((self,), (scale,), out)


def round(self, *, decimals=None, out=None):
    """aten::round (nearest, halves to even) and aten::round.decimals."""
    return _round_call(self, decimals, out)


def round_(self, *, decimals=None):
    return _round_call(self, decimals, self)


def _round_functional_unsupported(self, *, decimals=None, out=None):
    return _round_unsupported_for(self, decimals, out, False)


def _round_inplace_unsupported(self, *, decimals=None):
    return _round_unsupported_for(self, decimals, None, True)


__all__ = [
    "neg", "neg_", "abs", "abs_", "sign", "sign_", "sgn", "sgn_", "floor", "floor_", "ceil", "ceil_",
    "round", "round_", "trunc", "trunc_", "frac", "frac_", "reciprocal", "reciprocal_", "sqrt", "sqrt_",
    "rsqrt", "rsqrt_", "exp", "exp_", "exp2", "exp2_", "expm1", "expm1_", "log", "log_", "log2", "log2_",
    "log10", "log10_", "log1p", "log1p_", "sin", "sin_", "cos", "cos_", "tan", "tan_", "asin", "asin_",
    "acos", "acos_", "atan", "atan_", "sinh", "sinh_", "cosh", "cosh_", "tanh", "tanh_", "asinh", "asinh_",
    "acosh", "acosh_", "atanh", "atanh_", "erf", "erf_", "erfc", "erfc_", "erfinv", "erfinv_",
    "sigmoid", "sigmoid_", "logit", "logit_", "lgamma", "lgamma_", "digamma", "digamma_",
]

ATEN = tuple(
    [row for declared in _DECLARED for row in declared.rows]
    + aten_rows("logit", logit, _logit_functional_unsupported, ("", "out"), logit_, _logit_inplace_unsupported)
    + aten_rows("round", round, _round_functional_unsupported, ("", "out", "decimals", "decimals_out"), round_, _round_inplace_unsupported)
)
