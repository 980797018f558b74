"""Activations and their backward aten ops (relu, gelu, silu, elu, softplus, hardtanh, threshold...).

Forward (functional, out=, in place where aten has it): relu, leaky_relu, elu,
celu, gelu ('none' and 'tanh'), silu, mish, softplus, hardtanh, hardsigmoid,
hardswish, threshold. Backward: gelu, silu, sigmoid, tanh, threshold,
leaky_relu, elu, softplus, hardsigmoid, hardswish, hardtanh and mish (with
their grad_input/out forms), so autograd through the routed forwards runs our
kernels both ways. glu and the fused gated functions are in ``gated``.

Operators whose parameters go to the kernel as given are ``ElementwiseOperator``
declarations; celu (1 / alpha), gelu (approximate), hardtanh and threshold
(scalars rounded to the input dtype) and the backward ops with a grad_input= form
are written out.

Not routed: selu/selu_ and relu6/relu6_ are CompositeImplicitAutograd in aten
(a kernel registered on the backend key would take them away from autograd's
decomposition and leave them without a derivative); they decompose into elu and
hardtanh, which are ours, so they still run our kernels.

Each formula follows PyTorch's CUDA kernel (same operation order, same
constants, scalars converted to the compute dtype) so that compiled results
agree with native to the last bit or close to it. Only floating dtypes are
taken: integer inputs go to native, which raises or handles them as PyTorch does.
"""

import math

import torch
import triton
import triton.language as tl

from ...codegen.elementwise import Elementwise, ElementwiseOperator
from ...codegen.tl_math import device_math, ieee_div
from ...dispatch import aten_rows
from ...fastpath import CppRoute
from ...utils.dtypes import floating

__all__ = [
    "relu", "relu_", "leaky_relu", "leaky_relu_", "elu", "elu_", "celu", "celu_", "gelu", "gelu_",
    "silu", "silu_", "mish", "mish_", "softplus", "hardtanh", "hardtanh_", "hardsigmoid", "hardsigmoid_",
    "hardswish", "hardswish_", "threshold", "threshold_",
    "gelu_backward", "silu_backward", "sigmoid_backward", "tanh_backward", "threshold_backward",
    "leaky_relu_backward", "elu_backward", "softplus_backward", "hardsigmoid_backward",
    "hardswish_backward", "hardtanh_backward", "mish_backward",
]

# libdevice compiled (the CUDA math PyTorch's kernels call), the same function on numpy
# values under the interpreter.
_exp = device_math("exp")
_expm1 = device_math("expm1")
_log1p = device_math("log1p")
_tanh = device_math("tanh")
_erf = device_math("erf")

# PyTorch's constants (math.h's M_* names), rounded to the compute dtype by Triton.
_SQRT1_2 = tl.constexpr(0.70710678118654752440)  # M_SQRT1_2: erf's scale in gelu
_GELU_PDF = tl.constexpr(0.39894228040143267794)  # M_2_SQRTPI * M_SQRT1_2 * 0.5
_GELU_TANH_BETA = tl.constexpr(0.79788456080286535588)  # M_SQRT2 * M_2_SQRTPI * 0.5
_GELU_TANH_KAPPA = tl.constexpr(0.044715)
_ONE_SIXTH = tl.constexpr(1.0 / 6.0)
_GELU_TINY = tl.constexpr(2.0**-100)  # below it 1 + erf(x / sqrt(2)) rounds to 1, in fp32 and fp64


@triton.jit
def _sigmoid(x):
    return ieee_div(tl.zeros_like(x) + 1, 1 + _exp(-x))


# ---- formulas: values arrive in the compute dtype (fp32 for halves) -----------------------


@triton.jit
def _relu(x):
    return tl.where((x > 0) | (x != x), x, 0)  # keeps NaN; -0.0 gives +0.0, as torch's


@triton.jit
def _leaky_relu(x, slope):
    return tl.where(x > 0, x, x * slope)


@triton.jit
def _elu(x, alpha, scale, input_scale):
    return tl.where(x > 0, x * scale, _expm1(x * input_scale) * (alpha * scale))


