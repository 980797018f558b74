"""Activations, their backward aten ops, and fused gated functions.

Forward (functional, out=, in place where aten has it): relu, leaky_relu, elu,
celu, gelu ('none' and 'tanh'), silu, mish, softplus, hardtanh, hardsigmoid,
hardswish, threshold, glu. Backward: gelu, silu, sigmoid, tanh, threshold,
leaky_relu, elu, softplus, hardsigmoid, hardswish, hardtanh, mish and glu
(with their grad_input/out forms), so autograd through the routed forwards runs
our kernels both ways.

Not routed: selu/selu_ and relu6/relu6_ are CompositeImplicitAutograd in aten
(a kernel registered on the backend key would take them away from autograd's
decomposition and leave them without a derivative); they decompose into elu and
hardtanh, which are ours, so they still run our kernels.

Each formula follows PyTorch's CUDA kernel (same operation order, same
constants, scalars converted to the compute dtype) so that compiled results
agree with native to the last bit or close to it. Only floating dtypes are
taken: integer inputs go to native, which raises or handles them as PyTorch does.

Fused functions (explicit calls only, not aten rows), all differentiable with
backward passes on our kernels:

- ``silu_and_mul(x, y)`` = silu(x) * y, ``gelu_and_mul(x, y, approximate)`` = gelu(x) * y;
- ``swiglu(x)``, ``geglu(x, approximate)``, ``reglu(x)``: the last dim of ``x``
  split in two halves [a, b], giving act(a) * b (the activation on the first half).
"""

import math

import torch
import triton
import triton.language as tl
from torch.autograd.function import once_differentiable

from ...codegen.elementwise import Elementwise, aten_rows
from ...utils.layout import broadcast_shapes, separate_output_reason
from ...utils.dtypes import COMPUTE_DTYPE
from ...dispatch import Row
from ...fastpath import CppRoute
from ...codegen.tl_math import device_math, ieee_div

