"""Comparisons, logic and bit operators, isnan & co, nan_to_num, where, masked_fill: every overload.

Every aten overload of theirs that has a kernel of its own (see ``ATEN``); each operator
is one ``ElementwiseOperator`` declaration, but bitwise_not (bool or integer), the bit
operators' out= rows, nan_to_num (default replacements) and masked_fill (a fill value).

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

import torch
import triton
import triton.language as tl

from ...codegen.elementwise import Elementwise, ElementwiseOperator, Promotion
from ...dispatch import Row, aten_rows
from ...fastpath import CppRoute
from ...utils.dtypes import COMPUTE_DTYPE, number_as, promoted_dtype, scalar_overflows
from ...utils.layout import broadcast_shape

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


# ---- conversion to the common dtype ------------------------------------------------------

# Common dtypes that the kernels compute in a wider dtype.
_NARROW = frozenset({torch.float16, torch.bfloat16, torch.int8, torch.uint8, torch.int16})
# Integer dtypes whose values fp16 and bf16 do not all hold.
_ROUNDED_IN_HALF = frozenset({torch.int16, torch.int32, torch.int64})


def _as_common(operands, common):
    """The operands with what the kernel would see wider than ``common`` converted to it."""
    if common not in _NARROW:
        return operands  # the compute dtype is the common dtype: the kernel's own casts are PyTorch's
    converted = []
    for op in operands:
        if not isinstance(op, torch.Tensor):
            op = number_as(op, common)
        elif op.dtype != common and (op.dim() == 0 or (common.is_floating_point and op.dtype in _ROUNDED_IN_HALF)):
            op = op.to(common)
        converted.append(op)
    return converted


class InCommonDtype(Elementwise):
    """An ``Elementwise`` that converts its operands first where PyTorch's common dtype is
    narrower than the kernel's compute dtype (``_as_common``)."""

    def __call__(self, operands, params=(), out=None):
        """The result over ``operands`` (promoted as PyTorch does), into ``out`` or a new tensor."""
        common = promoted_dtype(operands)
        compute = COMPUTE_DTYPE[common]
        result_dtype = torch.bool if self.promotion is Promotion.ALWAYS_BOOL else common
        inputs = _as_common(operands, common)
        # Launched from C++ when flag_gems.c_operators holds the kernel. (Not when a number
        # promotes the tensors: the default dtype it promotes integers to may change.)
        cpp = out is None and all(t.dtype == common for t in inputs if isinstance(t, torch.Tensor))
        if cpp:
            result = self.pointwise.fast(*inputs, *params)
            if result is not None:
                return result
        # Another out dtype receives the result through a copy. (Storing bools into it directly
        # would save a pass, but teach the C++ wrappers a kernel whose result is not bool.)
        return self.launch(operands, inputs, params, out, compute, result_dtype, teach_cpp=cpp)


_BOOL = Promotion.ALWAYS_BOOL
EQ = InCommonDtype(_eq, "eq", _BOOL)
NE = InCommonDtype(_ne, "ne", _BOOL)
LT = InCommonDtype(_lt, "lt", _BOOL)
LE = InCommonDtype(_le, "le", _BOOL)
GT = InCommonDtype(_gt, "gt", _BOOL)
GE = InCommonDtype(_ge, "ge", _BOOL)
LOGICAL_AND = InCommonDtype(_logical_and, "logical_and", _BOOL)
LOGICAL_OR = InCommonDtype(_logical_or, "logical_or", _BOOL)
LOGICAL_XOR = InCommonDtype(_logical_xor, "logical_xor", _BOOL)
LOGICAL_NOT = InCommonDtype(_logical_not, "logical_not", _BOOL)
BITWISE_AND = InCommonDtype(_bitwise_and, "bitwise_and", accepts=_integral)
BITWISE_OR = InCommonDtype(_bitwise_or, "bitwise_or", accepts=_integral)
BITWISE_XOR = InCommonDtype(_bitwise_xor, "bitwise_xor", accepts=_integral)
BITWISE_NOT = InCommonDtype(_bitwise_not, "bitwise_not", accepts=_integral)
LEFT_SHIFT = InCommonDtype(_left_shift, "left_shift", accepts=_integral_not_bool)
RIGHT_SHIFT = InCommonDtype(_right_shift, "right_shift", accepts=_integral_not_bool)
# isnan & co take only a bool out=; where's out= must have the result dtype.
ISNAN = InCommonDtype(_isnan, "isnan", _BOOL, out_casts=False)
ISINF = InCommonDtype(_isinf, "isinf", _BOOL, out_casts=False)
ISPOSINF = InCommonDtype(_isposinf, "isposinf", _BOOL, out_casts=False)
ISNEGINF = InCommonDtype(_isneginf, "isneginf", _BOOL, out_casts=False)
NAN_TO_NUM = InCommonDtype(_nan_to_num, "nan_to_num")
WHERE = InCommonDtype(_where, "where", out_casts=False)
MASKED_FILL = Elementwise(_masked_fill, "masked_fill")