@triton.jit
def _gelu(x):
    # Tiny |x| (denormals included) gives x / 2 without erf, so erf's result matters only
    # for normal arguments, where the faster denormal-flushing erf gives the same values.
    return tl.where(tl.abs(x) < _GELU_TINY, x * 0.5, x * 0.5 * (1 + _erf(x * _SQRT1_2)))


@triton.jit
def _gelu_tanh(x):
    inner = _GELU_TANH_BETA * (x + _GELU_TANH_KAPPA * (x * x * x))
    return 0.5 * x * (1 + _tanh(inner))


@triton.jit
def _silu(x):
    return ieee_div(x, 1 + _exp(-x))


@triton.jit
def _mish(x):
    return x * _tanh(_log1p(_exp(x)))


@triton.jit
def _softplus(x, beta, threshold):
    scaled = x * beta
    return tl.where(scaled > threshold, x, ieee_div(_log1p(_exp(scaled)), beta))


@triton.jit
def _hardtanh(x, low, high):
    # std::min(std::max(x, low), high) after a NaN check: NaN stays NaN.
    clipped = tl.where(x < low, low, x)
    return tl.where(clipped > high, high, clipped)


@triton.jit
def _hardsigmoid(x):
    shifted = x + 3
    shifted = tl.where(shifted < 0, 0, shifted)
    return tl.where(shifted > 6, 6, shifted) * _ONE_SIXTH


@triton.jit
def _hardswish(x):
    shifted = x + 3
    shifted = tl.where(shifted < 0, 0, shifted)
    return x * tl.where(shifted > 6, 6, shifted) * _ONE_SIXTH


@triton.jit
def _threshold(x, threshold, value):
    return tl.where(x <= threshold, value, x)


# ---- backward formulas -------------------------------------------------------------------


@triton.jit
def _gelu_backward(dy, x):
    cdf = 0.5 * (1 + _erf(x * _SQRT1_2))
    pdf = _exp(-0.5 * x * x) * _GELU_PDF
    return dy * (cdf + x * pdf)


@triton.jit
def _gelu_tanh_backward(dy, x):
    x_sq = x * x
    inner = _GELU_TANH_BETA * (x + _GELU_TANH_KAPPA * (x_sq * x))
    tanh_inner = _tanh(inner)
    left = 0.5 * x
    left_derivative = 0.5 * (1 + tanh_inner)
    three = tl.zeros_like(x) + 3  # 3 * kappa rounded in the compute dtype, as in PyTorch
    inner_derivative = _GELU_TANH_BETA * (1 + three * _GELU_TANH_KAPPA * x_sq)
    right_derivative = left * (1 - tanh_inner * tanh_inner) * inner_derivative
    return dy * (left_derivative + right_derivative)


@triton.jit
def _silu_backward(dy, x):
    s = _sigmoid(x)
    return dy * s * (1 + x * (1 - s))


@triton.jit
def _sigmoid_backward(dy, y):
    return dy * (1 - y) * y


@triton.jit
def _tanh_backward(dy, y):
    return dy * (1 - y * y)


@triton.jit
def _threshold_backward(x, dy, threshold):
    return tl.where(x <= threshold, 0, dy)


@triton.jit
def _leaky_relu_backward(x, dy, slope):
    return tl.where(x > 0, dy, dy * slope)


@triton.jit
def _elu_backward_of_input(dy, x, alpha, scale, input_scale):
    return tl.where(x <= 0, dy * input_scale * (alpha * scale) * _exp(x * input_scale), dy * scale)


@triton.jit
def _elu_backward_of_result(dy, y, alpha, scale, input_scale):
    return tl.where(y <= 0, dy * input_scale * (y + alpha * scale), dy * scale)


@triton.jit
def _softplus_backward(dy, x, beta, threshold):
    z = _exp(x * beta)
    return tl.where(x * beta > threshold, dy, ieee_div(dy * z, z + 1))


@triton.jit
def _hardsigmoid_backward(dy, x):
    return tl.where((x > -3) & (x < 3), dy * _ONE_SIXTH, 0)


@triton.jit
def _hardswish_backward(dy, x):
    return tl.where(x <= -3, 0, tl.where(x < 3, dy * (ieee_div(x, 3.0) + 0.5), dy))


@triton.jit
def _hardtanh_backward(dy, x, low, high):
    return tl.where((x <= low) | (x >= high), 0, dy)