__all__ = [
    "relu", "relu_", "leaky_relu", "leaky_relu_", "elu", "elu_", "celu", "celu_", "gelu", "gelu_",
    "silu", "silu_", "mish", "mish_", "softplus", "hardtanh", "hardtanh_", "hardsigmoid", "hardsigmoid_",
    "hardswish", "hardswish_", "threshold", "threshold_", "glu",
    "gelu_backward", "silu_backward", "sigmoid_backward", "tanh_backward", "threshold_backward",
    "leaky_relu_backward", "elu_backward", "softplus_backward", "hardsigmoid_backward",
    "hardswish_backward", "hardtanh_backward", "mish_backward", "glu_backward",
    "silu_and_mul", "gelu_and_mul", "swiglu", "geglu", "reglu",
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


@triton.jit
def _glu(a, b):
    return a * _sigmoid(b)


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


@triton.jit
def _glu_backward_first(b, dy):
    return _sigmoid(b) * dy


@triton.jit
def _glu_backward_second(a, b, dy):
    s = _sigmoid(b)
    return (1 - s) * s * dy * a


# ---- fused gated formulas: act(x) * y and their gradients ---------------------------------


@triton.jit
def _silu_mul(x, y):
    return _silu(x) * y


@triton.jit
def _silu_mul_dx(x, y, dy):
    return _silu_backward(dy * y, x)


@triton.jit
def _gelu_mul(x, y):
    return _gelu(x) * y


@triton.jit
def _gelu_mul_dx(x, y, dy):
    return _gelu_backward(dy * y, x)


@triton.jit
def _gelu_tanh_mul(x, y):
    return _gelu_tanh(x) * y


@triton.jit
def _gelu_tanh_mul_dx(x, y, dy):
    return _gelu_tanh_backward(dy * y, x)


@triton.jit
def _relu_mul(x, y):
    return _relu(x) * y


@triton.jit
def _relu_mul_dx(x, y, dy):
    return tl.where(x <= 0, 0, dy * y)


def _floating(dtype):
    return dtype.is_floating_point


def _op(formula, name, flush_denormals=False):
    return Elementwise(formula, name, accepts=_floating, flush_denormals=flush_denormals)


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
GLU = _op(_glu, "glu")

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
GLU_BACKWARD_FIRST = _op(_glu_backward_first, "glu_backward_first")
GLU_BACKWARD_SECOND = _op(_glu_backward_second, "glu_backward_second")

# kind -> (act(x) * y, its gradient in x); the gradient in y is act(x) * dy.
_GATED = {
    "silu": (_op(_silu_mul, "silu_and_mul"), _op(_silu_mul_dx, "silu_and_mul_dx")),
    "gelu": (_op(_gelu_mul, "gelu_and_mul"), _op(_gelu_mul_dx, "gelu_and_mul_dx")),
    "gelu_tanh": (_op(_gelu_tanh_mul, "gelu_tanh_and_mul"), _op(_gelu_tanh_mul_dx, "gelu_tanh_and_mul_dx")),
    "relu": (_op(_relu_mul, "relu_and_mul"), _op(_relu_mul_dx, "relu_and_mul_dx")),
}


# ---- checks shared by every row -----------------------------------------------------------


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


def _unary_unsupported(op, self, scalars=(), out=None, inplace=False):
    if not isinstance(self, torch.Tensor):
        return "self is not a tensor"
    reason = op.unsupported((self,), out, inplace)
    if reason is None and out is not None and out.dtype != self.dtype:
        return f"out dtype {out.dtype} differs from the input's {self.dtype}"
    return reason or _scalars_unsupported(self.dtype, *scalars)


def _plain_unary(op, name):
    """functional, in-place and their conditions for an activation without parameters."""

    def functional(self, *, out=None):
        return op((self,), (), out)

    def inplace(self):
        return op.inplace((self,))

    def unsupported(self, *, out=None):
        return _unary_unsupported(op, self, out=out)

    def inplace_unsupported(self):
        return _unary_unsupported(op, self, inplace=True)

    functional.__name__, inplace.__name__ = name, name + "_"
    return functional, inplace, unsupported, inplace_unsupported


def _binary_unsupported(op, tensors, scalars=(), grad_input=None):
    if not all(isinstance(t, torch.Tensor) for t in tensors):
        return "operand is not a tensor"
    dtype = tensors[0].dtype
    if any(t.dtype != dtype for t in tensors):
        return "operands of different dtypes"
    reason = op.unsupported(tuple(tensors), grad_input)
    if reason is None and grad_input is not None and grad_input.dtype != dtype:
        return f"grad_input dtype {grad_input.dtype} differs from the operands' {dtype}"
    return reason or _scalars_unsupported(dtype, *scalars)


# ---- relu / leaky_relu / elu / celu ------------------------------------------------------


relu, relu_, _relu_unsupported, _relu_inplace_unsupported = _plain_unary(RELU, "relu")


def leaky_relu(self, negative_slope=0.01, *, out=None):
    return LEAKY_RELU((self,), (negative_slope,), out)


def leaky_relu_(self, negative_slope=0.01):
    return LEAKY_RELU.inplace((self,), (negative_slope,))


def _leaky_relu_unsupported(self, negative_slope=0.01, *, out=None):
    return _unary_unsupported(LEAKY_RELU, self, (negative_slope,), out)


def _leaky_relu_inplace_unsupported(self, negative_slope=0.01):
    return _unary_unsupported(LEAKY_RELU, self, (negative_slope,), inplace=True)


def elu(self, alpha=1, scale=1, input_scale=1, *, out=None):
    return ELU((self,), (alpha, scale, input_scale), out)


def elu_(self, alpha=1, scale=1, input_scale=1):
    return ELU.inplace((self,), (alpha, scale, input_scale))


def _elu_unsupported(self, alpha=1, scale=1, input_scale=1, *, out=None):
    return _unary_unsupported(ELU, self, (alpha, scale, input_scale), out)


def _elu_inplace_unsupported(self, alpha=1, scale=1, input_scale=1):
    return _unary_unsupported(ELU, self, (alpha, scale, input_scale), inplace=True)


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


# ---- gelu / silu / mish / softplus --------------------------------------------------------


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


silu, silu_, _silu_unsupported, _silu_inplace_unsupported = _plain_unary(SILU, "silu")


mish, mish_, _mish_unsupported, _mish_inplace_unsupported = _plain_unary(MISH, "mish")


def softplus(self, beta=1, threshold=20, *, out=None):
    return SOFTPLUS((self,), (beta, threshold), out)


def _softplus_unsupported(self, beta=1, threshold=20, *, out=None):
    return _unary_unsupported(SOFTPLUS, self, (beta, threshold), out)


# ---- hardtanh / hardsigmoid / hardswish / threshold ---------------------------------------


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


(hardsigmoid, hardsigmoid_, _hardsigmoid_unsupported,
 _hardsigmoid_inplace_unsupported) = _plain_unary(HARDSIGMOID, "hardsigmoid")


(hardswish, hardswish_, _hardswish_unsupported,
 _hardswish_inplace_unsupported) = _plain_unary(HARDSWISH, "hardswish")


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


# ---- glu: the two halves of one dim, as two strided operands -------------------------------


def _halves(tensor, dim):
    size = tensor.shape[dim] // 2
    return tensor.narrow(dim, 0, size), tensor.narrow(dim, size, size)


def _glu_dim(self, dim):
    """``dim`` wrapped, or None when native must raise (scalar, bad dim, odd size)."""
    if not isinstance(self, torch.Tensor) or self.dim() == 0 or type(dim) is not int:
        return None
    if not -self.dim() <= dim < self.dim():
        return None
    dim = dim % self.dim()
    return dim if self.shape[dim] % 2 == 0 else None


def glu(self, dim=-1, *, out=None):
    return GLU(_halves(self, _glu_dim(self, dim)), (), out)


def _glu_unsupported(self, dim=-1, *, out=None):
    wrapped = _glu_dim(self, dim)
    if wrapped is None:
        return "not a tensor with an even size along dim (native raises)"
    reason = GLU.unsupported(_halves(self, wrapped), out)
    if reason is None and out is not None and out.dtype != self.dtype:
        return f"out dtype {out.dtype} differs from the input's {self.dtype}"
    return reason


def glu_backward(grad_output, self, dim, *, grad_input=None):
    dim = _glu_dim(self, dim)
    a, b = _halves(self, dim)
    if grad_input is None:
        grad_input = torch.empty(self.shape, dtype=self.dtype, device=self.device)
    first, second = _halves(grad_input, dim)
    GLU_BACKWARD_FIRST((b, grad_output), (), first)
    GLU_BACKWARD_SECOND((a, b, grad_output), (), second)
    return grad_input


def _glu_backward_unsupported(grad_output, self, dim, *, grad_input=None):
    wrapped = _glu_dim(self, dim)
    if wrapped is None:
        return "not a tensor with an even size along dim (native raises)"
    if not isinstance(grad_output, torch.Tensor) or grad_output.dtype != self.dtype:
        return "grad_output of another dtype"
    a, b = _halves(self, wrapped)
    if grad_output.shape != a.shape:
        return "grad_output is not of the halved shape"
    reason = GLU_BACKWARD_SECOND.unsupported((a, b, grad_output))
    if reason is None and grad_input is not None:
        if grad_input.dtype != self.dtype or grad_input.shape != self.shape or grad_input.device != self.device:
            return "grad_input needs a resize or a cast"
        return separate_output_reason(grad_input, self, grad_output)
    return reason


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


def hardswish_backward(grad_output, self, *, out=None):
    return HARDSWISH_BACKWARD((grad_output, self), (), out)


def _hardswish_backward_unsupported(grad_output, self, *, out=None):
    return _binary_unsupported(HARDSWISH_BACKWARD, (grad_output, self), grad_input=out)


def hardtanh_backward(grad_output, self, min_val, max_val, *, grad_input=None):
    return HARDTANH_BACKWARD((grad_output, self), (min_val, max_val), grad_input)


def _hardtanh_backward_unsupported(grad_output, self, min_val, max_val, *, grad_input=None):
    return _binary_unsupported(HARDTANH_BACKWARD, (grad_output, self), (min_val, max_val), grad_input)


def mish_backward(grad_output, self):
    return MISH_BACKWARD((grad_output, self))


def _mish_backward_unsupported(grad_output, self):
    return _binary_unsupported(MISH_BACKWARD, (grad_output, self))


# ---- fused gated functions -----------------------------------------------------------------


def _gelu_kind(approximate):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return "gelu" if approximate == "none" else "gelu_tanh"


def _gradient(op, operands, like):
    """``op(operands)`` for an input of ``like``'s shape; where it was broadcast, the
    values are kept in the compute dtype until summed down to that shape."""
    shape = broadcast_shapes([t.shape for t in operands])
    if shape == like.shape:
        return op(operands)
    compute = COMPUTE_DTYPE[like.dtype]
    wide = op.pointwise(torch.empty(shape, dtype=compute, device=like.device), compute, *operands)
    return wide.sum_to_size(like.shape).to(like.dtype)


class _GatedPair(torch.autograd.Function):
    """act(x) * y for two tensors (broadcasting like mul)."""

    @staticmethod
    def forward(ctx, x, y, kind):
        ctx.kind = kind
        ctx.save_for_backward(x, y)
        return _GATED[kind][0]((x, y))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        forward, dx_formula = _GATED[ctx.kind]
        dx = _gradient(dx_formula, (x, y, grad), x) if ctx.needs_input_grad[0] else None
        dy = _gradient(forward, (x, grad), y) if ctx.needs_input_grad[1] else None
        return dx, dy, None


class _GatedHalves(torch.autograd.Function):
    """act(a) * b where [a, b] are the halves of the last dim of one tensor; the
    gradient is written straight into the two halves of one tensor."""

    @staticmethod
    def forward(ctx, x, kind):
        ctx.kind = kind
        ctx.save_for_backward(x)
        return _GATED[kind][0](_halves(x, x.dim() - 1))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        forward, dx_formula = _GATED[ctx.kind]
        a, b = _halves(x, x.dim() - 1)
        result = torch.empty_like(x)
        da, db = _halves(result, x.dim() - 1)
        dx_formula((a, b, grad), (), da)
        forward((a, grad), (), db)
        return result, None


def _composite(kind, x, y):
    """The same function in PyTorch's own ops, for inputs our kernels do not take."""
    if kind == "silu":
        return torch.nn.functional.silu(x) * y
    if kind == "relu":
        return torch.relu(x) * y
    return torch.nn.functional.gelu(x, approximate="none" if kind == "gelu" else "tanh") * y


def _gated_pair(kind, x, y):
    if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)) or x.dtype != y.dtype \
            or _GATED[kind][0].unsupported((x, y)) is not None:
        return _composite(kind, x, y)
    return _GatedPair.apply(x, y, kind)


