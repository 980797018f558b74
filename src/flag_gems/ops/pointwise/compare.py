"""Comparisons, logic and bit operators, NaN/infinity tests, nan_to_num, where and
masked_fill: every aten overload of theirs that has a kernel of its own (see ``ATEN``).

Left to PyTorch, because they are CompositeImplicitAutograd and decompose into
the overloads routed here: isfinite, isclose, where.Scalar/ScalarSelf/ScalarOther,
__and__/__or__/__xor__ (and their in-place forms), and the aliases greater, less,
greater_equal, less_equal, not_equal.

PyTorch converts every operand to the common dtype before it compares, selects
or combines values; our kernels compute in a wider dtype (fp32 for fp16/bf16,
int32 for int8/uint8/int16). Where the common dtype is one of those narrow
ones, ``_as_common`` converts what it cannot hold exactly before the launch:
numbers and 0-d tensors (``h == 1.0001`` is True when ``h`` holds fp16 1.0;
``u8 == 300`` compares with 44), and integer tensors that a half type rounds.

Calls go to PyTorch's native kernels where PyTorch raises or where we cannot match it
exactly: a where() condition that is not bool (uint8 is deprecated but allowed),
masked_fill values that overflow self's dtype (native raises), a masked_fill value
tensor on the device (native reads it there), out= tensors that need resizing.
"""

import math

import torch
import triton
import triton.language as tl

from ...codegen.elementwise import Elementwise, Promotion, aten_rows
from ...utils.dtypes import promoted_dtype
from ...utils.layout import broadcast_shape
from ...utils.dtypes import COMPUTE_DTYPE
from ...dispatch import Row
from ...fastpath import CppRoute

__all__ = [
    "eq", "eq_", "ne", "ne_", "lt", "lt_", "le", "le_", "gt", "gt_", "ge", "ge_",
    "logical_and", "logical_and_", "logical_or", "logical_or_", "logical_xor", "logical_xor_",
    "logical_not", "logical_not_",
    "bitwise_and", "bitwise_and_", "bitwise_or", "bitwise_or_", "bitwise_xor", "bitwise_xor_",
    "bitwise_not", "bitwise_not_",
    "bitwise_left_shift", "bitwise_left_shift_", "bitwise_right_shift", "bitwise_right_shift_",
    "isnan", "isinf", "isposinf", "isneginf",
    "nan_to_num", "nan_to_num_", "where", "masked_fill", "masked_fill_",
]

_INF: tl.constexpr = tl.constexpr(float("inf"))

# ---- formulas (operands arrive in the compute dtype) -------------------------------------


@triton.jit
def _eq(a, b):
    return a == b


@triton.jit
def _ne(a, b):
    return a != b


@triton.jit
def _lt(a, b):
    return a < b


@triton.jit
def _le(a, b):
    return a <= b


@triton.jit
def _gt(a, b):
    return a > b


@triton.jit
def _ge(a, b):
    return a >= b


@triton.jit
def _logical_and(a, b):
    return (a != 0) & (b != 0)


@triton.jit
def _logical_or(a, b):
    return (a != 0) | (b != 0)


@triton.jit
def _logical_xor(a, b):
    return (a != 0) != (b != 0)


@triton.jit
def _logical_not(a):
    return a == 0


@triton.jit
def _bitwise_and(a, b):
    return a & b


@triton.jit
def _bitwise_or(a, b):
    return a | b


@triton.jit
def _bitwise_xor(a, b):
    return a ^ b


@triton.jit
def _bitwise_not(a):
    return ~a


# Shifts follow PyTorch's kernels: a shift by a negative amount or by the width
# of the type or more gives 0 (left) or the sign fill (right). Computing in a
# wider integer gives the same bits once truncated to the result dtype, so only
# amounts outside [0, compute width) need the explicit case: compiled, such a
# shift is undefined (LLVM poison). (The interpreter's numpy shifts saturate by
# themselves, so only GPU runs exercise it.)


@triton.jit
def _left_shift(a, b):
    bits = a.dtype.primitive_bitwidth
    outside = (b < 0) | (b >= bits)
    return tl.where(outside, 0, a << tl.where(outside, 0, b))


