"""Unary math operators against PyTorch: values against fp64 references, result
dtypes, layouts, out= and in-place forms, special values and errors."""

import pytest
import torch

import flag_gems
from flag_gems.testing import RESOLUTION, assert_close, assert_equal

from conftest import assert_same_error, DEVICE, FLOAT_DTYPES, ON_GPU, pick

# (operator, low, high): random inputs are uniform in [low, high], inside the function's domain.
OPS = [
    ("neg", -10, 10), ("abs", -10, 10), ("sign", -2, 2), ("sgn", -2, 2), ("floor", -10, 10),
    ("ceil", -10, 10), ("round", -10, 10), ("trunc", -10, 10), ("frac", -10, 10),
    ("reciprocal", -10, 10), ("sqrt", 0, 100), ("rsqrt", 0.01, 100), ("exp", -10, 10), ("exp2", -10, 10),
    ("expm1", -5, 5), ("log", 0.01, 100), ("log2", 0.01, 100), ("log10", 0.01, 100), ("log1p", -0.99, 100),
    ("sin", -10, 10), ("cos", -10, 10), ("tan", -1.5, 1.5), ("asin", -1, 1), ("acos", -1, 1),
    ("atan", -10, 10), ("sinh", -10, 10), ("cosh", -10, 10), ("tanh", -5, 5), ("asinh", -10, 10),
    ("acosh", 1, 10), ("atanh", -0.99, 0.99), ("erf", -3, 3), ("erfc", -3, 3), ("erfinv", -0.99, 0.99),
    ("sigmoid", -10, 10), ("logit", 0.01, 0.99), ("lgamma", -4.5, 10), ("digamma", -4.5, 10),
]
NAMES = [name for name, _, _ in OPS]
DTYPE_IDS = [str(dtype)[len("torch."):] for dtype in FLOAT_DTYPES]
DOMAIN = {name: (low, high) for name, low, high in OPS}
# Results with no rounding at all: equal to native bit for bit.
EXACT = {"neg", "abs", "sign", "sgn", "floor", "ceil", "round", "trunc", "frac"}
# IEEE-rounded (as CUDA's): in fp32, equal to the fp64 result rounded once. (PyTorch's CPU sqrt
# is not correctly rounded, in fp32 nor fp64: native is no reference for these.)
ROUNDED_ONCE = {"sqrt", "reciprocal"}

SHAPE = pick((4, 33), (1024, 1027))


def uniform(shape, dtype, name):
    low, high = DOMAIN[name]
    return torch.empty(shape, dtype=torch.float64, device=DEVICE).uniform_(low, high).to(dtype)


def outcome(fn):
    """(result, None) or (None, exception type)."""
    try:
        return fn(), None
    except Exception as error:  # noqa: BLE001 - compared with native's exception type
        return None, type(error)


def check(name, x, **kwargs):
    """Ours through the dispatcher vs native: dtype, shape, strides, values (or the same error)."""
    fn = getattr(torch, name)
    native, native_error = outcome(lambda: fn(x, **kwargs))
    with flag_gems.use_gems():
        ours, our_error = outcome(lambda: fn(x, **kwargs))
    assert our_error is native_error
    if native_error is not None:
        return None
    assert ours.dtype == native.dtype and ours.shape == native.shape
    assert ours.stride() == native.stride() or ours.numel() <= 1
    dtype = native.dtype
    if not dtype.is_floating_point or name in EXACT:
        assert_equal(ours, native, equal_nan=True)
        return ours
    # Integers become the result dtype first (2**31 - 1 is 2**31 in fp32), as in PyTorch.
    wide = x.to(dtype).to(torch.float64)
    if name in ROUNDED_ONCE and dtype == torch.float32:
        assert_equal(ours, fn(wide, **kwargs), equal_nan=True)
    else:
        assert_close(ours, fn(wide, **kwargs), dtype, equal_nan=True)
    return ours


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", NAMES)
def test_float_dtypes(name, dtype):
    check(name, uniform(SHAPE, dtype, name))