# ---- declared operators ------------------------------------------------------------------

_TENSOR_SCALAR = ("Tensor", "Scalar", "Tensor_out", "Scalar_out")
_PLAIN = ("", "out")


def _comparison(name, op):
    """A comparison; of two tensors it goes through C++ first once the wrappers are built.
    (Not with a number: for half tensors the Python path rounds it to the tensor's dtype first.)"""
    return ElementwiseOperator(name, op, _TENSOR_SCALAR, cpp={"Tensor": CppRoute(op.pointwise, floats=False)})


def _condition_is_not_bool(operands, params):
    condition = operands[0]
    return "condition is not a bool tensor" if not isinstance(condition, torch.Tensor) or \
        condition.dtype != torch.bool else None


EQ_OP, eq, eq_ = _comparison("eq", EQ)
NE_OP, ne, ne_ = _comparison("ne", NE)
LT_OP, lt, lt_ = _comparison("lt", LT)
LE_OP, le, le_ = _comparison("le", LE)
GT_OP, gt, gt_ = _comparison("gt", GT)
GE_OP, ge, ge_ = _comparison("ge", GE)
LOGICAL_AND_OP, logical_and, logical_and_ = ElementwiseOperator("logical_and", LOGICAL_AND, _PLAIN)
LOGICAL_OR_OP, logical_or, logical_or_ = ElementwiseOperator("logical_or", LOGICAL_OR, _PLAIN)
LOGICAL_XOR_OP, logical_xor, logical_xor_ = ElementwiseOperator("logical_xor", LOGICAL_XOR, _PLAIN)
LOGICAL_NOT_OP, logical_not, logical_not_ = ElementwiseOperator("logical_not", LOGICAL_NOT, _PLAIN)
# Bit operators: their out= rows and Scalar_Tensor overloads are added below (``_bit_rows``).
BITWISE_AND_OP, bitwise_and, bitwise_and_ = ElementwiseOperator("bitwise_and", BITWISE_AND, ("Tensor", "Scalar"))
BITWISE_OR_OP, bitwise_or, bitwise_or_ = ElementwiseOperator("bitwise_or", BITWISE_OR, ("Tensor", "Scalar"))
BITWISE_XOR_OP, bitwise_xor, bitwise_xor_ = ElementwiseOperator("bitwise_xor", BITWISE_XOR, ("Tensor", "Scalar"))
LEFT_SHIFT_OP, bitwise_left_shift, bitwise_left_shift_ = ElementwiseOperator("bitwise_left_shift", LEFT_SHIFT,
                                                                 ("Tensor", "Tensor_Scalar"))
RIGHT_SHIFT_OP, bitwise_right_shift, bitwise_right_shift_ = ElementwiseOperator("bitwise_right_shift", RIGHT_SHIFT,
                                                                    ("Tensor", "Tensor_Scalar"))
# bitwise_not's conditions; its forms depend on the dtype (below).
BITWISE_NOT_OP = ElementwiseOperator("bitwise_not", BITWISE_NOT, ("",))
ISNAN_OP, isnan, _ = ElementwiseOperator("isnan", ISNAN, _PLAIN, inplace=False)
ISINF_OP, isinf, _ = ElementwiseOperator("isinf", ISINF, _PLAIN, inplace=False)
ISPOSINF_OP, isposinf, _ = ElementwiseOperator("isposinf", ISPOSINF, _PLAIN, inplace=False)
ISNEGINF_OP, isneginf, _ = ElementwiseOperator("isneginf", ISNEGINF, _PLAIN, inplace=False)
# where's result dtype is that of its three operands promoted: a bool condition never changes it.
WHERE_OP, where, _ = ElementwiseOperator("where", WHERE, ("self", "self_out"), check=_condition_is_not_bool, inplace=False)


# ---- bitwise_not ---------------------------------------------------------------------------


def _not_for(self):
    return LOGICAL_NOT if self.dtype == torch.bool else BITWISE_NOT  # ~True is False, not -2 != 0


