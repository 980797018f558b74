"""add, sub, mul, div against PyTorch computed in higher precision."""

import contextlib

import pytest
import torch

import flag_gems
from flag_gems.testing import RESOLUTION, assert_close, assert_equal

from conftest import assert_same_error, error_of, ALL_DTYPES, DEVICE, FLOAT_DTYPES, INT_DTYPES, ON_GPU, make, pick

OPS = ["add", "sub", "mul", "div"]
SHAPE = pick((4, 33), (1024, 1027))
SHAPE_PAIRS = [
    ((), ()),
    ((0, 3), (0, 3)),
    ((17,), (17,)),
    (SHAPE, SHAPE),
    ((2, 1, 3, 1, 2), (2, 4, 3, 5, 2)),
    ((3, 1, 4), (5, 4)),
    ((4,), (3, 4)),
    ((), (3, 4)),
    ((3, 4), ()),
    (pick((2, 3, 4, 5, 6), (8, 16, 32, 4, 64)), pick((2, 3, 4, 5, 6), (8, 16, 32, 4, 64))),
]


def _up(value):
    if isinstance(value, torch.Tensor) and value.dtype.is_floating_point:
        return value.to(torch.float64)
    return value


def _call(op, *args, **kwargs):
    return getattr(torch, op)(*args, **kwargs)


def check(op, a, b, **kwargs):
    """Ours through the dispatcher vs native: dtype, shape, strides and values."""
    native = _call(op, a, b, **kwargs)
    with flag_gems.use_gems():
        ours = _call(op, a, b, **kwargs)
    assert ours.dtype == native.dtype and ours.shape == native.shape
    assert ours.stride() == native.stride() or ours.numel() <= 1
    if not native.dtype.is_floating_point or kwargs.get("rounding_mode"):
        assert_rounded_equal(ours, native)
    else:
        reference = _call(op, _up(a), _up(b), **kwargs)
        assert_close(ours, reference, native.dtype, equal_nan=True)
    return ours


def assert_rounded_equal(ours, native):
    """Integer-valued results (rounded quotients, remainders) equal native's. For halves
    PyTorch keeps some intermediates in the half type (and its CPU and CUDA kernels differ
    there), and the interpreter truncates bf16 conversions: a rounded quotient may move by one."""
    if native.dtype in (torch.float16, torch.bfloat16):
        torch.testing.assert_close(ours, native, equal_nan=True, rtol=RESOLUTION[native.dtype], atol=1.0)
    else:
        assert_equal(ours, native, equal_nan=True)


def _operands(op, shape_a, shape_b, dtype):
    a, b = make(shape_a, dtype), make(shape_b, dtype)
    if op == "div" and not dtype.is_floating_point:
        b = torch.where(b == 0, torch.ones_like(b), b)
    return a, b


def _valid(op, dtype, scalar=None):
    # PyTorch rejects subtraction with bool operands: test_errors_match_torch covers it.
    return not (op == "sub" and (dtype == torch.bool or scalar is True))


@pytest.mark.parametrize("op, dtype", [(op, d) for op in OPS for d in ALL_DTYPES if _valid(op, d)])
def test_same_shape_every_dtype(op, dtype):
    check(op, *_operands(op, SHAPE, SHAPE, dtype))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("shapes", SHAPE_PAIRS, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int32])
def test_shapes_and_broadcast(op, shapes, dtype):
    check(op, *_operands(op, *shapes, dtype))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.int64])
def test_non_contiguous_inputs(op, dtype):
    rows, cols = pick((6, 10), (512, 1030))
    a, b = _operands(op, (rows, cols), (cols, rows), dtype)
    check(op, a, b.t())  # transposed
    check(op, a.t(), b)  # first operand decides the layout
    check(op, a.t(), _operands(op, (rows, cols), (rows, cols), dtype)[1].t())  # both transposed
    check(op, a[:, ::3], b.t()[:, ::3])  # sliced
    check(op, a[::2], a[1::2])  # row-strided
    column = make((rows, 1), dtype).abs() + 1
    check(op, a, column.expand(rows, cols))  # zero-stride