@triton.jit
def _mish_backward(dy, x):
    s = _sigmoid(x)
    t = _tanh(_log1p(_exp(x)))
    return dy * (t + x * s * (1 - t * t))


def _op(formula, name, flush_denormals=False):
    # out_casts=False: an out= (or grad_input=) must have the input's dtype, as native's kernels take it.
    return Elementwise(formula, name, accepts=floating, flush_denormals=flush_denormals, out_casts=False)


RELU = _op(_relu, "relu")
LEAKY_RELU = _op(_leaky_relu, "leaky_relu")
ELU = _op(_elu, "elu")
# erf's denormal-keeping libdevice flavour cost gelu 3% of its bf16 throughput on an H100
GELU = {"none": _op(_gelu, "gelu", flush_denormals=True), "tanh": _op(_gelu_tanh, "gelu_tanh")}
SILU = _op(_silu, "silu")
MISH = _op(_mish, "mish")
SOFTPLUS = _op(_softplus, "softplus")
HARDTANH = _op(_hardtanh, "hardtanh")
HARDSIGMOID = _op(_hardsigmoid, "hardsigmoid")
HARDSWISH = _op(_hardswish, "hardswish")
THRESHOLD = _op(_threshold, "threshold")

GELU_BACKWARD = {"none": _op(_gelu_backward, "gelu_backward"),
                 "tanh": _op(_gelu_tanh_backward, "gelu_tanh_backward")}
SILU_BACKWARD = _op(_silu_backward, "silu_backward")
SIGMOID_BACKWARD = _op(_sigmoid_backward, "sigmoid_backward")
TANH_BACKWARD = _op(_tanh_backward, "tanh_backward")
THRESHOLD_BACKWARD = _op(_threshold_backward, "threshold_backward")
LEAKY_RELU_BACKWARD = _op(_leaky_relu_backward, "leaky_relu_backward")
ELU_BACKWARD = {False: _op(_elu_backward_of_input, "elu_backward"),
                True: _op(_elu_backward_of_result, "elu_backward_of_result")}
SOFTPLUS_BACKWARD = _op(_softplus_backward, "softplus_backward")
HARDSIGMOID_BACKWARD = _op(_hardsigmoid_backward, "hardsigmoid_backward")
HARDSWISH_BACKWARD = _op(_hardswish_backward, "hardswish_backward")
HARDTANH_BACKWARD = _op(_hardtanh_backward, "hardtanh_backward")
MISH_BACKWARD = _op(_mish_backward, "mish_backward")


# ---- conditions ----------------------------------------------------------------------------


def _scalars_unsupported(dtype, *values):
    """Scalars PyTorch converts to the input dtype or its op-math dtype: only plain
    numbers that fit ``dtype`` (native raises on overflow, on some devices only)."""
    limit = torch.finfo(dtype).max
    for value in values:
        if type(value) not in (bool, int, float):
            return f"scalar parameter of type {type(value).__name__}"
        if math.isnan(value):
            return "NaN scalar parameter"
        if math.isfinite(value) and abs(value) > limit:
            return f"scalar parameter {value} overflows {dtype}"
    return None


def _in_dtype(value, dtype):
    """``value`` rounded to ``dtype``, as PyTorch's ``Scalar.to<scalar_t>()`` does."""
    if dtype == torch.float64:
        return value
    return torch.tensor(float(value), dtype=torch.float64).to(dtype).item()


def _self_and_scalars_unsupported(operands, params):
    """A forward activation's own conditions: a tensor self and scalars that fit its dtype
    (one not floating, the Elementwise refuses)."""
    self = operands[0]
    if not isinstance(self, torch.Tensor):
        return "self is not a tensor"
    return _scalars_unsupported(self.dtype, *params) if params and self.dtype.is_floating_point else None


def _tensors_and_scalars_unsupported(operands, params):
    """A backward op's own conditions: tensors of one dtype and scalars that fit it."""
    if not all(isinstance(t, torch.Tensor) for t in operands):
        return "operand is not a tensor"
    dtype = operands[0].dtype
    if any(t.dtype != dtype for t in operands):
        return "operands of different dtypes"
    return _scalars_unsupported(dtype, *params) if params and dtype.is_floating_point else None


def _unary_unsupported(op, self, scalars=(), out=None, inplace=False):
    return _self_and_scalars_unsupported((self,), scalars) or op.unsupported((self,), out, inplace)