def _gated_halves(kind, x, name):
    if not isinstance(x, torch.Tensor) or x.dim() == 0 or x.shape[-1] % 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} splits the last dim in two halves: it must be even, got {shape}")
    a, b = _halves(x, x.dim() - 1)
    if _GATED[kind][0].unsupported((a, b)) is not None:
        return _composite(kind, a, b)
    return _GatedHalves.apply(x, kind)


def silu_and_mul(x, y):
    """silu(x) * y in one kernel (differentiable)."""
    return _gated_pair("silu", x, y)


def gelu_and_mul(x, y, approximate="none"):
    """gelu(x, approximate) * y in one kernel (differentiable)."""
    return _gated_pair(_gelu_kind(approximate), x, y)


def swiglu(x):
    """silu(a) * b, [a, b] the halves of the last dim of ``x`` (differentiable)."""
    return _gated_halves("silu", x, "swiglu")


def geglu(x, approximate="none"):
    """gelu(a, approximate) * b, [a, b] the halves of the last dim of ``x`` (differentiable)."""
    return _gated_halves(_gelu_kind(approximate), x, "geglu")


def reglu(x):
    """relu(a) * b, [a, b] the halves of the last dim of ``x`` (differentiable)."""
    return _gated_halves("relu", x, "reglu")


