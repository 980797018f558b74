"""Comparisons, logic, bit operators, isnan/isinf, nan_to_num, where and masked_fill:
ours through the dispatcher against native, exactly (dtype, shape, strides, values)."""

import pytest
import torch

import flag_gems
from flag_gems.testing import assert_equal

from conftest import (assert_same_error, ALL_DTYPES, DEVICE, FLOAT_DTYPES, INT_DTYPES, ON_GPU, error_of, make, pick,
                      routed)

SHAPE = pick((4, 33), (1024, 1027))
COMPARISONS = ["eq", "ne", "lt", "le", "gt", "ge"]
LOGICAL = ["logical_and", "logical_or", "logical_xor"]
BITWISE = ["bitwise_and", "bitwise_or", "bitwise_xor"]
SHIFTS = ["bitwise_left_shift", "bitwise_right_shift"]
BINARY = COMPARISONS + LOGICAL + BITWISE + SHIFTS
NAN_INF_TESTS = ["isnan", "isinf", "isposinf", "isneginf"]
SHAPE_PAIRS = [
    ((), ()),
    ((0, 3), (0, 3)),
    ((17,), (17,)),
    ((2, 1, 3, 1, 2), (2, 4, 3, 5, 2)),
    ((3, 1, 4), (5, 4)),
    ((), (3, 4)),
    ((3, 4), ()),
]
OURS = ("triton", "c++")  # record-log kinds of our kernels (C++ launches them once compiled, on the GPU)


def values(shape, dtype, low=-3, high=4):
    """Small values with many ties (halves for floats), so equal elements are common."""
    if dtype == torch.bool or (dtype == torch.uint8 and low < 0):
        return make(shape, dtype)
    v = torch.randint(low, high, shape, device=DEVICE)
    return (v * 0.5).to(dtype) if dtype.is_floating_point else v.to(dtype)


def takes(op, *dtypes):
    """Whether torch's CPU kernels define ``op`` for these dtypes."""
    if op.startswith("bitwise") and any(d.is_floating_point for d in dtypes):
        return False
    return not (op in SHIFTS and torch.bool in dtypes)


def same(ours, native):
    assert type(ours) is type(native)
    if isinstance(native, torch.Tensor):
        assert ours.dtype == native.dtype and ours.shape == native.shape, (ours, native)
        assert ours.stride() == native.stride() or ours.numel() <= 1
        assert_equal(ours, native, equal_nan=True)
        if native.dtype.is_floating_point:  # assert_equal takes -0.0 for 0.0
            numbers = ~native.isnan()
            assert torch.equal(ours[numbers].signbit(), native[numbers].signbit())
    else:
        assert ours == native


def check(fn, ours_must_run=True):
    """``fn()`` natively and through the dispatcher: the same result, computed by our
    kernels, or the same error where native raises (CUDA and CPU differ here and there)."""
    native_error = error_of(fn)
    if native_error is not None:
        with flag_gems.use_gems():
            assert error_of(fn) is native_error
        return None
    native = fn()
    ours, where_ran = routed(fn)
    same(ours, native)
    if ours_must_run:
        assert any(impl in OURS for _, impl in where_ran), where_ran
        fallbacks = [(n, impl) for n, impl in where_ran
                     if impl.startswith("native (") and "inside" not in impl and "another device" not in impl]
        assert not fallbacks, fallbacks
    return ours


def fn_of(op):
    return getattr(torch, op)


# ---- every operator over every dtype -------------------------------------------------------


# (Operators torch does not define for a dtype: test_errors_match_torch.)
@pytest.mark.parametrize("op, dtype", [(op, d) for op in BINARY for d in ALL_DTYPES if takes(op, d)], ids=str)
def test_binary_every_dtype(op, dtype):
    if op in SHIFTS:
        width = torch.iinfo(dtype).bits
        a, b = values(SHAPE, dtype, -9, 10), values(SHAPE, dtype, -2, width + 3)
    else:
        a, b = values(SHAPE, dtype), values(SHAPE, dtype)
    check(lambda: fn_of(op)(a, b))