@pytest.mark.parametrize("name", NAMES)
def test_integral_inputs_promote_like_torch(name):
    """Float functions give the default float; the others keep the dtype or raise as torch does."""
    for dtype in (torch.int32, torch.int64, torch.uint8, torch.bool):
        low = 0 if dtype in (torch.uint8, torch.bool) else -3
        high = 2 if dtype == torch.bool else 5
        check(name, torch.randint(low, high, SHAPE, device=DEVICE).to(dtype))
    check(name, torch.tensor([-(2**31), 2**31 - 1, 7], dtype=torch.int32, device=DEVICE))


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_layouts(name):
    rows, cols = pick((6, 10), (512, 1030))
    for shape in [(), (0, 3), (17,), pick((4099,), (1 << 20,)), pick((2, 3, 4, 5, 6), (8, 16, 32, 4, 64))]:
        check(name, uniform(shape, torch.float32, name))
    x = uniform((rows, cols), torch.float32, name)
    check(name, x.t())  # transposed
    check(name, x[:, ::3])  # sliced
    check(name, x[::2, 1:])  # row-strided, offset
    check(name, x[:, :1].expand(rows, cols))  # zero stride
    check(name, uniform((cols, rows), torch.float16, name).t())


@pytest.mark.parametrize("name", NAMES)
def test_out_and_inplace(name):
    fn = getattr(torch, name)
    x = uniform(SHAPE, torch.float32, name)
    expected = fn(x)
    for out in (torch.empty(SHAPE, device=DEVICE),
                torch.empty(SHAPE[::-1], device=DEVICE).t()):  # non-contiguous out
        with flag_gems.use_gems():
            returned = fn(x, out=out)
        assert returned is out
        assert_close(out, expected, torch.float32, equal_nan=True)
    # A wider out: the result rounded to its own dtype first. An out to resize: native does it.
    wide = torch.empty(SHAPE, dtype=torch.float64, device=DEVICE)
    small = torch.empty(0, device=DEVICE)
    with flag_gems.use_gems():
        fn(x, out=wide)
        fn(x, out=small)
    assert_equal(wide, wide.to(torch.float32).double(), equal_nan=True)
    assert small.shape == expected.shape
    # In place: contiguous, transposed, half.
    for target in (x.clone(), x.clone().t(), uniform(SHAPE, torch.float16, name)):
        reference = fn(target.double())
        with flag_gems.use_gems():
            returned = getattr(target, name + "_")()
        assert returned is target
        assert_close(target, reference, target.dtype, equal_nan=True)


SPECIALS = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, -1.5, 2.0, -2.0, 2.5, -2.5, 0.9999, -0.9999, 10.0, -10.0,
            100.0, -100.0, 1e30, -1e30, float("inf"), float("-inf"), float("nan"), 1e-40, -1e-40]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", NAMES)
def test_special_values(name, dtype):
    """Zeros of both signs, infinities, NaN, denormals, poles and points outside the domain
    (log(-1), sqrt(-1), acosh(0.5), atanh(2)...): the same NaNs, infinities and signs as torch."""
    values = SPECIALS
    if dtype == torch.bfloat16 and not ON_GPU:
        values = [v for v in values if abs(v) != 1e-40]  # the interpreter flushes bf16 denormals
    if dtype == torch.float64:
        values = values + [1e-310, -1e-310]
    x = torch.tensor(values, device=DEVICE).to(dtype)
    fn = getattr(torch, name)
    native = fn(x)
    with flag_gems.use_gems():
        ours = fn(x)
    assert ours.dtype == native.dtype
    if dtype == torch.bfloat16 and not ON_GPU:  # nor can it convert fp32 results to bf16 denormals
        ours, native = (torch.where(t.abs() < 1.2e-38, t * 0, t) for t in (ours, native))
    assert torch.equal(ours.isnan(), native.isnan())
    assert torch.equal(ours.isinf(), native.isinf())
    edges = (native == 0) | native.isinf()
    assert torch.equal(ours[edges], native[edges])
    assert torch.equal(ours[edges].signbit(), native[edges].signbit())
    rtol = RESOLUTION[dtype] if name in EXACT else 2 * RESOLUTION[dtype]
    torch.testing.assert_close(ours, native, equal_nan=True, rtol=rtol, atol=1e-4)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=DTYPE_IDS)