@pytest.mark.parametrize("op, dtype, scalar", [
    (op, dtype, scalar)
    for op in OPS
    for dtype in [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int32, torch.uint8, torch.bool]
    for scalar in [3, -2.5, True]
    if _valid(op, dtype, scalar)
])
def test_python_scalar_operand(op, dtype, scalar):
    a = make(SHAPE, dtype)
    check(op, a, scalar)
    # Scalar overloads, reached only through torch.ops.aten.
    overload = getattr(getattr(torch.ops.aten, op), "Scalar")
    native = overload(a, scalar)
    with flag_gems.use_gems():
        ours = overload(a, scalar)
    assert ours.dtype == native.dtype
    assert_close(ours, overload(a.double() if dtype.is_floating_point else a, scalar), native.dtype,
                 equal_nan=True)


@pytest.mark.parametrize("op", OPS)
def test_zero_dim_tensor_operands(op):
    a = make(SHAPE, torch.float16)
    check(op, a, torch.tensor(1.5, dtype=torch.float64, device=DEVICE))  # 0-d: no promotion
    check(op, a, torch.tensor(3, device="cpu"))  # a CPU 0-d tensor with a device tensor
    check(op, make(SHAPE, torch.int32), torch.tensor(2.5, dtype=torch.float64))  # 0-d of a higher kind
    check(op, torch.tensor(4.0, device=DEVICE), torch.tensor(2.0, device=DEVICE))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_add_sub_alpha(dtype):
    a, b = make(SHAPE, dtype), make(SHAPE, dtype)
    for op in ("add", "sub"):
        check(op, a, b, alpha=2)
        check(op, a, b, alpha=-0.5)
        check(op, a, 1.25, alpha=3)
    check("add", make(SHAPE, torch.int64), make(SHAPE, torch.int64), alpha=-3)
    check("add", make(SHAPE, torch.bool), make(SHAPE, torch.bool), alpha=True)


def test_scalar_overloads_take_alpha_positionally():
    # add.Scalar, sub.Scalar and rsub.Scalar declare alpha positional: the dispatcher hands it over so.
    x = make(SHAPE, torch.float32)
    aten = torch.ops.aten
    for overload, inplace in ((aten.add.Scalar, False), (aten.sub.Scalar, False), (aten.rsub.Scalar, False),
                              (aten.add_.Scalar, True), (aten.sub_.Scalar, True)):
        with flag_gems.use_gems():
            ours = overload(x.clone() if inplace else x, 1.25, 3)
        assert_close(ours, overload(x.double(), 1.25, 3), torch.float32)