@pytest.mark.parametrize("op, dtype", [(op, d) for op in ["logical_not", "bitwise_not"] + NAN_INF_TESTS + ["nan_to_num"]
                                         for d in ALL_DTYPES if takes(op, d)], ids=str)
def test_unary_every_dtype(op, dtype):
    a = values(SHAPE, dtype)
    if dtype.is_floating_point:
        a[0, :4] = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0])
    check(lambda: fn_of(op)(a))


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_where_and_masked_fill_every_dtype(dtype):
    condition = make(SHAPE, torch.bool)
    a, b = values(SHAPE, dtype), values(SHAPE, dtype)
    check(lambda: torch.where(condition, a, b))
    for value in (True, 3, -2.5):
        if dtype == torch.uint8 and value == -2.5:
            continue  # native raises (test_masked_fill_values)
        check(lambda: a.masked_fill(condition, value))
        check(lambda: a.clone().masked_fill_(condition, value))
    check(lambda: a.masked_fill(condition, torch.tensor(1, dtype=dtype)))


# ---- shapes and layouts --------------------------------------------------------------------

CALLS = {
    "eq": lambda a, b: torch.eq(a, b),
    "logical_xor": lambda a, b: torch.logical_xor(a, b),
    "bitwise_and": lambda a, b: torch.bitwise_and(a, b),
    "bitwise_left_shift": lambda a, b: torch.bitwise_left_shift(a, b),
    "where": lambda a, b: torch.where(a > 0, a, b),
    "masked_fill": lambda a, b: a.masked_fill(b > 0, 7),
}


@pytest.mark.parametrize("op", list(CALLS))
@pytest.mark.parametrize("shapes", SHAPE_PAIRS, ids=str)
def test_shapes_and_broadcast(op, shapes):
    a, b = values(shapes[0], torch.int32), values(shapes[1], torch.int32)
    if op == "masked_fill" and torch.broadcast_shapes(*shapes) != a.shape:
        check(lambda: a.masked_fill(b > 0, 7))  # self broadcast: a contiguous result
        return
    check(lambda: CALLS[op](a, b))


@pytest.mark.parametrize("op", list(CALLS))
def test_non_contiguous_inputs(op):
    rows, cols = pick((6, 10), (512, 1030))
    a, b = values((rows, cols), torch.int16), values((cols, rows), torch.int16)
    check(lambda: CALLS[op](a, b.t()))  # transposed
    check(lambda: CALLS[op](a.t(), b))  # the first operand decides the layout
    check(lambda: CALLS[op](a[:, ::3], b.t()[:, ::3]))  # sliced
    check(lambda: CALLS[op](a[::2], a[1::2]))  # row-strided
    column = values((rows, 1), torch.int16)
    check(lambda: CALLS[op](a, column.expand(rows, cols)))  # zero-stride


def test_five_dims_permuted():
    shape = pick((2, 3, 4, 5, 6), (8, 16, 32, 4, 64))
    a = values(shape, torch.float32).permute(4, 2, 0, 3, 1)
    b = values(shape, torch.float32).permute(4, 2, 0, 3, 1)
    check(lambda: torch.le(a, b))
    check(lambda: torch.where(a < b, a, b))
    check(lambda: torch.logical_or(a, b.contiguous()))


# ---- out= and in-place forms ---------------------------------------------------------------


def _binary_operands(op, dtype):
    a, b = values(SHAPE, dtype), values(SHAPE, dtype)
    return (a, b.abs()) if op in SHIFTS else (a, b)