@triton.jit
def _right_shift(a, b):
    bits = a.dtype.primitive_bitwidth
    outside = (b < 0) | (b >= bits)
    return a >> tl.where(outside, bits - 1, b)  # the compute dtypes are signed: arithmetic shift


@triton.jit
def _isnan(a):
    return a != a


@triton.jit
def _isinf(a):
    if a.dtype.is_floating():
        return (a == _INF) | (a == -_INF)
    else:
        return a != a  # integers are never infinite


@triton.jit
def _isposinf(a):
    if a.dtype.is_floating():
        return a == _INF
    else:
        return a != a


@triton.jit
def _isneginf(a):
    if a.dtype.is_floating():
        return a == -_INF
    else:
        return a != a


@triton.jit
def _nan_to_num(a, nan, posinf, neginf):
    if a.dtype.is_floating():
        a = tl.where(a != a, nan, a)
        a = tl.where(a == _INF, posinf, a)
        return tl.where(a == -_INF, neginf, a)
    else:
        return a  # integers hold no NaN or infinity: a copy


@triton.jit
def _where(condition, a, b):
    return tl.where(condition != 0, a, b)


@triton.jit
def _masked_fill(a, mask, value):
    return tl.where(mask != 0, value, a)


def _integral(dtype):
    return not dtype.is_floating_point


def _integral_not_bool(dtype):
    return not dtype.is_floating_point and dtype != torch.bool


_BOOL = Promotion.ALWAYS_BOOL
EQ = Elementwise(_eq, "eq", _BOOL)
NE = Elementwise(_ne, "ne", _BOOL)
LT = Elementwise(_lt, "lt", _BOOL)
LE = Elementwise(_le, "le", _BOOL)
GT = Elementwise(_gt, "gt", _BOOL)
GE = Elementwise(_ge, "ge", _BOOL)
LOGICAL_AND = Elementwise(_logical_and, "logical_and", _BOOL)
LOGICAL_OR = Elementwise(_logical_or, "logical_or", _BOOL)
LOGICAL_XOR = Elementwise(_logical_xor, "logical_xor", _BOOL)
LOGICAL_NOT = Elementwise(_logical_not, "logical_not", _BOOL)
BITWISE_AND = Elementwise(_bitwise_and, "bitwise_and", accepts=_integral)
BITWISE_OR = Elementwise(_bitwise_or, "bitwise_or", accepts=_integral)
BITWISE_XOR = Elementwise(_bitwise_xor, "bitwise_xor", accepts=_integral)
BITWISE_NOT = Elementwise(_bitwise_not, "bitwise_not", accepts=_integral)
LEFT_SHIFT = Elementwise(_left_shift, "left_shift", accepts=_integral_not_bool)
RIGHT_SHIFT = Elementwise(_right_shift, "right_shift", accepts=_integral_not_bool)
ISNAN = Elementwise(_isnan, "isnan", _BOOL)
ISINF = Elementwise(_isinf, "isinf", _BOOL)
ISPOSINF = Elementwise(_isposinf, "isposinf", _BOOL)
ISNEGINF = Elementwise(_isneginf, "isneginf", _BOOL)
NAN_TO_NUM = Elementwise(_nan_to_num, "nan_to_num")
WHERE = Elementwise(_where, "where")
MASKED_FILL = Elementwise(_masked_fill, "masked_fill")

# ---- conversion to the common dtype ------------------------------------------------------

# Common dtypes that the kernels compute in a wider dtype.
_NARROW = frozenset({torch.float16, torch.bfloat16, torch.int8, torch.uint8, torch.int16})
# Integer dtypes whose values fp16 and bf16 do not all hold.
_ROUNDED_IN_HALF = frozenset({torch.int16, torch.int32, torch.int64})
_INT_RANGE = {
    dtype: (torch.iinfo(dtype).min, torch.iinfo(dtype).max)
    for dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
}