def test_round_decimals(dtype):
    x = (torch.randn(SHAPE, dtype=torch.float64, device=DEVICE) * 1000).to(dtype)
    x[0, :4] = torch.tensor([0.125, -0.125, 2.5, -0.0])  # halves go to even
    for decimals in (-3, -1, 0, 1, 2, 3, 400, -400):
        native = torch.round(x, decimals=decimals)
        with flag_gems.use_gems():
            ours = torch.round(x, decimals=decimals)
        if dtype in (torch.float32, torch.float64):
            assert_equal(ours, native, equal_nan=True)
        else:  # the interpreter truncates bf16 conversions: one unit of bf16 apart on the CPU
            torch.testing.assert_close(ours, native, equal_nan=True, rtol=RESOLUTION[dtype], atol=1e-4)
    # out= and in-place forms of round.decimals.
    out = torch.empty(SHAPE[::-1], dtype=dtype, device=DEVICE).t()
    target = x.clone()
    with flag_gems.use_gems():
        torch.round(x, decimals=2, out=out)
        target.round_(decimals=-1)
    torch.testing.assert_close(out, torch.round(x, decimals=2), rtol=RESOLUTION[dtype], atol=1e-4)
    torch.testing.assert_close(target, torch.round(x, decimals=-1), rtol=RESOLUTION[dtype], atol=1e-4)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=DTYPE_IDS)
def test_logit_eps(dtype):
    x = torch.empty(SHAPE, dtype=torch.float64, device=DEVICE).uniform_(-0.5, 1.5).to(dtype)
    x[0, :5] = torch.tensor([0.0, 1.0, float("nan"), float("inf"), -float("inf")])
    for eps in (None, 0.0, 0.1, 0.25, 0.5, -1.0):
        ours = check("logit", x, eps=eps)
        assert ours is not None
    out = torch.empty(SHAPE[::-1], dtype=dtype, device=DEVICE).t()
    target = x.clone()
    with flag_gems.use_gems():
        torch.logit(x, 0.2, out=out)
        target.logit_(0.2)
    assert_close(out, torch.logit(x.double(), 0.2), dtype, equal_nan=True)
    assert_close(target, torch.logit(x.double(), 0.2), dtype, equal_nan=True)


def _ints(dtype=torch.int32):
    return torch.arange(-3, 3, device=DEVICE).to(dtype)


@pytest.mark.parametrize("case", [
    lambda: _ints().exp_(),  # a float result can't be written into an int tensor
    lambda: torch.sqrt(_ints(torch.float32), out=_ints()),
    lambda: _ints(torch.int64).logit_(0.1),
    lambda: torch.neg(_ints(torch.bool)),  # negation of bool
    lambda: _ints(torch.bool).neg_(),
    lambda: torch.abs(_ints(torch.bool)),
    lambda: torch.floor(_ints(torch.bool)),
    lambda: torch.frac(_ints()),  # frac takes floating types only
    lambda: torch.round(_ints(), decimals=2),  # round.decimals too, even with 0
    lambda: torch.round(_ints(), decimals=0),
    lambda: _ints(torch.float32)[:1].expand(4).sin_(),  # internal overlap
    lambda: torch.exp(_ints(torch.float32), out=_ints(torch.float32)[:1].expand(6)),
], ids=["inplace-float-into-int", "out-int", "logit-inplace-int", "neg-bool", "neg-inplace-bool",
        "abs-bool", "floor-bool", "frac-int", "round-decimals-int", "round-decimals-0-int", "overlap",
        "out-overlap"])