@pytest.mark.parametrize("mode", ["trunc", "floor"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES + INT_DTYPES)
def test_div_rounding_modes(mode, dtype):
    a, b = _operands("div", SHAPE, SHAPE, dtype)
    if dtype.is_floating_point:
        a = a * 10
    check("div", a, b, rounding_mode=mode)
    check("div", a, 3 if not dtype.is_floating_point else -0.75, rounding_mode=mode)
    check("div", a, b.t().contiguous().t() if a.dim() == 2 else b, rounding_mode=mode)


def test_div_rounding_mode_signs_and_special_values():
    a = torch.tensor([7.0, -7.0, 7.0, -7.0, 0.0, -0.0, 1.0, -1.0, float("inf"), float("nan"), 5.0, 1e30],
                     device=DEVICE)
    b = torch.tensor([2.0, 2.0, -2.0, -2.0, 3.0, 3.0, 0.0, 0.0, 2.0, 1.0, float("inf"), 3e-9], device=DEVICE)
    for mode in (None, "trunc", "floor"):
        check("div", a, b, rounding_mode=mode)
    ints = torch.tensor([7, -7, 7, -7, 0, -128, 127], dtype=torch.int8, device=DEVICE)
    divisors = torch.tensor([2, 2, -2, -2, 5, -1, 1], dtype=torch.int8, device=DEVICE)
    for mode in ("trunc", "floor"):
        check("div", ints, divisors, rounding_mode=mode)


def test_special_values():
    specials = [0.0, -0.0, 1.0, -1.0, float("inf"), float("-inf"), float("nan"), 3e38, 1e-40]
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        # The interpreter flushes bf16 denormals to zero (a Triton limitation); the GPU keeps them.
        values = torch.tensor(specials[:-1] if dtype == torch.bfloat16 and not ON_GPU else specials,
                              device=DEVICE)
        a = values.repeat_interleave(len(values))
        b = values.repeat(len(values))
        for op in OPS:
            check(op, a.to(dtype), b.to(dtype))


def test_integer_overflow_wraps_like_torch():
    a = torch.tensor([127, -128, 100], dtype=torch.int8, device=DEVICE)
    b = torch.tensor([1, -1, 100], dtype=torch.int8, device=DEVICE)
    for op in ("add", "sub", "mul"):
        check(op, a, b)
    big = torch.tensor([2**62, -(2**62)], dtype=torch.int64, device=DEVICE)
    check("add", big, big)
    check("mul", big, 3)
    u = torch.tensor([250, 3], dtype=torch.uint8, device=DEVICE)
    check("add", u, 10)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int32])
def test_out_forms(op, dtype):
    a, b = _operands(op, SHAPE, SHAPE, dtype)
    expected = _call(op, a, b)
    for out in (torch.empty(SHAPE, dtype=expected.dtype, device=DEVICE),
                torch.empty(SHAPE[::-1], dtype=expected.dtype, device=DEVICE).t()):  # non-contiguous out
        with flag_gems.use_gems():
            returned = _call(op, a, b, out=out)
        assert returned is out
        assert_close(out, expected, expected.dtype)
    # A wider out dtype is a legal cast; an out needing a resize goes to native, which resizes it.
    wide = torch.empty(SHAPE, dtype=torch.float64, device=DEVICE)
    small = torch.empty(0, dtype=expected.dtype, device=DEVICE)
    with flag_gems.use_gems():
        _call(op, a, b, out=wide)
        _call(op, a, b, out=small)
    # Rounded to the result dtype first, then widened, as PyTorch does.
    assert_equal(wide, wide.to(expected.dtype).double())
    assert_close(wide.to(expected.dtype), expected, expected.dtype)
    assert small.shape == expected.shape


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.int64])
def test_inplace_forms(op, dtype):
    a, b = _operands(op, SHAPE, SHAPE, dtype)
    if op == "div" and not dtype.is_floating_point:
        kwargs = {"rounding_mode": "floor"}
    else:
        kwargs = {}
    native = getattr(a.clone(), op + "_")(b, **kwargs)
    ours = a.clone()
    with flag_gems.use_gems():
        returned = getattr(ours, op + "_")(b, **kwargs)
    assert returned.data_ptr() == ours.data_ptr()
    assert_close(ours, native, dtype)
    # Broadcast other, transposed self, self aliasing other.
    target = a.clone().t()
    row = b.t()[0]
    expected = getattr(target.clone(), op + "_")(row, **kwargs)
    with flag_gems.use_gems():
        getattr(target, op + "_")(row, **kwargs)
    assert_close(target, expected, dtype)
    same = b.clone()
    expected = getattr(same.clone(), op + "_")(same.clone(), **kwargs)
    with flag_gems.use_gems():
        getattr(same, op + "_")(same, **kwargs)
    assert_close(same, expected, dtype)