def _number_as(value, dtype):
    """A Python number as ``dtype`` holds it after PyTorch's (C++ static_cast) conversion."""
    if dtype == torch.bool:
        return bool(value)
    if not dtype.is_floating_point:
        low, high = _INT_RANGE[dtype]
        return (int(value) - low) % (high - low + 1) + low  # integers wrap around
    if dtype == torch.float64:
        return float(value)
    source = torch.float64 if type(value) is float else torch.int64
    return torch.tensor(value, dtype=source).to(dtype).item()


def _as_common(operands, common):
    """The operands with what the kernel would see wider than ``common`` converted to it."""
    if common not in _NARROW:
        return operands  # the compute dtype is the common dtype: the kernel's own casts are PyTorch's
    converted = []
    for op in operands:
        if not isinstance(op, torch.Tensor):
            op = _number_as(op, common)
        elif op.dtype != common and (op.dim() == 0 or (common.is_floating_point and op.dtype in _ROUNDED_IN_HALF)):
            op = op.to(common)
        converted.append(op)
    return converted


def _launch(op, operands, params=(), out=None):
    """``op`` over ``operands`` (promoted as PyTorch does), into ``out`` or a new tensor."""
    common = promoted_dtype(operands)
    compute = COMPUTE_DTYPE[common]
    result_dtype = torch.bool if op.promotion is Promotion.ALWAYS_BOOL else common
    inputs = _as_common(operands, common)
    # Launched from C++ when flag_gems.c_operators holds the kernel. (Not when a number
    # promotes the tensors: the default dtype it promotes integers to may change.)
    cpp = out is None and all(t.dtype == common for t in inputs if isinstance(t, torch.Tensor))
    if cpp:
        result = op.pointwise.fast(*inputs, *params)
        if result is not None:
            return result
    # Another out dtype receives the result through a copy. (Storing bools into it directly
    # would save a pass, but teach the C++ wrappers a kernel whose result is not bool.)
    return op.launch(operands, inputs, params, out, compute, result_dtype, teach_cpp=cpp)


def _named(function, name):
    function.__name__ = function.__qualname__ = name
    return function


# name -> (functional, in-place, unsupported, in-place unsupported) of each binary operator
_BINARY = {}


def _binary(op, name):
    """The functional (out= included) and in-place implementations of a binary operator;
    they and their ``unsupported`` conditions are kept in ``_BINARY`` for the rows."""

    def functional(self, other, *, out=None):
        return _launch(op, (self, other), out=out)

    def inplace(self, other):
        return _launch(op, (self, other), out=self)

    def unsupported(self, other, *, out=None):
        return op.unsupported((self, other), out)

    def inplace_unsupported(self, other):
        return op.unsupported((self, other), inplace=True)

    _BINARY[name] = (_named(functional, name), _named(inplace, name + "_"),
                     _named(unsupported, f"_{name}_unsupported"),
                     _named(inplace_unsupported, f"_{name}_inplace_unsupported"))
    return functional, inplace


# ---- comparisons and logic ---------------------------------------------------------------

eq, eq_ = _binary(EQ, "eq")
ne, ne_ = _binary(NE, "ne")
lt, lt_ = _binary(LT, "lt")
le, le_ = _binary(LE, "le")
gt, gt_ = _binary(GT, "gt")
ge, ge_ = _binary(GE, "ge")
logical_and, logical_and_ = _binary(LOGICAL_AND, "logical_and")
logical_or, logical_or_ = _binary(LOGICAL_OR, "logical_or")
logical_xor, logical_xor_ = _binary(LOGICAL_XOR, "logical_xor")


def logical_not(self, *, out=None):
    return _launch(LOGICAL_NOT, (self,), out=out)


def logical_not_(self):
    return _launch(LOGICAL_NOT, (self,), out=self)


# ---- bit operators -----------------------------------------------------------------------

bitwise_and, bitwise_and_ = _binary(BITWISE_AND, "bitwise_and")
bitwise_or, bitwise_or_ = _binary(BITWISE_OR, "bitwise_or")
bitwise_xor, bitwise_xor_ = _binary(BITWISE_XOR, "bitwise_xor")
bitwise_left_shift, bitwise_left_shift_ = _binary(LEFT_SHIFT, "bitwise_left_shift")
bitwise_right_shift, bitwise_right_shift_ = _binary(RIGHT_SHIFT, "bitwise_right_shift")