def bitwise_not(self, *, out=None):
    return _not_for(self)((self,), out=out)


def bitwise_not_(self):
    return _not_for(self)((self,), out=self)


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
    return tuple(number_as(float(v), dtype) for v in values)


def nan_to_num(self, nan=None, posinf=None, neginf=None, *, out=None):
    return NAN_TO_NUM((self,), _replacements(self.dtype, nan, posinf, neginf), out)


def nan_to_num_(self, nan=None, posinf=None, neginf=None):
    return NAN_TO_NUM((self,), _replacements(self.dtype, nan, posinf, neginf), self)


# ---- masked_fill -------------------------------------------------------------------------


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
    if scalar_overflows(scalar, self.dtype):
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
    fill = number_as(_fill_scalar(value), self.dtype)
    if out is None:
        out = torch.empty(broadcast_shape((self, mask)), dtype=self.dtype, device=self.device)
    return MASKED_FILL.pointwise(out, COMPUTE_DTYPE[self.dtype], self, mask, fill)


def masked_fill_(self, mask, value):
    fill = number_as(_fill_scalar(value), self.dtype)
    return MASKED_FILL.pointwise(self, COMPUTE_DTYPE[self.dtype], self, mask, fill)


# ---- aten rows ---------------------------------------------------------------------------


def _exact_out_unsupported(declared):
    """For out= rows whose ``out`` must have the result's dtype (a resize still goes to native)."""
    op = declared.op

    def unsupported(self, other, *, out):
        reason = op.unsupported((self, other), out)
        if reason is None and out.dtype != promoted_dtype((self, other)):
            return f"out dtype {out.dtype} differs from the result dtype"
        return reason

    return unsupported


def _bit_rows(declared, scalar, dunder=None, dunder_inplace=None):
    """A bit operator's rows: the declared ones, the out= ones (CUDA's kernels dispatch on the
    out= dtype and raise for a floating one, so an out= of another dtype goes native) and
    Scalar_Tensor's, whose out= form PyTorch composes from the functional one (so ``out`` has
    the result dtype); with ``dunder``, __lshift__'s or __rshift__'s, whose out= forms are
    composed too, and their in-place forms."""
    name, functional, exact = declared.name, declared.functional, _exact_out_unsupported(declared)
    rows = declared.rows + [Row(f"{name}.{overload}_out", functional, exact) for overload in ("Tensor", scalar)]
    rows += [Row(f"{name}.Scalar_Tensor", functional, declared.unsupported),
             Row(f"{name}.Scalar_Tensor_out", functional, exact)]
    for overload in ("Tensor", "Scalar") if dunder else ():
        rows += [Row(f"{dunder}.{overload}", functional, declared.unsupported),
                 Row(f"{dunder}.{overload}_out", functional, exact),
                 Row(f"{dunder_inplace}.{overload}", declared.inplace, declared.inplace_unsupported)]
    return rows


ATEN = tuple(
    EQ_OP.rows + NE_OP.rows + LT_OP.rows + LE_OP.rows + GT_OP.rows + GE_OP.rows
    + LOGICAL_AND_OP.rows + LOGICAL_OR_OP.rows + LOGICAL_XOR_OP.rows + LOGICAL_NOT_OP.rows
    + _bit_rows(BITWISE_AND_OP, "Scalar") + _bit_rows(BITWISE_OR_OP, "Scalar") + _bit_rows(BITWISE_XOR_OP, "Scalar")
    + aten_rows("bitwise_not", bitwise_not, BITWISE_NOT_OP.unsupported, ("", "out"), bitwise_not_, BITWISE_NOT_OP.inplace_unsupported)
    + _bit_rows(LEFT_SHIFT_OP, "Tensor_Scalar", "__lshift__", "__ilshift__")
    + _bit_rows(RIGHT_SHIFT_OP, "Tensor_Scalar", "__rshift__", "__irshift__")
    + ISNAN_OP.rows + ISINF_OP.rows + ISPOSINF_OP.rows + ISNEGINF_OP.rows
    + aten_rows("nan_to_num", nan_to_num, _nan_to_num_unsupported, ("", "out"), nan_to_num_, _nan_to_num_inplace_unsupported)
    + WHERE_OP.rows
    + aten_rows("masked_fill", masked_fill, _masked_fill_unsupported, ("Scalar", "Tensor", "Scalar_out", "Tensor_out"), masked_fill_, _masked_fill_inplace_unsupported)
)