@pytest.mark.parametrize("case", [
    lambda: torch.add(make((3, 4), torch.float32), make((5,), torch.float32)),  # shapes
    lambda: make((3,), torch.int64).add_(make((3,), torch.float32)),  # illegal in-place cast
    lambda: make((1, 3), torch.float32).add_(make((4, 3), torch.float32)),  # in-place broadcast of self
    lambda: torch.sub(make((3,), torch.bool), make((3,), torch.bool)),  # bool subtraction
    lambda: torch.add(make((3,), torch.int32), make((3,), torch.int32), alpha=0.5),  # float alpha
    lambda: torch.add(make((3,), torch.int32), make((3,), torch.int32), alpha=1.0),  # 1.0 is still a float
    lambda: torch.add(make((3,), torch.float32), make((3,), torch.float32), alpha=True),  # bool alpha
    lambda: torch.add(make((3,), torch.float32), make((3,), torch.float32), out=make((3,), torch.int32)),
    lambda: torch.div(make((3,), torch.float32), 2.0, rounding_mode="round"),
    lambda: make((3,), torch.float32).expand(2, 3).add_(1.0),  # internal overlap
], ids=["shapes", "inplace-cast", "inplace-broadcast", "bool-sub", "float-alpha", "float-one-alpha",
        "bool-alpha", "out-cast",
        "bad-rounding-mode", "overlap"])
def test_errors_match_torch(case):
    assert_same_error(case)


def test_complex_falls_back_to_native():
    z = torch.randn(8, dtype=torch.complex64, device=DEVICE)
    with flag_gems.use_gems():
        result = z * z + z / (z - 1)
    torch.testing.assert_close(result, z * z + z / (z - 1))


@pytest.mark.parametrize("op", OPS)
def test_autograd(op):
    a = make((4, 5), torch.float64).requires_grad_()
    b = (make((5,), torch.float64).abs() + 1).requires_grad_()
    native_grads = torch.autograd.grad(_call(op, a, b).sum(), (a, b))
    with flag_gems.use_gems():
        ours = torch.autograd.grad(_call(op, a, b).sum(), (a, b))
    for mine, theirs in zip(ours, native_grads):
        assert_close(mine, theirs, torch.float64)


def test_explicit_calls_need_no_enable():
    a, b = make(SHAPE, torch.float32), make(SHAPE, torch.float32)
    assert_close(flag_gems.ops.add(a, b, alpha=2), a.double() + 2 * b.double(), torch.float32)
    assert_close(flag_gems.ops.div(a, b, rounding_mode="floor"), torch.div(a, b, rounding_mode="floor"),
                 torch.float32)
    z = torch.randn(4, dtype=torch.complex64, device=DEVICE)
    torch.testing.assert_close(flag_gems.ops.mul(z, z), z * z)  # unsupported: native


@pytest.mark.skipif(not ON_GPU, reason="needs more than 2**31 elements of device memory")
def test_more_than_int32_elements():
    n = 2**31 + 5
    a = torch.ones(n, dtype=torch.int8, device=DEVICE)
    with flag_gems.use_gems():
        r = torch.add(a, a)
    assert r[-1].item() == 2 and r[0].item() == 2 and int(r[-8:].sum()) == 16


# ---- the rest of the arithmetic family ----------------------------------------------------

FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
REALS = FLOATS + [torch.int32, torch.int64, torch.uint8]


def _nonzero(t):
    return torch.where(t == 0, torch.ones_like(t), t)