# ---- aten rows -----------------------------------------------------------------------------

_FORWARD = ("", "out")
_BACKWARD = ("", "grad_input")

ATEN = tuple(
    aten_rows("relu", relu, relu_, _relu_unsupported, _relu_inplace_unsupported, _FORWARD)
    + aten_rows("leaky_relu", leaky_relu, leaky_relu_, _leaky_relu_unsupported,
                _leaky_relu_inplace_unsupported, _FORWARD)
    + aten_rows("elu", elu, elu_, _elu_unsupported, _elu_inplace_unsupported, _FORWARD)
    + aten_rows("celu", celu, celu_, _celu_unsupported, _celu_inplace_unsupported, _FORWARD)
    + aten_rows("gelu", gelu, gelu_, _gelu_unsupported, _gelu_inplace_unsupported, _FORWARD)
    + aten_rows("silu", silu, silu_, _silu_unsupported, _silu_inplace_unsupported, _FORWARD)
    + aten_rows("mish", mish, mish_, _mish_unsupported, _mish_inplace_unsupported, _FORWARD)
    + aten_rows("softplus", softplus, None, _softplus_unsupported, None, _FORWARD)
    + aten_rows("hardtanh", hardtanh, hardtanh_, _hardtanh_unsupported, _hardtanh_inplace_unsupported, _FORWARD)
    + aten_rows("hardsigmoid", hardsigmoid, hardsigmoid_, _hardsigmoid_unsupported,
                _hardsigmoid_inplace_unsupported, _FORWARD)
    + aten_rows("hardswish", hardswish, hardswish_, _hardswish_unsupported, _hardswish_inplace_unsupported,
                _FORWARD)
    + aten_rows("threshold", threshold, threshold_, _threshold_unsupported, _threshold_inplace_unsupported,
                _FORWARD)
    + aten_rows("glu", glu, None, _glu_unsupported, None, _FORWARD)
    + aten_rows("gelu_backward", gelu_backward, None, _gelu_backward_unsupported, None, _BACKWARD)
    + aten_rows("silu_backward", silu_backward, None, _silu_backward_unsupported, None, _BACKWARD)
    + aten_rows("sigmoid_backward", sigmoid_backward, None, _sigmoid_backward_unsupported, None, _BACKWARD)
    + aten_rows("tanh_backward", tanh_backward, None, _tanh_backward_unsupported, None, _BACKWARD)
    + aten_rows("threshold_backward", threshold_backward, None, _threshold_backward_unsupported, None,
                _BACKWARD)
    + aten_rows("leaky_relu_backward", leaky_relu_backward, None, _leaky_relu_backward_unsupported, None,
                _BACKWARD)
    + aten_rows("elu_backward", elu_backward, None, _elu_backward_unsupported, None, _BACKWARD)
    + aten_rows("softplus_backward", softplus_backward, None, _softplus_backward_unsupported, None, _BACKWARD)
    + aten_rows("hardsigmoid_backward", hardsigmoid_backward, None, _hardsigmoid_backward_unsupported, None,
                _BACKWARD)
    + aten_rows("hardswish_backward", hardswish_backward, None, _hardswish_backward_unsupported, None,
                ("", "out"))
    + aten_rows("hardtanh_backward", hardtanh_backward, None, _hardtanh_backward_unsupported, None, _BACKWARD)
    + [Row("mish_backward", mish_backward, _mish_backward_unsupported)]
    + aten_rows("glu_backward", glu_backward, None, _glu_backward_unsupported, None, _BACKWARD)
)

# The activations models call most go through C++ first once the wrappers are built.
_CPP_ROUTES = {"relu": RELU, "gelu": GELU["none"], "silu": SILU}
for _row in ATEN:
    if _row.name in _CPP_ROUTES:
        _row.cpp = CppRoute(_CPP_ROUTES[_row.name].pointwise)