def _not_for(self):
    return LOGICAL_NOT if self.dtype == torch.bool else BITWISE_NOT  # ~True is False, not -2 != 0


def bitwise_not(self, *, out=None):
    return _launch(_not_for(self), (self,), out=out)


def bitwise_not_(self):
    return _launch(_not_for(self), (self,), out=self)


def _exact_out_unsupported(op):
    """For out= forms that PyTorch composes from the functional one: ``out`` must
    have the result's dtype (a resize still goes to native)."""

    def unsupported(self, other, *, out):
        reason = op.unsupported((self, other), out)
        if reason is None and out.dtype != promoted_dtype((self, other)):
            return f"out dtype {out.dtype} differs from the result dtype"
        return reason

    return unsupported


def _same_dtype_out(unsupported):
    def check(self, other, *, out):
        reason = unsupported(self, other, out=out)
        if reason is None and out.dtype != promoted_dtype((self, other)):
            return f"out dtype {out.dtype} differs from the result dtype"
        return reason

    return check


# ---- NaN and infinity --------------------------------------------------------------------


def _bool_out_unsupported(op):
    """For isnan & co, whose out= form takes only a bool ``out``."""

    def unsupported(self, *, out=None):
        if out is not None and out.dtype != torch.bool:
            return "out is not a bool tensor"
        return op.unsupported((self,), out)

    return unsupported


def isnan(self, *, out=None):
    return _launch(ISNAN, (self,), out=out)


def isinf(self, *, out=None):
    return _launch(ISINF, (self,), out=out)


def isposinf(self, *, out=None):
    return _launch(ISPOSINF, (self,), out=out)


def isneginf(self, *, out=None):
    return _launch(ISNEGINF, (self,), out=out)


# ---- nan_to_num --------------------------------------------------------------------------


def _optional_float(value):
    return value is None or type(value) in (float, int)


def _nan_to_num_unsupported(self, nan=None, posinf=None, neginf=None, *, out=None):
    if not all(_optional_float(v) for v in (nan, posinf, neginf)):
        return "replacement of another type than float"
    if out is not None and isinstance(self, torch.Tensor) and out.dtype != self.dtype:
        return "out dtype differs from self's"
    return NAN_TO_NUM.unsupported((self,), out)


def _nan_to_num_inplace_unsupported(self, nan=None, posinf=None, neginf=None):
    if not all(_optional_float(v) for v in (nan, posinf, neginf)):
        return "replacement of another type than float"
    return NAN_TO_NUM.unsupported((self,), inplace=True)


def _replacements(dtype, nan, posinf, neginf):
    """The replacement values as ``dtype`` holds them (PyTorch's defaults: 0, max, lowest)."""
    if not dtype.is_floating_point:
        return 0, 0, 0
    info = torch.finfo(dtype)
    values = (0.0 if nan is None else nan, info.max if posinf is None else posinf,
              info.min if neginf is None else neginf)
    return tuple(_number_as(float(v), dtype) for v in values)


def nan_to_num(self, nan=None, posinf=None, neginf=None, *, out=None):
    return _launch(NAN_TO_NUM, (self,), _replacements(self.dtype, nan, posinf, neginf), out)


def nan_to_num_(self, nan=None, posinf=None, neginf=None):
    return _launch(NAN_TO_NUM, (self,), _replacements(self.dtype, nan, posinf, neginf), self)


# ---- where -------------------------------------------------------------------------------


def _where_unsupported(condition, self, other, *, out=None):
    if not isinstance(condition, torch.Tensor) or condition.dtype != torch.bool:
        return "condition is not a bool tensor"
    reason = WHERE.unsupported((condition, self, other), out)
    if reason is None and out is not None and out.dtype != promoted_dtype((condition, self, other)):
        return "out dtype differs from the result dtype"
    return reason