def _binary_unsupported(op, tensors, scalars=(), grad_input=None):
    return _tensors_and_scalars_unsupported(tensors, scalars) or op.unsupported(tuple(tensors), grad_input)


# ---- declared operators --------------------------------------------------------------------

_FORWARD = ("", "out")
_BACKWARD = ("", "grad_input")

# The activations models call most go through C++ first once the wrappers are built (gelu too, below).
RELU_OP, relu, relu_ = ElementwiseOperator("relu", RELU, _FORWARD, check=_self_and_scalars_unsupported,
                               cpp={"": CppRoute(RELU.pointwise)})
SILU_OP, silu, silu_ = ElementwiseOperator("silu", SILU, _FORWARD, check=_self_and_scalars_unsupported,
                               cpp={"": CppRoute(SILU.pointwise)})
LEAKY_RELU_OP, leaky_relu, leaky_relu_ = ElementwiseOperator("leaky_relu", LEAKY_RELU, _FORWARD,
                                                 check=_self_and_scalars_unsupported)
ELU_OP, elu, elu_ = ElementwiseOperator("elu", ELU, _FORWARD, check=_self_and_scalars_unsupported)
MISH_OP, mish, mish_ = ElementwiseOperator("mish", MISH, _FORWARD, check=_self_and_scalars_unsupported)
SOFTPLUS_OP, softplus, _ = ElementwiseOperator("softplus", SOFTPLUS, _FORWARD, check=_self_and_scalars_unsupported,
                                   inplace=False)
HARDSIGMOID_OP, hardsigmoid, hardsigmoid_ = ElementwiseOperator("hardsigmoid", HARDSIGMOID, _FORWARD,
                                                    check=_self_and_scalars_unsupported)
HARDSWISH_OP, hardswish, hardswish_ = ElementwiseOperator("hardswish", HARDSWISH, _FORWARD, check=_self_and_scalars_unsupported)
HARDSWISH_BACKWARD_OP, hardswish_backward, _ = ElementwiseOperator("hardswish_backward", HARDSWISH_BACKWARD, ("", "out"),
                                                       check=_tensors_and_scalars_unsupported, inplace=False)
MISH_BACKWARD_OP, mish_backward, _ = ElementwiseOperator("mish_backward", MISH_BACKWARD, ("",),
                                             check=_tensors_and_scalars_unsupported, inplace=False)


# ---- celu / gelu ---------------------------------------------------------------------------


def _celu_scalars(alpha):
    # aten's celu is elu(self, alpha, 1, 1 / alpha), the quotient taken in double.
    return (alpha, 1, 1.0 / float(alpha))


def _celu_unsupported_for(self, alpha, out, inplace):
    if type(alpha) in (bool, int, float) and alpha == 0:
        return "alpha == 0 (native raises)"
    reason = _unary_unsupported(ELU, self, (alpha,), out, inplace)
    return reason or _scalars_unsupported(self.dtype, *_celu_scalars(alpha))


def celu(self, alpha=1.0, *, out=None):
    return ELU((self,), _celu_scalars(alpha), out)


def celu_(self, alpha=1.0):
    return ELU.inplace((self,), _celu_scalars(alpha))


def _celu_unsupported(self, alpha=1.0, *, out=None):
    return _celu_unsupported_for(self, alpha, out, False)


def _celu_inplace_unsupported(self, alpha=1.0):
    return _celu_unsupported_for(self, alpha, None, True)


def gelu(self, *, approximate="none", out=None):
    return GELU[approximate]((self,), (), out)


def gelu_(self, *, approximate="none"):
    return GELU[approximate].inplace((self,))


def _gelu_unsupported(self, *, approximate="none", out=None):
    if approximate not in GELU:
        return f"approximate={approximate!r}"
    return _unary_unsupported(GELU[approximate], self, out=out)


def _gelu_inplace_unsupported(self, *, approximate="none"):
    if approximate not in GELU:
        return f"approximate={approximate!r}"
    return _unary_unsupported(GELU[approximate], self, inplace=True)


# ---- hardtanh / threshold -----------------------------------------------------------------