# (name, call(a, b), dtypes, compare to native exactly)
EXTRAS = [
    ("rsub", lambda a, b: torch.rsub(a, b, alpha=2), REALS[:-1], False),
    ("floor_divide", lambda a, b: torch.floor_divide(a, _nonzero(b)), REALS, True),
    ("remainder", lambda a, b: torch.remainder(a, _nonzero(b)), REALS, True),
    ("fmod", lambda a, b: torch.fmod(a, _nonzero(b)), REALS, True),
    ("pow", lambda a, b: torch.pow(a.abs() if a.dtype.is_floating_point else a, b % 4 if not
                                   b.dtype.is_floating_point else b), REALS, False),
    ("pow_number", lambda a, b: a ** 3, REALS, False),
    ("pow_half", lambda a, b: a.abs() ** 0.5, FLOATS, False),
    ("maximum", torch.maximum, REALS + [torch.bool], False),
    ("minimum", torch.minimum, REALS + [torch.bool], False),
    ("fmax", torch.fmax, REALS, False),
    ("fmin", torch.fmin, REALS, False),
    ("clamp", lambda a, b: torch.clamp(a, -2, 3), REALS[:-1], False),
    ("clamp_min", lambda a, b: torch.clamp(a, min=1), REALS, False),
    ("clamp_tensor", lambda a, b: torch.clamp(a, b, b + 2), REALS, False),
    ("clamp_max_tensor", lambda a, b: torch.clamp_max(a, b), REALS, False),
    ("lerp", lambda a, b: torch.lerp(a, b, 0.3), FLOATS, False),
    ("lerp_tensor", lambda a, b: torch.lerp(a, b, b * 0 + 0.75), FLOATS, False),
    ("addcmul", lambda a, b: torch.addcmul(a, b, a, value=2), REALS[:-1], False),
    ("addcdiv", lambda a, b: torch.addcdiv(a, b, _nonzero(b) * 2, value=0.5), FLOATS, False),
    ("hypot", torch.hypot, FLOATS, False),
    ("atan2", torch.atan2, REALS, False),
    ("copysign", torch.copysign, REALS, False),
    ("nextafter", torch.nextafter, [torch.float16, torch.bfloat16, torch.float32, torch.float64], True),
]


@pytest.mark.parametrize("name, call, dtypes, exact", EXTRAS, ids=[e[0] for e in EXTRAS])
def test_more_arithmetic(name, call, dtypes, exact):
    rows, cols = pick((5, 12), (512, 1030))
    for dtype in dtypes:
        for shape_b in ((rows, cols), (cols,)):  # same shape, then broadcast
            a, b = make((rows, cols), dtype), make(shape_b, dtype)
            native = call(a, b)
            with flag_gems.use_gems():
                ours = call(a, b)
            assert ours.dtype == native.dtype and ours.shape == native.shape, (dtype, ours.dtype, native.dtype)
            if exact or not native.dtype.is_floating_point:
                assert_rounded_equal(ours, native)
            else:
                assert_close(ours, call(a.double() if dtype.is_floating_point else a,
                                        b.double() if dtype.is_floating_point else b), native.dtype,
                             equal_nan=True)
        # transposed operands and an out= of the result dtype
        a, b = make((cols, rows), dtype).t(), make((cols, rows), dtype).t()
        native = call(a, b)
        with flag_gems.use_gems():
            ours = call(a, b)
        torch.testing.assert_close(ours, native, equal_nan=True, rtol=RESOLUTION[native.dtype] * 2,
                                   atol=1e-5 if native.dtype.is_floating_point else 0)


@pytest.mark.parametrize("op, args", [
    ("remainder_", (3,)), ("fmod_", (2.5,)), ("pow_", (2,)), ("clamp_", (-0.5, 0.5)), ("clamp_min_", (0.0,)),
    ("lerp_", (torch.ones(1), 0.25)), ("addcmul_", (torch.full((1,), 2.0), torch.full((1,), 3.0))),
    ("addcdiv_", (torch.full((1,), 2.0), torch.full((1,), 4.0))), ("atan2_", (torch.full((1,), 0.5),)),
    ("hypot_", (torch.full((1,), 0.5),)), ("copysign_", (-1.0,)), ("floor_divide_", (0.75,)),
])
def test_more_arithmetic_inplace_and_out(op, args):
    args = tuple(a.to(DEVICE) if isinstance(a, torch.Tensor) else a for a in args)
    x = make(pick((4, 9), (256, 1000)), torch.float32)
    native = getattr(x.clone(), op)(*args)
    ours = x.clone()
    with flag_gems.use_gems():
        returned = getattr(ours, op)(*args)
    assert returned.data_ptr() == ours.data_ptr()
    assert_close(ours, native, torch.float32)
    functional = getattr(torch, op.rstrip("_"))
    out = torch.empty(x.shape[::-1], device=DEVICE).t()  # non-contiguous out
    with flag_gems.use_gems():
        functional(x, *args, out=out)
    assert_close(out, functional(x, *args), torch.float32)