def where(condition, self, other, *, out=None):
    """``self`` where ``condition`` holds, else ``other``; in their promoted dtype (a bool
    condition never changes it, so promoting all three gives PyTorch's result dtype)."""
    return _launch(WHERE, (condition, self, other), out=out)


# ---- masked_fill -------------------------------------------------------------------------


def _fill_overflows(value, dtype):
    """Whether PyTorch refuses to convert the Scalar ``value`` to ``dtype`` (c10's checked
    conversion): out of range, or NaN/infinity for an integer dtype."""
    if dtype == torch.bool or type(value) is bool:
        return False
    if dtype.is_floating_point:
        high = torch.finfo(dtype).max
        if type(value) is float and (math.isinf(value) or math.isnan(value)):
            return False
        return not -high <= value <= high
    low, high = _INT_RANGE[dtype]
    if type(value) is float:
        if math.isnan(value) or math.isinf(value):
            return True
        return not low <= value <= high or value >= 2.0**63
    if low == 0:  # unsigned: negative integers wrap if their magnitude fits
        return value > high or -value > high
    return not low <= value <= high


def _fill_scalar(value):
    """The Python number masked_fill fills with, or None when we do not take ``value``."""
    if isinstance(value, torch.Tensor):
        if value.dim() != 0 or not value.is_cpu or value.dtype.is_complex:
            return None  # native raises for dims; a device value is read there
        return value.item()
    if type(value) not in (bool, int, float):
        return None
    return value


def _masked_fill_common(self, mask, value):
    if not isinstance(self, torch.Tensor) or not isinstance(mask, torch.Tensor):
        return "self or mask is not a tensor"
    if mask.dtype != torch.bool:
        return "mask is not a bool tensor"
    if mask.device != self.device:
        return "mask on another device"
    reason = MASKED_FILL.unsupported((self, mask))
    if reason is not None:
        return reason
    scalar = _fill_scalar(value)
    if scalar is None:
        return "value of another kind than a number or a 0-d CPU tensor"
    if type(scalar) is int and not -(2**63) <= scalar < 2**63:
        return "value out of int64 range"
    if _fill_overflows(scalar, self.dtype):
        return f"value {scalar!r} overflows {self.dtype}"
    return None


def _masked_fill_unsupported(self, mask, value, *, out=None):
    reason = _masked_fill_common(self, mask, value)
    if reason is None and out is not None:
        if out.dtype != self.dtype:
            return "out dtype differs from self's"
        return MASKED_FILL.unsupported((self, mask), out)
    return reason


def _masked_fill_inplace_unsupported(self, mask, value):
    reason = _masked_fill_common(self, mask, value)
    if reason is None:
        reason = MASKED_FILL.unsupported((self, mask), inplace=True)
    return reason


def masked_fill(self, mask, value, *, out=None):
    """``self`` with ``value`` where ``mask`` holds; broadcast, and contiguous as PyTorch makes it."""
    fill = _number_as(_fill_scalar(value), self.dtype)
    if out is None:
        out = torch.empty(broadcast_shape((self, mask)), dtype=self.dtype, device=self.device)
    return MASKED_FILL.pointwise(out, COMPUTE_DTYPE[self.dtype], self, mask, fill)


def masked_fill_(self, mask, value):
    fill = _number_as(_fill_scalar(value), self.dtype)
    return MASKED_FILL.pointwise(self, COMPUTE_DTYPE[self.dtype], self, mask, fill)


# ---- aten rows ---------------------------------------------------------------------------