@pytest.mark.parametrize("op", BINARY)
def test_out_forms(op):
    dtype = torch.int16 if op.startswith("bitwise") else torch.float16
    a, b = _binary_operands(op, dtype)
    expected = fn_of(op)(a, b)
    for out in (torch.empty(SHAPE, dtype=expected.dtype, device=DEVICE),
                torch.empty(SHAPE[::-1], dtype=expected.dtype, device=DEVICE).t()):  # a non-contiguous out
        strides = out.stride()
        returned = check(lambda: fn_of(op)(a, b, out=out))
        assert returned is out and out.stride() == strides
    # Other out dtypes PyTorch casts to (bool results into anything); out needing a resize.
    # Bitwise ops and shifts send those to native: CUDA's kernels raise for them.
    exact = op in BITWISE or op in SHIFTS
    for out_dtype in (torch.float32, torch.bfloat16, torch.int64, torch.uint8):
        if torch.can_cast(expected.dtype, out_dtype):
            check(lambda: fn_of(op)(a, b, out=torch.empty(SHAPE, dtype=out_dtype, device=DEVICE)),
                  ours_must_run=not exact or out_dtype == expected.dtype)
    check(lambda: fn_of(op)(a, b, out=torch.empty(0, dtype=expected.dtype, device=DEVICE)), ours_must_run=False)


@pytest.mark.parametrize("op", BITWISE + SHIFTS)
def test_scalar_overload_out_forms(op):
    a = values(SHAPE, torch.int16)
    aten = getattr(torch.ops.aten, op)
    scalar_out = aten.Tensor_Scalar_out if op in SHIFTS else aten.Scalar_out
    for out_dtype in (torch.int16, torch.int64, torch.float32):  # another dtype: native's rules
        check(lambda: scalar_out(a, 3, out=torch.empty(SHAPE, dtype=out_dtype, device=DEVICE)),
              ours_must_run=out_dtype == torch.int16)
    out = torch.empty(SHAPE[::-1], dtype=torch.int16, device=DEVICE).t()
    assert check(lambda: aten.Scalar_Tensor_out(3, a, out=out)) is out  # composed: out has the result dtype
    if op in SHIFTS:
        dunder = torch.ops.aten.__lshift__ if "left" in op else torch.ops.aten.__rshift__
        check(lambda: dunder.Scalar_out(a, 3, out=torch.empty(SHAPE, dtype=torch.int16, device=DEVICE)))
        check(lambda: dunder.Tensor_out(a, a.abs(), out=torch.empty(SHAPE, dtype=torch.int16, device=DEVICE)))


INPLACE_DTYPES = (torch.float32, torch.bfloat16, torch.int8, torch.bool)


@pytest.mark.parametrize("op, dtype", [(op, d) for op in BINARY for d in INPLACE_DTYPES if takes(op, d)], ids=str)
def test_inplace_forms(op, dtype):
    a, b = _binary_operands(op, dtype)
    check(lambda: getattr(a.clone(), op + "_")(b))
    check(lambda: getattr(a.t().contiguous().t(), op + "_")(b[0]))  # column-major self, broadcast other
    aliased = a.clone()  # self as other: one buffer read and written
    expected = getattr(aliased.clone(), op + "_")(aliased.clone())
    _, where_ran = routed(lambda: getattr(aliased, op + "_")(aliased))
    assert_equal(aliased, expected)
    assert any(name.split(".")[0] == f"aten::{op}_" and impl in OURS for name, impl in where_ran), where_ran
    # In-place into a wider self: results of other dtypes written into self's.
    if dtype != torch.bool and takes(op, torch.int64):
        wide = values(SHAPE, torch.float64 if dtype.is_floating_point else torch.int64)
        check(lambda: getattr(wide.clone(), op + "_")(b))