@pytest.mark.parametrize("case", [
    lambda: torch.clamp(make((3,), torch.float32)),  # neither bound
    lambda: torch.remainder(make((3,), torch.int64), 0),  # integer zero divisor
    lambda: torch.pow(make((3,), torch.int64), -2),  # negative integer power
    lambda: torch.lerp(make((3,), torch.int64), make((3,), torch.int64), 0.5),  # lerp of integers
    lambda: torch.addcdiv(make((3,), torch.int64), make((3,), torch.int64), make((3,), torch.int64)),
    lambda: torch.rsub(make((3,), torch.bool), make((3,), torch.bool)),
    lambda: make((3,), torch.int64).clamp_(0.5, 1.5),  # float result into an int tensor
    lambda: torch.clamp(make((3,), torch.float32), -1, 1, out=torch.empty(3, dtype=torch.float64, device=DEVICE)),
], ids=["clamp-no-bounds", "remainder-zero", "negative-int-power", "lerp-int", "addcdiv-int", "rsub-bool",
        "clamp-inplace-cast", "clamp-out-dtype"])
def test_more_arithmetic_errors_match_torch(case):
    assert_same_error(case)


def test_more_arithmetic_special_values():
    specials = torch.tensor([0.0, -0.0, 1.0, -1.0, float("inf"), float("-inf"), float("nan"), 2.5, -7.0],
                            device=DEVICE)
    a, b = specials.repeat_interleave(len(specials)), specials.repeat(len(specials))
    for call in (torch.maximum, torch.minimum, torch.fmax, torch.fmin, torch.remainder, torch.fmod,
                 torch.hypot, torch.atan2, torch.copysign, torch.pow, lambda x, y: torch.clamp(x, y, y),
                 lambda x, y: x ** 0.5, lambda x, y: x ** -1, lambda x, y: x ** -2):
        native = call(a, b)
        with flag_gems.use_gems():
            ours = call(a, b)
        torch.testing.assert_close(ours, native, equal_nan=True, rtol=1e-6, atol=0)


# ---- pow.Scalar: a number raised to a tensor ----------------------------------------------

NUMBER_BASES = [2, -3, 0, 1, 2.5, -0.5, 0.1, True, False]
EXPONENT_SHAPES = [(), (0, 3), (17,), pick((2, 3, 1, 4, 2), (8, 16, 3, 32, 64)), SHAPE]


def _base_as_torch_sees_it(base, dtype):
    """PyTorch casts the number to the result dtype before the power."""
    return torch.tensor(base, dtype=dtype).item() if dtype.is_floating_point else base


def check_number_base(base, exponent, **kwargs):
    native = torch.pow(base, exponent, **kwargs)
    with flag_gems.use_gems():
        ours = torch.pow(base, exponent, **kwargs)
    assert ours.dtype == native.dtype and ours.shape == native.shape, (base, ours.dtype, native.dtype)
    assert ours.stride() == native.stride() or ours.numel() <= 1
    if native.dtype.is_floating_point:
        reference = torch.pow(_base_as_torch_sees_it(base, native.dtype), _up(exponent))
        assert_close(ours, reference, native.dtype, equal_nan=True)
    else:
        assert_equal(ours, native)  # integer overflow wraps as PyTorch's does
    return ours


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_pow_number_base(dtype):
    for base in NUMBER_BASES:
        if type(base) is bool and dtype == torch.bool:
            continue  # a bool result: PyTorch has no bool pow (test_pow_number_base_errors)
        for shape in EXPONENT_SHAPES:
            check_number_base(base, make(shape, dtype))
        check_number_base(base, make(SHAPE[::-1], dtype).t())  # transposed