def _hardtanh_bounds(self, min_val, max_val):
    # clamp converts its bounds to the input dtype; rounding them first gives the same
    # result (the output is one of x, low, high) and keeps the store exact.
    return _in_dtype(min_val, self.dtype), _in_dtype(max_val, self.dtype)


def hardtanh(self, min_val=-1, max_val=1, *, out=None):
    return HARDTANH((self,), _hardtanh_bounds(self, min_val, max_val), out)


def hardtanh_(self, min_val=-1, max_val=1):
    return HARDTANH.inplace((self,), _hardtanh_bounds(self, min_val, max_val))


def _hardtanh_unsupported(self, min_val=-1, max_val=1, *, out=None):
    return _unary_unsupported(HARDTANH, self, (min_val, max_val), out)


def _hardtanh_inplace_unsupported(self, min_val=-1, max_val=1):
    return _unary_unsupported(HARDTANH, self, (min_val, max_val), inplace=True)


def _threshold_bound(tensor, threshold):
    """The CUDA kernel compares in the input dtype, the threshold rounded to it; the CPU
    kernel compares in op-math precision. Each device gets its own native's comparison."""
    return threshold if tensor.device.type == "cpu" else _in_dtype(threshold, tensor.dtype)


def _threshold_scalars(self, threshold, value):
    return _threshold_bound(self, threshold), _in_dtype(value, self.dtype)


def threshold(self, threshold, value, *, out=None):
    return THRESHOLD((self,), _threshold_scalars(self, threshold, value), out)


def threshold_(self, threshold, value):
    return THRESHOLD.inplace((self,), _threshold_scalars(self, threshold, value))


def _threshold_unsupported(self, threshold, value, *, out=None):
    return _unary_unsupported(THRESHOLD, self, (threshold, value), out)


def _threshold_inplace_unsupported(self, threshold, value):
    return _unary_unsupported(THRESHOLD, self, (threshold, value), inplace=True)


# ---- the backward ops ----------------------------------------------------------------------


def gelu_backward(grad_output, self, *, approximate="none", grad_input=None):
    return GELU_BACKWARD[approximate]((grad_output, self), (), grad_input)


def _gelu_backward_unsupported(grad_output, self, *, approximate="none", grad_input=None):
    if approximate not in GELU_BACKWARD:
        return f"approximate={approximate!r}"
    return _binary_unsupported(GELU_BACKWARD[approximate], (grad_output, self), grad_input=grad_input)


def silu_backward(grad_output, self, *, grad_input=None):
    return SILU_BACKWARD((grad_output, self), (), grad_input)


def _silu_backward_unsupported(grad_output, self, *, grad_input=None):
    return _binary_unsupported(SILU_BACKWARD, (grad_output, self), grad_input=grad_input)


def sigmoid_backward(grad_output, output, *, grad_input=None):
    return SIGMOID_BACKWARD((grad_output, output), (), grad_input)


def _sigmoid_backward_unsupported(grad_output, output, *, grad_input=None):
    return _binary_unsupported(SIGMOID_BACKWARD, (grad_output, output), grad_input=grad_input)


def tanh_backward(grad_output, output, *, grad_input=None):
    return TANH_BACKWARD((grad_output, output), (), grad_input)


def _tanh_backward_unsupported(grad_output, output, *, grad_input=None):
    return _binary_unsupported(TANH_BACKWARD, (grad_output, output), grad_input=grad_input)


def threshold_backward(grad_output, self, threshold, *, grad_input=None):
    # self leads: the result takes its layout, as in aten.
    return THRESHOLD_BACKWARD((self, grad_output), (_threshold_bound(self, threshold),), grad_input)


def _threshold_backward_unsupported(grad_output, self, threshold, *, grad_input=None):
    return _binary_unsupported(THRESHOLD_BACKWARD, (self, grad_output), (threshold,), grad_input)


def leaky_relu_backward(grad_output, self, negative_slope, self_is_result, *, grad_input=None):
    return LEAKY_RELU_BACKWARD((self, grad_output), (negative_slope,), grad_input)


def _leaky_relu_backward_unsupported(grad_output, self, negative_slope, self_is_result, *, grad_input=None):
    reason = _binary_unsupported(LEAKY_RELU_BACKWARD, (self, grad_output), (negative_slope,), grad_input)
    if reason is None and self_is_result and negative_slope < 0:
        return "in-place leaky_relu backward with a negative slope (native raises)"
    return reason