@pytest.mark.parametrize("op", ["logical_not", "bitwise_not", "nan_to_num"] + NAN_INF_TESTS)
def test_unary_out_and_inplace_forms(op):
    dtype = torch.int16 if op == "bitwise_not" else torch.float16
    a = values(SHAPE, dtype)
    if dtype.is_floating_point:
        a[1, :3] = torch.tensor([float("nan"), float("inf"), -float("inf")])
    call = getattr(torch.ops.aten, op).out  # isnan/isinf have no out= in Python
    expected = fn_of(op)(a)
    out = torch.empty(SHAPE[::-1], dtype=expected.dtype, device=DEVICE).t()
    assert check(lambda: call(a, out=out)) is out
    if op in ("logical_not", "bitwise_not", "nan_to_num"):
        check(lambda: getattr(a.clone(), op + "_")())
        check(lambda: getattr(a.clone().t(), op + "_")())
    if op == "logical_not":
        for out_dtype in (torch.float32, torch.bfloat16, torch.int8):
            check(lambda: torch.logical_not(a, out=torch.empty(SHAPE, dtype=out_dtype, device=DEVICE)))


def test_where_and_masked_fill_out_forms():
    condition = make(SHAPE, torch.bool)
    a, b = values(SHAPE, torch.float32), values(SHAPE, torch.float32)
    out = torch.empty(SHAPE[::-1], device=DEVICE).t()
    assert check(lambda: torch.where(condition, a, b, out=out)) is out
    for overload, value in (("Scalar_out", 2.5), ("Tensor_out", torch.tensor(-1.5))):
        call = getattr(torch.ops.aten.masked_fill, overload)
        out = torch.empty(SHAPE[::-1], device=DEVICE).t()
        assert check(lambda: call(a, condition, value, out=out)) is out
    check(lambda: (lambda x: torch.ops.aten.masked_fill.Scalar_out(x, condition, 2.5, out=x))(a.clone()))  # out is self


# ---- Python numbers, 0-d tensors and mixed dtypes ------------------------------------------


@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64, torch.uint8, torch.int32,
                                   torch.bool], ids=str)
def test_python_scalars(op, dtype):
    a = values(SHAPE, dtype)
    for scalar in (True, 2, -1, 1.5, 0.5):
        if op in SHIFTS and type(scalar) is not int:
            continue
        other = torch.tensor(scalar, device=DEVICE) if op in LOGICAL else scalar  # logical ops take tensors only
        if not takes(op, torch.result_type(a, other)):
            continue
        check(lambda: fn_of(op)(a, other))  # the Scalar overload (a 0-d tensor for logical ops)
        if op.startswith("bitwise"):
            check(lambda: fn_of(op)(scalar, a))  # Scalar_Tensor
        if op in COMPARISONS + LOGICAL or torch.can_cast(torch.result_type(a, scalar), dtype):
            check(lambda: getattr(a.clone(), op + "_")(other))


def test_python_operators():
    i, j = values(SHAPE, torch.int32), values(SHAPE, torch.int64).abs()
    f = values(SHAPE, torch.float32)
    for call in (lambda: i == j, lambda: f != 0.5, lambda: i < 1.5, lambda: f <= i, lambda: 2 > f, lambda: f >= True,
                 lambda: i & j, lambda: i | 3, lambda: 5 ^ i, lambda: ~i, lambda: ~(i > 0), lambda: i << 2,
                 lambda: 3 >> j, lambda: i << j, lambda: (i > 0) & (f < 0)):
        check(call)
    k = i.clone()

    def shifts_in_place():
        x = k.clone()
        x <<= 3
        x >>= j
        x &= 7
        x |= j
        x ^= 1
        return x

    check(shifts_in_place)