@pytest.mark.parametrize("base", [2, 3, -1, 0, 1, 2.5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.int8])
def test_pow_number_base_operator_and_dispatch(tmp_path, base, dtype):
    exponent = make((3, 5), dtype, low=-4, high=8)
    log = tmp_path / "pow.log"
    out = torch.empty((3, 5), dtype=torch.result_type(base, exponent), device=DEVICE)
    with flag_gems.use_gems(record=True, path=str(log)):
        by_operator = base ** exponent
        by_function = torch.pow(base, exponent)
        torch.pow(base, exponent, out=out)
    native = torch.pow(base, exponent)
    for ours in (by_operator, by_function, out):
        assert ours.dtype == native.dtype
        torch.testing.assert_close(ours, native, equal_nan=True)
    where_ran = [line.split("\t")[:2] for line in log.read_text().splitlines() if "pow" in line]
    assert where_ran == [["aten::pow.Scalar", "triton"]] * 2 + [["aten::pow.Scalar_out", "triton"]]
    torch.testing.assert_close(flag_gems.ops.pow(base, exponent), native, equal_nan=True)  # explicit call


def test_pow_number_base_rounds_to_the_result_dtype():
    # PyTorch first casts the number to the result dtype: ints wrap, floats round.
    check_number_base(255, torch.tensor([-3, -2, 2, 3], dtype=torch.int8, device=DEVICE))  # (-1) ** e
    check_number_base(257, torch.tensor([-3, 5], dtype=torch.int8, device=DEVICE))  # 1 ** e
    check_number_base(-1, torch.tensor([3, 4], dtype=torch.uint8, device=DEVICE))  # 255 ** e
    check_number_base(2**32 + 3, torch.tensor([1, 2], dtype=torch.int32, device=DEVICE))
    for dtype in (torch.float16, torch.bfloat16):
        check_number_base(70000, torch.tensor([0.5, -1.0], dtype=dtype, device=DEVICE))  # inf first
        check_number_base(0.1, torch.tensor([3.0, 0.5], dtype=dtype, device=DEVICE))
        check_number_base(2049, torch.tensor([1.0, 0.5], dtype=dtype, device=DEVICE))
    check_number_base(2**62, torch.tensor([1.0, 0.5], dtype=torch.float32, device=DEVICE))
    check_number_base(0.1, torch.tensor([3.0, 0.5], dtype=torch.float64, device=DEVICE))  # fp64 kept exact


def test_native_pow_number_base_out_of_range_zero_dim():
    # Native pow.Scalar redispatches to pow.Tensor_Tensor_out (our row, here inactive) with
    # the number wrapped; the router's fallback re-wraps it in the 0-d exponent's dtype.
    exponent = torch.tensor(3, dtype=torch.int8, device=DEVICE)
    with flag_gems.use_gems():
        torch.pow(exponent, exponent)  # registers the pow rows
    assert torch.pow(255, exponent).item() == -1


def test_pow_number_base_special_values():
    specials = [0.0, -0.0, 1.0, -1.0, 2.0, 0.5, -2.5, float("inf"), float("-inf"), float("nan")]
    exponent = torch.tensor([0.0, -0.0, 1.0, -1.0, 2.0, 3.0, -2.0, 0.5, -0.5, 2.5, -7.0, float("inf"),
                             float("-inf"), float("nan")], device=DEVICE)
    for base in specials + [0, 1, -1, 2, True, False]:
        for dtype in (torch.float32, torch.float64, torch.float16):
            e = exponent.to(dtype)
            native = torch.pow(base, e)
            with flag_gems.use_gems():
                ours = torch.pow(base, e)
            torch.testing.assert_close(ours, native, equal_nan=True, rtol=RESOLUTION[dtype], atol=0)
            numbers = ~native.isnan()
            assert torch.equal(ours[numbers].signbit(), native[numbers].signbit())  # -0.0 ** -1 is -inf
    # Integers: 0 ** negative is 0, 1 ** anything 1, (-1) ** e by parity, others ** negative 0.
    exponent = torch.tensor([-3, -2, -1, 0, 1, 2, 63, 64], device=DEVICE)
    for base in (0, 1, -1, 2, -2, 3, True, False):
        check_number_base(base, exponent)
    check_number_base(2, torch.tensor([True, False], device=DEVICE))  # int64, as PyTorch