def elu_backward(grad_output, alpha, scale, input_scale, is_result, self_or_result, *, grad_input=None):
    return ELU_BACKWARD[bool(is_result)]((grad_output, self_or_result), (alpha, scale, input_scale), grad_input)


def _elu_backward_unsupported(grad_output, alpha, scale, input_scale, is_result, self_or_result, *,
                              grad_input=None):
    reason = _binary_unsupported(ELU_BACKWARD[bool(is_result)], (grad_output, self_or_result),
                                 (alpha, scale, input_scale), grad_input)
    if reason is None and is_result and alpha < 0:
        return "in-place elu backward with a negative alpha (native raises)"
    return reason


def softplus_backward(grad_output, self, beta, threshold, *, grad_input=None):
    return SOFTPLUS_BACKWARD((grad_output, self), (beta, threshold), grad_input)


def _softplus_backward_unsupported(grad_output, self, beta, threshold, *, grad_input=None):
    return _binary_unsupported(SOFTPLUS_BACKWARD, (grad_output, self), (beta, threshold), grad_input)


def hardsigmoid_backward(grad_output, self, *, grad_input=None):
    return HARDSIGMOID_BACKWARD((grad_output, self), (), grad_input)


def _hardsigmoid_backward_unsupported(grad_output, self, *, grad_input=None):
    return _binary_unsupported(HARDSIGMOID_BACKWARD, (grad_output, self), grad_input=grad_input)


def hardtanh_backward(grad_output, self, min_val, max_val, *, grad_input=None):
    return HARDTANH_BACKWARD((grad_output, self), (min_val, max_val), grad_input)


def _hardtanh_backward_unsupported(grad_output, self, min_val, max_val, *, grad_input=None):
    return _binary_unsupported(HARDTANH_BACKWARD, (grad_output, self), (min_val, max_val), grad_input)


# ---- aten rows -----------------------------------------------------------------------------

_GELU_ROWS = aten_rows("gelu", gelu, _gelu_unsupported, _FORWARD, gelu_, _gelu_inplace_unsupported)
_GELU_ROWS[0].cpp = CppRoute(GELU["none"].pointwise)  # the functional row, as relu's and silu's

ATEN = tuple(
    RELU_OP.rows + LEAKY_RELU_OP.rows + ELU_OP.rows
    + aten_rows("celu", celu, _celu_unsupported, _FORWARD, celu_, _celu_inplace_unsupported)
    + _GELU_ROWS + SILU_OP.rows + MISH_OP.rows + SOFTPLUS_OP.rows
    + aten_rows("hardtanh", hardtanh, _hardtanh_unsupported, _FORWARD, hardtanh_, _hardtanh_inplace_unsupported)
    + HARDSIGMOID_OP.rows + HARDSWISH_OP.rows
    + aten_rows("threshold", threshold, _threshold_unsupported, _FORWARD, threshold_, _threshold_inplace_unsupported)
    + aten_rows("gelu_backward", gelu_backward, _gelu_backward_unsupported, _BACKWARD)
    + aten_rows("silu_backward", silu_backward, _silu_backward_unsupported, _BACKWARD)
    + aten_rows("sigmoid_backward", sigmoid_backward, _sigmoid_backward_unsupported, _BACKWARD)
    + aten_rows("tanh_backward", tanh_backward, _tanh_backward_unsupported, _BACKWARD)
    + aten_rows("threshold_backward", threshold_backward, _threshold_backward_unsupported, _BACKWARD)
    + aten_rows("leaky_relu_backward", leaky_relu_backward, _leaky_relu_backward_unsupported, _BACKWARD)
    + aten_rows("elu_backward", elu_backward, _elu_backward_unsupported, _BACKWARD)
    + aten_rows("softplus_backward", softplus_backward, _softplus_backward_unsupported, _BACKWARD)
    + aten_rows("hardsigmoid_backward", hardsigmoid_backward, _hardsigmoid_backward_unsupported, _BACKWARD)
    + HARDSWISH_BACKWARD_OP.rows
    + aten_rows("hardtanh_backward", hardtanh_backward, _hardtanh_backward_unsupported, _BACKWARD)
    + MISH_BACKWARD_OP.rows
)