def test_scalars_rounded_to_the_common_dtype():
    """PyTorch converts numbers and 0-d tensors to the common dtype before comparing."""
    h = torch.tensor([1.0, 2048.0, 0.0, 65504.0, float("inf")], dtype=torch.float16, device=DEVICE)
    b = torch.tensor([1.0, 2048.0, 256.0, 3.0, -1.0], dtype=torch.bfloat16, device=DEVICE)
    u8 = torch.tensor([44, 0, 255, 1, 212], dtype=torch.uint8, device=DEVICE)
    i8 = torch.tensor([44, 0, -1, 1, -44], dtype=torch.int8, device=DEVICE)
    i32 = torch.tensor([0, 1, -1, 2**31 - 1, -(2**31)], dtype=torch.int32, device=DEVICE)
    f32 = torch.tensor([float("inf"), 1.0, 16777216.0, 3e38, -1.0], device=DEVICE)
    cases = [
        lambda: i32 == 2**40, lambda: i32 < 2**32 + 1, lambda: i32 == torch.tensor(2**31 - 2**32),
        lambda: f32 == 1e39, lambda: f32 == 16777217, lambda: f32 > 3.0000001e38, lambda: f32 == torch.tensor(1e39),
        lambda: h == 1.0001, lambda: h == 2049, lambda: h > 65519.0, lambda: h == 1e5,
        lambda: b == 1.001, lambda: b < 2049, lambda: b == 257,
        lambda: h == torch.tensor(1.0001, dtype=torch.float64), lambda: h == torch.tensor(2049),
        lambda: b >= torch.tensor(256.5, dtype=torch.float64),
        lambda: u8 == 300, lambda: u8 == -1, lambda: u8 < torch.tensor(300), lambda: i8 == 300, lambda: i8 == -300,
        lambda: u8 & 300, lambda: i8 | -129, lambda: u8 << 257, lambda: u8 >> 264,
        lambda: torch.where(u8 > 3, u8, torch.tensor(300)), lambda: torch.where(h > 3, h, 1.0001),
        lambda: torch.where(b > 3, b, torch.tensor(1.0001, dtype=torch.float64)),
        lambda: torch.where(h > 3, 2049, h), lambda: torch.logical_and(h, torch.tensor(1e-30, dtype=torch.float64)),
    ]
    for call in cases:
        check(call)


def test_mixed_dtype_tensors():
    big = torch.tensor([2049, 2050, 4097, 1 << 20, 70000, -70000, (1 << 24) + (1 << 16) + 1], device=DEVICE)
    h = big.to(torch.float16)
    b = big.to(torch.bfloat16)
    f = big.to(torch.float32)
    pairs = ((h, big), (big, b), (h, big.int()), (b, big.short()), (f, h), (b, h), (f, big),
             (big.to(torch.uint8), big.to(torch.int8)))
    for x, y in pairs:
        check(lambda: torch.eq(x, y))
        check(lambda: torch.lt(y, x))
        check(lambda: torch.where(x > 0, x, y))
        check(lambda: torch.logical_xor(x, y))
    i32, i64, u8, i8 = (values(SHAPE, d) for d in (torch.int32, torch.int64, torch.uint8, torch.int8))
    f16, f32, condition = values(SHAPE, torch.float16), values(SHAPE, torch.float32), make(SHAPE, torch.bool)
    check(lambda: torch.eq(i32, f32))
    check(lambda: torch.ge(f16, f32))
    check(lambda: torch.bitwise_xor(u8, i8))
    check(lambda: torch.bitwise_right_shift(i64, u8))
    check(lambda: torch.eq(i32, torch.tensor(2.0, dtype=torch.float64)))  # a 0-d tensor of a higher kind
    check(lambda: torch.where(condition, i8, 2.5))
    check(lambda: torch.where(condition, 1, 2))
    check(lambda: torch.where(condition, True, 2.5))
    check(lambda: i64.clone().eq_(f16))


# ---- special values ------------------------------------------------------------------------

SPECIALS = [0.0, -0.0, 1.0, -1.0, float("inf"), float("-inf"), float("nan"), 65504.0, 3e-6, 1e-30, 1e-40]