def test_errors_match_torch(case):
    assert_same_error(case)


def test_integers_round_to_themselves():
    x = torch.tensor([-(2**62) - 1, -7, 0, 5, 2**62 + 1], dtype=torch.int64, device=DEVICE)
    for name in ("floor", "ceil", "round", "trunc", "neg", "abs", "sign"):
        check(name, x)
    check("neg", torch.tensor([0, 1, 255], dtype=torch.uint8, device=DEVICE))  # wraps
    check("abs", torch.tensor([-128, -1, 127], dtype=torch.int8, device=DEVICE))


def test_complex_and_unsupported_go_native():
    z = torch.randn(8, dtype=torch.complex64, device=DEVICE)
    with flag_gems.use_gems():
        results = [torch.sgn(z), torch.exp(z), torch.abs(z), torch.sqrt(z), torch.square(z)]
    expected = [torch.sgn(z), torch.exp(z), torch.abs(z), torch.sqrt(z), torch.square(z)]
    for mine, theirs in zip(results, expected):
        torch.testing.assert_close(mine, theirs)


def test_square_is_composite_and_not_ours():
    names = {row.name.split(".")[0] for row in flag_gems.ops.collect_rows()}
    assert "square" not in names and "square_" not in names
    x = uniform(SHAPE, torch.float32, "neg")
    with flag_gems.use_gems():
        result = torch.square(x)
    assert_equal(result, x * x)


def test_explicit_calls_need_no_enable():
    x = uniform(SHAPE, torch.float32, "log")
    assert_close(flag_gems.ops.log(x), torch.log(x.double()), torch.float32)
    assert_equal(flag_gems.ops.round(x * 100, decimals=-1), torch.round(x * 100, decimals=-1))
    assert_close(flag_gems.ops.logit(x / 101, 0.1), torch.logit((x / 101).double(), 0.1), torch.float32)
    assert flag_gems.ops.exp(_ints()).dtype == torch.float32
    z = torch.randn(4, dtype=torch.complex64, device=DEVICE)
    torch.testing.assert_close(flag_gems.ops.sgn(z), torch.sgn(z))  # unsupported: native


@pytest.mark.parametrize("name", ["exp", "sigmoid", "tanh", "log1p", "erf", "digamma"])
def test_autograd(name):
    fn = getattr(torch, name)
    x = uniform((4, 5), torch.float64, name).requires_grad_()
    (expected,) = torch.autograd.grad(fn(x).sum(), x)
    with flag_gems.use_gems():
        (ours,) = torch.autograd.grad(fn(x).sum(), x)
    assert_close(ours, expected, torch.float64)


def test_every_overload_runs_our_kernels(tmp_path):
    """No silent fallback: each functional, out= and in-place overload of the family is served by
    our kernels (most tests above would pass against native alone)."""
    from flag_gems.ops.pointwise import unary as unary_ops

    path = tmp_path / "unary.log"
    x = torch.rand((3, 4), device=DEVICE) * 0.5 + 0.25
    flag_gems.enable(record=True, path=str(path))
    try:
        for name in NAMES:
            fn = getattr(torch, name)
            fn(x)
            fn(x, out=torch.empty_like(x))
            getattr(x.clone(), name + "_")()
        torch.round(x, decimals=1)
        torch.round(x, decimals=1, out=torch.empty_like(x))
        x.clone().round_(decimals=-1)
    finally:
        flag_gems.disable()
    # (Once a kernel is compiled, built C++ wrappers may launch it: "c++" in the log.)
    served = {fields[0][len("aten::"):] for fields in (line.split("\t") for line in path.read_text().splitlines())
              if fields[1] in ("triton", "c++")}
    assert {row.name for row in unary_ops.ATEN} - served == set()