def _binary_rows(name, tensor, scalar, scalar_tensor_of=None):
    """Rows of a binary operator: its ``tensor`` and ``scalar`` overloads, their out= and
    in-place forms, and with ``scalar_tensor_of`` (its Elementwise) the Scalar_Tensor ones,
    whose out= form PyTorch composes from the functional one (so ``out`` has the result dtype)."""
    functional, inplace, unsupported, inplace_unsupported = _BINARY[name]
    # Bitwise ops and shifts (those with scalar_tensor_of): CUDA's kernels dispatch on the
    # out= dtype and raise for a floating one, so an out= of another dtype goes native.
    out_unsupported = unsupported if scalar_tensor_of is None else _same_dtype_out(unsupported)
    rows = []
    for overload in (tensor, scalar):
        rows += [Row(f"{name}.{overload}", functional, unsupported),
                 Row(f"{name}.{overload}_out", functional, out_unsupported),
                 Row(f"{name}_.{overload}", inplace, inplace_unsupported)]
    if scalar_tensor_of is not None:
        rows += [Row(f"{name}.Scalar_Tensor", functional, unsupported),
                 Row(f"{name}.Scalar_Tensor_out", functional, _exact_out_unsupported(scalar_tensor_of))]
    return rows


def _shift_rows(name, op, dunder, dunder_inplace):
    functional, inplace, unsupported, inplace_unsupported = _BINARY[name]
    rows = _binary_rows(name, "Tensor", "Tensor_Scalar", op)
    # __lshift__/__rshift__ have kernels of their own; their out= forms are composed, hence exact.
    for overload in ("Tensor", "Scalar"):
        rows += [Row(f"{dunder}.{overload}", functional, unsupported),
                 Row(f"{dunder}.{overload}_out", functional, _exact_out_unsupported(op)),
                 Row(f"{dunder_inplace}.{overload}", inplace, inplace_unsupported)]
    return rows


def _unary_rows(name, functional, inplace, op):
    def unsupported(self, *, out=None):
        return op.unsupported((self,), out)

    def inplace_unsupported(self):
        return op.unsupported((self,), inplace=True)

    return aten_rows(name, functional, inplace, unsupported, inplace_unsupported, ("", "out"))


ATEN = tuple(
    [row for name in ("eq", "ne", "lt", "le", "gt", "ge") for row in _binary_rows(name, "Tensor", "Scalar")]
    + [row for name in ("logical_and", "logical_or", "logical_xor")
       for row in aten_rows(name, *_BINARY[name], ("", "out"))]
    + _unary_rows("logical_not", logical_not, logical_not_, LOGICAL_NOT)
    + _binary_rows("bitwise_and", "Tensor", "Scalar", BITWISE_AND)
    + _binary_rows("bitwise_or", "Tensor", "Scalar", BITWISE_OR)
    + _binary_rows("bitwise_xor", "Tensor", "Scalar", BITWISE_XOR)
    + _unary_rows("bitwise_not", bitwise_not, bitwise_not_, BITWISE_NOT)
    + _shift_rows("bitwise_left_shift", LEFT_SHIFT, "__lshift__", "__ilshift__")
    + _shift_rows("bitwise_right_shift", RIGHT_SHIFT, "__rshift__", "__irshift__")
    + [row for name, impl, op in (("isnan", isnan, ISNAN), ("isinf", isinf, ISINF), ("isposinf", isposinf, ISPOSINF),
                                  ("isneginf", isneginf, ISNEGINF))
       for row in aten_rows(name, impl, None, _bool_out_unsupported(op), None, ("", "out"))]
    + aten_rows("nan_to_num", nan_to_num, nan_to_num_, _nan_to_num_unsupported, _nan_to_num_inplace_unsupported,
                ("", "out"))
    + [
        Row("where.self", where, _where_unsupported),
        Row("where.self_out", where, _where_unsupported),
    ]
    + aten_rows("masked_fill", masked_fill, masked_fill_, _masked_fill_unsupported, _masked_fill_inplace_unsupported,
                ("Scalar", "Tensor", "Scalar_out", "Tensor_out"))
)

# Comparisons of two tensors go through C++ first once the wrappers are built. (Not with
# a number: for half tensors the Python path rounds it to the tensor's dtype first.)
_COMPARISONS = {"eq.Tensor": EQ, "ne.Tensor": NE, "lt.Tensor": LT, "le.Tensor": LE, "gt.Tensor": GT, "ge.Tensor": GE}
for _row in ATEN:
    if _row.name in _COMPARISONS:
        _row.cpp = CppRoute(_COMPARISONS[_row.name].pointwise, floats=False)
