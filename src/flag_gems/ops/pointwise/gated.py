"""Gated activations: glu and its backward, and the fused act(x) * y functions (swiglu, geglu...).

glu (functional and out=) and glu_backward (and grad_input=) are aten rows: the two
halves of one dim, as two strided operands. The fused functions are explicit calls only,
all differentiable with backward passes on our kernels:

- ``silu_and_mul(x, y)`` = silu(x) * y, ``gelu_and_mul(x, y, approximate)`` = gelu(x) * y;
- ``swiglu(x)``, ``geglu(x, approximate)``, ``reglu(x)``: the last dim of ``x``
  split in two halves [a, b], giving act(a) * b (the activation on the first half).
"""

import torch
import triton
import triton.language as tl
from torch.autograd.function import once_differentiable

from ...dispatch import aten_rows
from ...utils.dtypes import COMPUTE_DTYPE
from ...utils.layout import broadcast_shapes, separate_output_reason
from .activation import _gelu, _gelu_backward, _gelu_tanh, _gelu_tanh_backward, _op, _relu, _sigmoid, _silu
from .activation import _silu_backward

__all__ = ["glu", "glu_backward", "silu_and_mul", "gelu_and_mul", "swiglu", "geglu", "reglu"]


@triton.jit
def _glu(a, b):
    return a * _sigmoid(b)


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


GLU = _op(_glu, "glu")
GLU_BACKWARD_FIRST = _op(_glu_backward_first, "glu_backward_first")
GLU_BACKWARD_SECOND = _op(_glu_backward_second, "glu_backward_second")

# kind -> (act(x) * y, its gradient in x); the gradient in y is act(x) * dy.
_GATED = {
    "silu": (_op(_silu_mul, "silu_and_mul"), _op(_silu_mul_dx, "silu_and_mul_dx")),
    "gelu": (_op(_gelu_mul, "gelu_and_mul"), _op(_gelu_mul_dx, "gelu_and_mul_dx")),
    "gelu_tanh": (_op(_gelu_tanh_mul, "gelu_tanh_and_mul"), _op(_gelu_tanh_mul_dx, "gelu_tanh_and_mul_dx")),
    "relu": (_op(_relu_mul, "relu_and_mul"), _op(_relu_mul_dx, "relu_and_mul_dx")),
}


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
    return GLU.unsupported(_halves(self, wrapped), out)  # an out of another dtype too (out_casts)


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


ATEN = tuple(
    aten_rows("glu", glu, _glu_unsupported, ("", "out"))
    + aten_rows("glu_backward", glu_backward, _glu_backward_unsupported, ("", "grad_input"))
)