@pytest.mark.parametrize("base", [2, 1, 2.5])
def test_pow_number_base_out(base):
    exponent = make((4, 6), torch.int32, low=0, high=5)
    result_dtype = torch.result_type(base, exponent)
    for out in (torch.empty((6, 4), dtype=result_dtype, device=DEVICE).t(),  # non-contiguous
                torch.empty((4, 6), dtype=torch.float64, device=DEVICE),  # a wider dtype
                torch.empty((0,), dtype=result_dtype, device=DEVICE)):  # resized (by native)
        native_out = out.clone()
        torch.pow(base, exponent, out=native_out)
        with flag_gems.use_gems():
            returned = torch.pow(base, exponent, out=out)
        assert returned is out and out.shape == native_out.shape and out.dtype == native_out.dtype
        torch.testing.assert_close(out, native_out)


@pytest.mark.parametrize("case", [
    lambda: torch.pow(True, make((3,), torch.bool)),  # no bool pow
    lambda: torch.pow(False, make((3,), torch.bool)),
    lambda: torch.pow(2.5, make((3,), torch.int64), out=torch.empty(3, dtype=torch.int64, device=DEVICE)),
    lambda: torch.pow(2, make((3,), torch.int64), out=torch.empty(3, dtype=torch.bool, device=DEVICE)),
    lambda: torch.pow(1, make((3,), torch.float32), out=torch.empty(3, dtype=torch.int64, device=DEVICE)),
    lambda: torch.pow(2j, make((3,), torch.float32)),  # complex: native
    lambda: torch.pow(2, make((3,), torch.float32).to(torch.complex64)),
    lambda: torch.pow(2**70, make((3,), torch.float32)),  # not an int64
    lambda: torch.pow("2", make((3,), torch.float32)),
], ids=["true-bool", "false-bool", "float-into-int-out", "int-into-bool-out", "one-into-int-out", "complex-base",
        "complex-exponent", "huge-int", "string"])
def test_pow_number_base_errors(case):
    assert_same_error(case)


def test_pow_number_base_native_fallbacks():
    """Number bases our kernels leave to native: on a GPU they run as a 0-d CPU tensor base
    (native pow.Scalar would redispatch a device-wrapped number into our router)."""
    t = torch.arange(1, 5, device=DEVICE, dtype=torch.float32)
    with flag_gems.use_gems():
        torch.pow(2, t)  # registers the pow rows
    cases = [(2 + 1j, t), (True, t > 2), (False, t > 2)]
    for enabled in (False, True):
        with flag_gems.use_gems() if enabled else contextlib.nullcontext():
            for base, exponent in cases:
                expected_error = error_of(lambda: torch.pow(base, exponent.cpu()))
                assert error_of(lambda: torch.pow(base, exponent)) is expected_error
                if expected_error is None:
                    torch.testing.assert_close(torch.pow(base, exponent).cpu(), torch.pow(base, exponent.cpu()))
            resized = torch.empty(0, device=DEVICE)
            torch.pow(2.0, t, out=resized)
            torch.testing.assert_close(resized.cpu(), torch.pow(2.0, t.cpu()))
            wrong = torch.empty(4, device=DEVICE, dtype=torch.int32)
            assert error_of(lambda: torch.pow(2, t, out=wrong)) is RuntimeError