def specials(dtype):
    """SPECIALS in ``dtype`` (denormals included: 3e-6 in fp16, 1e-40 in fp32/bf16), less the bf16
    denormal under the interpreter, which flushes bf16 denormals to zero (a Triton limitation)."""
    chosen = SPECIALS[:-1] if dtype == torch.bfloat16 and not ON_GPU else SPECIALS
    return torch.tensor(chosen, device=DEVICE).to(dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_nan_inf_and_signed_zero(dtype):
    v = specials(dtype)
    a, b = v.repeat_interleave(len(v)), v.repeat(len(v))
    for op in COMPARISONS + LOGICAL:
        check(lambda: fn_of(op)(a, b))
    for op in ["logical_not"] + NAN_INF_TESTS + ["nan_to_num"]:
        check(lambda: fn_of(op)(v))
    check(lambda: torch.eq(v, float("nan")))
    check(lambda: torch.ne(v, float("nan")))
    check(lambda: torch.lt(v, float("inf")))
    check(lambda: torch.where(a < b, a, b))  # keeps -0.0 and NaN
    check(lambda: v.masked_fill(v != v, -0.0))
    check(lambda: v.masked_fill(v == 0, float("nan")))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_nan_to_num_replacements(dtype):
    v = specials(dtype)
    for kwargs in ({"nan": 1.5}, {"posinf": 7.0, "neginf": -7.0}, {"nan": -0.0, "posinf": 1e10, "neginf": -1e10},
                   {"nan": 1.0001, "posinf": 65519.0}, {"neginf": float("inf")}):
        check(lambda: torch.nan_to_num(v, **kwargs))
        check(lambda: v.clone().nan_to_num_(**kwargs))
        check(lambda: torch.nan_to_num(v, **kwargs, out=torch.empty_like(v)))


def test_shift_amounts_at_the_edges():
    for dtype in INT_DTYPES:
        width = torch.iinfo(dtype).bits
        amounts = [0, 1, width - 2, width - 1, width, width + 1, 2 * width, 100]
        if dtype != torch.uint8:
            amounts += [-1, -width, -100]
        low, high = torch.iinfo(dtype).min, torch.iinfo(dtype).max
        base = torch.tensor([1, -1 if low else 200, low, high, 5, 0], device=DEVICE).to(dtype)
        a = base.repeat_interleave(len(amounts))
        b = torch.tensor(amounts, device=DEVICE).to(dtype).repeat(len(base))
        for op in SHIFTS:
            check(lambda: fn_of(op)(a, b))
            for amount in (width, width + 5, 300):
                check(lambda: fn_of(op)(a, amount))


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_masked_fill_values(dtype):
    """The value is converted to self's dtype as Scalar.to<T>() converts it, or native raises."""
    a = values(SHAPE, dtype)
    mask = make(SHAPE, torch.bool)
    for value in (True, False, 0, 1, -1, 127, 255, -255, -256, 300, 70000, 2**40, 0.5, -0.5, 2.75, -2.75, 255.5,
                  65504.0, 65519.0, 1e39, float("inf"), float("-inf"), float("nan"), -0.0):
        native_error = error_of(lambda: a.masked_fill(mask, value))
        if native_error is not None:
            with flag_gems.use_gems():
                assert error_of(lambda: a.masked_fill(mask, value)) is native_error
            continue
        check(lambda: a.masked_fill(mask, value))
        as_tensor = torch.tensor(value, dtype=torch.float64 if type(value) is float else None)
        check(lambda: a.masked_fill(mask, as_tensor))  # a 0-d CPU value tensor


def test_masked_fill_broadcast_and_aliasing():
    a = values((3, 1, 5), torch.float32)
    mask = make((4, 5), torch.bool)
    check(lambda: a.masked_fill(mask, 1.0))  # self broadcast to (3, 4, 5), contiguous
    check(lambda: a.transpose(0, 2).masked_fill(mask.t()[:, None, :1], 2.0))
    check(lambda: a.clone().masked_fill_(mask[0], -1.0))  # mask broadcast to self
    check(lambda: a.clone().squeeze(1).t().masked_fill_(mask[:1].t(), -1.0))
    flags = make(SHAPE, torch.bool)
    check(lambda: flags.clone().masked_fill_(flags, False))  # mask aliases self
    scalar = values((), torch.float32)
    check(lambda: scalar.masked_fill(torch.tensor(True, device=DEVICE), 3.0))


# ---- errors and what goes to native --------------------------------------------------------


@pytest.mark.parametrize("case", [
    lambda: torch.eq(make((3, 4), torch.float32), make((5,), torch.float32)),  # shapes
    lambda: torch.bitwise_and(make((3,), torch.float32), make((3,), torch.float32)),
    lambda: torch.bitwise_or(make((3,), torch.int32), 2.5),
    lambda: torch.bitwise_not(make((3,), torch.float16)),
    lambda: torch.bitwise_left_shift(make((3,), torch.bool), make((3,), torch.bool)),
    lambda: torch.bitwise_right_shift(make((3,), torch.float32), 1),
    lambda: make((3,), torch.float32) << 1,
    lambda: make((3,), torch.bool).bitwise_and_(make((3,), torch.int32)),  # illegal in-place cast
    lambda: make((1, 3), torch.int32).eq_(make((4, 3), torch.int32)),  # in-place broadcast of self
    lambda: make((1,), torch.float32).expand(3).lt_(0.0),  # internal overlap
    lambda: torch.eq(make((3,), torch.float32), 1, out=make((3,), torch.complex64)),
    lambda: torch.bitwise_and(make((3,), torch.int64), 1, out=make((3,), torch.bool)),
    lambda: torch.ops.aten.isnan.out(make((3,), torch.float32), out=make((3,), torch.float32)),
    lambda: torch.ops.aten.isposinf.out(make((3,), torch.float32), out=make((3,), torch.int32)),
    lambda: torch.ops.aten.__lshift__.Scalar_out(make((3,), torch.int64), 1, out=make((3,), torch.int32)),
    lambda: torch.ops.aten.bitwise_xor.Scalar_Tensor_out(3, make((3,), torch.int16), out=make((3,), torch.int64)),
    lambda: torch.isposinf(torch.ones(3, dtype=torch.complex64, device=DEVICE)),
    lambda: torch.nan_to_num(make((3,), torch.float32), out=make((3,), torch.float64)),
    lambda: torch.where(make((3,), torch.int32), make((3,), torch.float32), 1.0),
    lambda: torch.where(make((3,), torch.bool), make((3,), torch.float32), make((3,), torch.float32),
                        out=make((3,), torch.float64)),
    lambda: torch.where(make((3,), torch.bool), make((2, 3), torch.float32), make((4, 1, 1), torch.float32),
                        out=make((4, 2, 3), torch.float16)),
    lambda: make((3,), torch.float32).masked_fill(make((3,), torch.uint8), 1.0),  # mask not bool
    lambda: make((3,), torch.float32).masked_fill(make((3,), torch.bool), torch.ones(1)),  # value not 0-d
    lambda: make((3,), torch.float32).masked_fill(make((3,), torch.bool), 1j),
    lambda: make((3,), torch.uint8).masked_fill(make((3,), torch.bool), 256),  # overflow
    lambda: make((3,), torch.int32).masked_fill(make((3,), torch.bool), float("nan")),
    lambda: make((3,), torch.float16).masked_fill_(make((3,), torch.bool), 1e5),
    lambda: make((3,), torch.float32).masked_fill_(make((2, 3), torch.bool), 0.0),  # in-place broadcast of self
    lambda: torch.ops.aten.masked_fill.Scalar_out(make((3,), torch.int64), make((3,), torch.bool), 1,
                                                  out=make((3,), torch.float32)),
], ids=["shapes", "bitwise-float", "bitwise-float-scalar", "not-float", "shift-bool", "shift-float",
        "lshift-operator-float", "inplace-cast", "inplace-broadcast", "overlap", "out-complex", "out-narrowing",
        "isnan-out-float", "isposinf-out-int", "lshift-out-dtype", "scalar-tensor-out-dtype",
        "isposinf-complex", "nan_to_num-out-dtype",
        "where-int-condition", "where-out-dtype", "where-out-narrow", "mask-uint8", "value-1d", "value-complex",
        "value-overflow", "value-nan-int", "value-overflow-half", "masked-fill-inplace-broadcast",
        "masked-fill-out-dtype"])
def test_errors_match_torch(case):
    assert_same_error(case)


def test_composite_operators_reach_our_kernels():
    """isfinite, isclose, where(cond, x, scalar) and the aliases decompose into routed overloads."""
    v = torch.tensor(SPECIALS, device=DEVICE)
    condition = v > 0
    for call in (lambda: torch.isfinite(v), lambda: torch.isclose(v, v.flip(0), equal_nan=True),
                 lambda: torch.where(condition, v, 2.0), lambda: torch.where(condition, 1.0, v),
                 lambda: torch.greater(v, 0.5), lambda: torch.not_equal(v, v.flip(0)),
                 lambda: v.bool().__and__(condition)):
        native = call()
        ours, where_ran = routed(call)
        same(ours, native)
        assert any(impl in OURS for _, impl in where_ran), where_ran


def test_unsupported_dtypes_fall_back():
    z = torch.randn(5, dtype=torch.complex64, device=DEVICE)
    for call in (lambda: z == z.conj(), lambda: torch.isnan(z), lambda: torch.logical_and(z, z),
                 lambda: torch.where(z.real > 0, z, 0), lambda: z.masked_fill(z.real > 0, 2.0),
                 lambda: z.masked_fill(z.real > 0, torch.tensor(1j)), lambda: torch.nan_to_num(z)):
        check(call, ours_must_run=False)


def test_autograd_through_where_and_masked_fill():
    a = make((4, 5), torch.float64).requires_grad_()
    b = make((5,), torch.float64).requires_grad_()
    mask = make((4, 5), torch.bool)

    def grads():
        return torch.autograd.grad((torch.where(mask, a, b) * 2 + a.masked_fill(mask, 0.5)).sum(), (a, b))

    native = grads()
    ours, _ = routed(grads)
    for mine, theirs in zip(ours, native):
        assert_equal(mine, theirs)


def test_explicit_calls_need_no_enable():
    a, b = values(SHAPE, torch.float32), values(SHAPE, torch.float32)
    assert_equal(flag_gems.ops.lt(a, b), torch.lt(a, b))
    assert_equal(flag_gems.ops.where(a > 0, a, b), torch.where(a > 0, a, b))
    assert_equal(flag_gems.ops.masked_fill(a, a > 0, 2.0), a.masked_fill(a > 0, 2.0))
    assert_equal(flag_gems.ops.bitwise_left_shift(a.int(), 3), a.int() << 3)
    z = torch.randn(4, dtype=torch.complex64, device=DEVICE)
    assert_equal(flag_gems.ops.eq(z, z), torch.ones(4, dtype=torch.bool, device=DEVICE))  # unsupported: native


OPINFO_NAMES = BINARY + ["logical_not", "bitwise_not", "nan_to_num", "where", "masked_fill"] + NAN_INF_TESTS


@pytest.mark.parametrize("name", OPINFO_NAMES)
def test_opinfo_samples(name):
    """PyTorch's own OpInfo samples: the same result or the same exception as native."""
    pytest.importorskip("expecttest")  # torch.testing._internal needs it
    from torch.testing._internal.common_methods_invocations import op_db

    for op in (op for op in op_db if op.name == name):
        for dtype in [d for d in ALL_DTYPES if d in op.supported_dtypes(DEVICE)]:
            for sample in op.sample_inputs(DEVICE, dtype):
                native, native_error = _outcome(lambda: op(sample.input, *sample.args, **sample.kwargs))
                with flag_gems.use_gems():
                    ours, our_error = _outcome(lambda: op(sample.input, *sample.args, **sample.kwargs))
                assert our_error is native_error, f"{sample}: native raised {native_error}, ours {our_error}"
                if native_error is None:
                    same(ours, native)


def _outcome(fn):
    try:
        return fn(), None
    except Exception as error:  # noqa: BLE001 - compared with native's exception type
        return None, type(error)
