"""Scans (cumsum, cumprod, cummax, cummin, logcumsumexp) against PyTorch:
floating results against a float64 computation, the rest exactly against native."""

import pytest
import torch

import flag_gems
from flag_gems.ops.reduction import scan as scan_ops
from flag_gems.testing import assert_close, assert_equal

from conftest import assert_same_error, error_of, ALL_DTYPES, DEVICE, FLOAT_DTYPES, INT_DTYPES, ON_GPU, make, pick

NAN, INF = float("nan"), float("inf")
CUMULATIVE = [torch.cumsum, torch.cumprod]
WITH_INDEX = [torch.cummax, torch.cummin]
ALL_OPS = CUMULATIVE + WITH_INDEX + [torch.logcumsumexp]

SHAPES_AND_DIMS = [
    ((), 0), ((), -1),
    ((0,), 0), ((4, 0), 1), ((4, 0), 0), ((0, 3), 1),
    ((17,), 0), ((1, 9), 0), ((9, 1), 1),
    (pick((5, 37), (1024, 4097)), 1),
    (pick((5, 37), (1024, 4097)), 0),
    (pick((5, 37), (1024, 4097)), -1),
    (pick((3, 4, 5), (64, 128, 96)), 0),
    (pick((3, 4, 5), (64, 128, 96)), 1),  # a middle dim, read in place
    (pick((3, 4, 5), (64, 128, 96)), 2),
    (pick((2, 3, 2, 5), (8, 16, 32, 64)), 2),
]


def factors(shape, dtype):
    """Random signs times powers of two: their products are exact in any float dtype, so
    long cumprods compare within one rounding. Mostly +-1 (one in 32 is +-2, one in 32
    +-0.5), so the product of any run of them stays far inside fp32's range: a GPU scan
    multiplies runs in a tree order, and a run of thousands of uniformly drawn factors
    overflows (or underflows) fp32 even where the running product itself does not."""
    draw = torch.randint(0, 32, shape, device=DEVICE)
    exponent = (draw == 0).float() - (draw == 1).float()
    sign = torch.randint(0, 2, shape, device=DEVICE) * 2.0 - 1.0
    return (sign * torch.exp2(exponent)).to(dtype)


def _scanned_length(x, dim):
    return x.shape[dim] if x.dim() else 1


def _fresh(out):
    """Another destination like ``out`` for the native call."""
    return tuple(t.clone() for t in out) if isinstance(out, tuple) else out.clone()


def check(op, x, dim, **kwargs):
    """``op(x, dim, **kwargs)`` through flag_gems matches native: same dtype and
    shape; floats within the dtype's resolution of a float64 computation."""
    native_kwargs = dict(kwargs, out=_fresh(kwargs["out"])) if "out" in kwargs else kwargs
    native = op(x, dim, **native_kwargs)
    with flag_gems.use_gems():
        ours = op(x, dim, **kwargs)
    if "out" in kwargs:
        assert all(a is b for a, b in zip(ours, kwargs["out"])) if op in WITH_INDEX else ours is kwargs["out"]
    if op in WITH_INDEX:
        for mine, theirs in zip(ours, native):
            assert mine.shape == theirs.shape and mine.dtype == theirs.dtype
            assert_equal(mine, theirs, equal_nan=True)
        return ours
    assert ours.shape == native.shape and ours.dtype == native.dtype
    if not native.dtype.is_floating_point:
        assert_equal(ours, native)
        return ours
    # PyTorch casts the input to the result dtype before accumulating.
    reference = op(x.to(native.dtype).double(), dim)
    assert_close(ours, reference, native.dtype, reduce_dim=_scanned_length(x, dim), equal_nan=True)
    return ours


@pytest.mark.parametrize("shape, dim", SHAPES_AND_DIMS, ids=str)
@pytest.mark.parametrize("op", ALL_OPS, ids=lambda op: op.__name__)
def test_scan_shapes_and_dims(op, shape, dim):
    check(op, (factors if op is torch.cumprod else make)(shape, torch.float32), dim)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("op", ALL_OPS, ids=lambda op: op.__name__)
def test_scan_every_dtype(op, dtype):
    if op is torch.logcumsumexp and dtype not in FLOAT_DTYPES:
        assert_same_error(lambda: op(make((3, 4), dtype), 1))  # native raises: not implemented
        return
    x = make(pick((4, 23), (512, 1000)), dtype)
    if op is torch.cumprod and dtype.is_floating_point:
        x = factors(x.shape, dtype)
    check(op, x, 1)
    check(op, x, 0)


def test_cumulative_dtype_argument():
    check(torch.cumsum, make(pick((4, 40), (256, 1000)), torch.float16), 1, dtype=torch.float32)
    check(torch.cumsum, make(pick((4, 40), (256, 1000)), torch.int8), 0, dtype=torch.float64)
    check(torch.cumsum, make(pick((4, 40), (256, 1000)), torch.bool), 1, dtype=torch.int32)
    check(torch.cumsum, make(pick((4, 40), (256, 1000)), torch.float32), 1, dtype=torch.float64)
    check(torch.cumsum, make(pick((4, 40), (256, 1000)), torch.float32) * 5, 1, dtype=torch.int32)
    check(torch.cumprod, make(pick((4, 12), (256, 40)), torch.int16, -3, 4), 1, dtype=torch.int64)
    check(torch.cumprod, make(pick((4, 12), (256, 40)), torch.float16) * 0.1 + 1, 1, dtype=torch.float32)
    check(torch.cumsum, make(pick((4, 40), (256, 1000)), torch.float32), 1, dtype=torch.float16)


def test_cumulative_integers_wrap_like_torch():
    x = torch.full((pick(64, 70000),), 2**62, dtype=torch.int64, device=DEVICE)
    check(torch.cumsum, x, 0)
    check(torch.cumprod, torch.full((40,), 3, dtype=torch.int64, device=DEVICE), 0)
    small = torch.full((pick(300, 70000),), 100, dtype=torch.int8, device=DEVICE)
    out = torch.empty_like(small)
    check(torch.cumsum, small, 0, out=out)  # int8 result: wraps as native does
    check(torch.cumsum, small, 0)  # int64 result


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda op: op.__name__)
def test_scan_non_contiguous(op):
    base = make(pick((12, 30), (1024, 2048)), torch.float32)
    check(op, base.t(), 0)
    check(op, base.t(), 1)
    check(op, base[:, ::3], 1)
    check(op, base[::2, 1:], 0)
    check(op, make(pick((5,), (1000,)), torch.float32).expand(7, -1), 0)  # zero stride
    check(op, make(pick((5,), (1000,)), torch.float32).expand(7, -1), 1)
    x = make(pick((4, 5, 6), (32, 64, 128)), torch.float32).permute(2, 0, 1)
    check(op, x, 2)  # dims before it do not merge: one copy, same answer
    check(op, x, 1)
    check(op, x, 0)


@pytest.mark.parametrize("op", [torch.cumsum, torch.cummax], ids=lambda op: op.__name__)
def test_planned_layouts_are_not_mixed_up(op):
    """Each call layout gets its own launch plan: alternating layouts of one shape (in place,
    off 16-byte alignment, transposed, copied), dtypes and out= layouts each get their own
    right answer, on first and repeated calls."""
    rows, cols = pick((6, 40), (512, 4096))
    flat = make((rows * cols + 1,), torch.float32)
    inputs = [flat[:-1].view(rows, cols), flat[1:].view(rows, cols), flat[:-1].view(cols, rows).t(),
              flat[:-1].view(rows, cols)[:, ::2]]
    cube = flat[:-1].view(rows, 2, cols // 2)
    for _ in range(2):
        check(op, cube.permute(2, 0, 1), 2)  # dims before it do not merge: copied
        check(op, cube.permute(1, 2, 0), 2)
        for x in inputs:
            for dim in (1, 0):
                check(op, x, dim)
                check(op, x.to(torch.float16), dim)
                if op is torch.cumsum:
                    check(op, x, dim, out=torch.empty(x.shape[::-1], device=DEVICE).t())  # strided out=


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda op: op.__name__)
def test_scan_long_rows(op, monkeypatch):
    if not ON_GPU:
        # Tiny tiles make short rows long: few lanes, many tiles, split into chunks.
        monkeypatch.setattr(scan_ops, "scan_config", lambda *args: (2, 16, 4))
        monkeypatch.setattr(scan_ops, "_plans", {})  # plans made before hold the usual tiles
    check(op, make(pick((300,), (1 << 20,)), torch.float32), 0)  # one lane: chunked
    check(op, make(pick((2, 150), (3, 1 << 19)), torch.float32), 1)
    check(op, make(pick((150, 3), (1 << 19, 3)), torch.float32), 0)  # chunked, lanes contiguous
    check(op, make(pick((9, 70), (4096, 8192)), torch.float32), 1)  # many lanes: carried across tiles
    check(op, make(pick((70, 9), (8192, 4096)), torch.float32), 0)


def test_cumsum_long_stable():
    n = pick(1 << 14, 1 << 24)
    x = torch.rand(n, device=DEVICE) + 1.0
    ours = check(torch.cumsum, x, 0)
    assert abs(ours[-1].item() - x.double().sum().item()) / n < 1e-5


def test_cumulative_out_forms():
    x = make(pick((6, 40), (256, 1000)), torch.float32)
    for op in CUMULATIVE:
        check(op, x, 1, out=torch.empty_like(x))
        check(op, x, 0, out=torch.empty_like(x).t().contiguous().t())  # strided out, written in place
        check(op, x, 1, out=torch.empty(x.shape[1], x.shape[0] * 2, device=DEVICE)[:, ::2].t())
        check(op, x, 1, out=torch.empty_like(x, dtype=torch.float64))  # out's dtype decides
        check(op, x, 1, out=torch.empty_like(x, dtype=torch.float64), dtype=torch.float64)
        check(op, make(x.shape, torch.int16), 1, out=torch.empty_like(x, dtype=torch.int32))
        resized = torch.empty(0, device=DEVICE)
        with flag_gems.use_gems():
            op(x, 1, out=resized)
        assert_close(resized, op(x.double(), 1), torch.float32, reduce_dim=x.shape[1])
        same = x.clone()
        with flag_gems.use_gems():
            op(same, 0, out=same)  # out is the input itself: scanned in place
        assert_close(same, op(x.double(), 0), torch.float32, reduce_dim=x.shape[0])
        native, ours = x.clone(), x.clone()
        op(native[:, 1:], 1, out=native[:, :-1])
        with flag_gems.use_gems():
            op(ours[:, 1:], 1, out=ours[:, :-1])  # partial overlap: native's answer
        assert_equal(ours, native)


@pytest.mark.parametrize("op", CUMULATIVE, ids=lambda op: op.__name__)
@pytest.mark.parametrize("shape, dtype, view, dim", [
    (pick((6, 40), (256, 1000)), torch.float32, lambda t: t, 1),
    (pick((6, 40), (256, 1000)), torch.float32, lambda t: t, 0),
    (pick((40, 6), (1000, 256)), torch.float32, lambda t: t.t(), 1),  # non-contiguous, in place
    (pick((6, 40), (256, 1000)), torch.float32, lambda t: t[:, ::2], 1),
    (pick((4, 5, 6), (32, 64, 128)), torch.float32, lambda t: t.permute(2, 0, 1), 2),  # through a copy
    (pick((6, 40), (256, 1000)), torch.int8, lambda t: t, 1),  # stays int8, wraps
    ((), torch.float32, lambda t: t, 0),
], ids=["last", "first", "transposed", "sliced", "permuted", "int8", "0d"])
def test_cumulative_in_place(op, shape, dtype, view, dim):
    method = {torch.cumsum: "cumsum_", torch.cumprod: "cumprod_"}[op]
    base = make(shape, dtype, -2, 3)
    native, ours = view(base.clone()), view(base.clone())
    source = ours.clone()
    assert getattr(native, method)(dim) is native
    with flag_gems.use_gems():
        assert getattr(ours, method)(dim) is ours
    if dtype.is_floating_point:
        assert_close(ours, op(source.double(), dim), dtype, reduce_dim=_scanned_length(source, dim))
    else:
        assert_equal(ours, native)


def test_cumulative_in_place_dtype_argument():
    x = make((5, 6), torch.float32)
    expected = torch.cumsum(x.double(), 1)
    with flag_gems.use_gems():
        x.cumsum_(1, dtype=torch.float32)
    assert_close(x, expected, torch.float32, reduce_dim=6)


def test_cumulative_special_values():
    x = torch.tensor([[1.0, NAN, 2.0, 1.0], [INF, 1.0, -INF, 2.0], [INF, 2.0, INF, 0.0], [-0.0, -0.0, 0.0, -0.0]],
                     device=DEVICE)
    for op in CUMULATIVE:
        check(op, x, 1)
        check(op, x, 0)
    zero_sign = torch.tensor([-0.0, -0.0], device=DEVICE)
    with flag_gems.use_gems():
        ours = torch.cumsum(zero_sign, 0)
    # -0.0 + -0.0 is -0.0, as CUDA's native gives (CPU's native starts from +0.0 and gives +0.0).
    assert torch.signbit(ours).all()


@pytest.mark.parametrize("op", WITH_INDEX, ids=lambda op: op.__name__)
def test_cummax_cummin_nan_and_ties(op):
    check(op, torch.tensor([1.0, 1.0], device=DEVICE), 0)  # ties: the later index
    check(op, torch.tensor([1.0, NAN, 3.0, NAN, 0.0, -INF], device=DEVICE), 0)  # the latest NaN
    check(op, torch.tensor([-INF, -INF, INF, INF, -0.0, 0.0, -0.0], device=DEVICE), 0)
    check(op, torch.tensor([NAN, NAN, 1.0], device=DEVICE), 0)
    check(op, torch.tensor([3, 3, 1, 3, 7, 7], dtype=torch.int32, device=DEVICE), 0)
    check(op, torch.tensor([True, False, True, True, False], device=DEVICE), 0)
    check(op, torch.tensor([-128, 127, -128, 127], dtype=torch.int8, device=DEVICE), 0)
    ints = torch.tensor([-(2**63), 2**63 - 1, -(2**63), 2**63 - 1], dtype=torch.int64, device=DEVICE)
    check(op, ints, 0)
    for dtype in FLOAT_DTYPES + INT_DTYPES:
        x = make(pick((6, 31), (256, 1000)), dtype, -3, 3)  # many ties
        if dtype.is_floating_point:
            x = x.round()
            x[:, 7] = NAN
            x[2, 3] = NAN
        check(op, x, 1)
        check(op, x, 0)


@pytest.mark.parametrize("op", WITH_INDEX, ids=lambda op: op.__name__)
def test_cummax_cummin_out_forms(op):
    x = make(pick((6, 20), (256, 1000)), torch.float32)
    values = torch.empty_like(x)
    indices = torch.empty_like(x, dtype=torch.int64)
    check(op, x, 1, out=(values, indices))
    assert_equal(values, op(x, 1).values)
    transposed = (torch.empty_like(x.t()).t(), torch.empty_like(x.t(), dtype=torch.int64).t())
    check(op, x, 1, out=transposed)
    assert_equal(transposed[1], op(x, 1).indices)
    mixed = (torch.empty_like(x), torch.empty_like(x.t(), dtype=torch.int64).t())  # outputs differ in layout
    check(op, x, 0, out=mixed)
    assert_equal(mixed[1], op(x, 0).indices)
    resized = (torch.empty(0, device=DEVICE), torch.empty(0, dtype=torch.int64, device=DEVICE))
    check(op, x, 0, out=resized)
    assert resized[0].shape == x.shape


def test_logcumsumexp_special_values():
    x = torch.tensor([[-INF, -INF, 1.0, INF, 2.0, NAN, 1.0], [INF, -INF, INF, 1.0, -INF, 0.0, 3.0],
                      [-INF, -INF, -INF, -INF, 0.0, -0.0, 88.0], [1e30, 1e30, -1e30, 0.0, 1.0, 1.0, 1.0]],
                     device=DEVICE)
    for dtype in FLOAT_DTYPES:
        check(torch.logcumsumexp, x.to(dtype), 1)
        check(torch.logcumsumexp, x.to(dtype), 0)
    big = make(pick((3, 50), (64, 8192)), torch.float32) * 100  # needs the running maximum
    check(torch.logcumsumexp, big, 1)


def test_logcumsumexp_out():
    x = make(pick((6, 20), (256, 1000)), torch.float32)
    check(torch.logcumsumexp, x, 1, out=torch.empty_like(x))
    check(torch.logcumsumexp, x, 0, out=torch.empty_like(x.t()).t())
    check(torch.logcumsumexp, x, 0, out=torch.empty(0, device=DEVICE))


def test_explicit_calls():
    x = make((4, 9), torch.float32)
    assert_close(flag_gems.ops.cumsum(x, 1), torch.cumsum(x.double(), 1), torch.float32, reduce_dim=9)
    assert_close(flag_gems.ops.logcumsumexp(x, 0), torch.logcumsumexp(x.double(), 0), torch.float32, reduce_dim=4)
    values, indices = torch.empty_like(x), torch.empty_like(x, dtype=torch.int64)
    flag_gems.ops.cummax_helper(x, values, indices, 1)
    assert_equal(values, torch.cummax(x, 1).values)
    assert_equal(indices, torch.cummax(x, 1).indices)
    for explicit, op in [(flag_gems.ops.cummax, torch.cummax), (flag_gems.ops.cummin, torch.cummin)]:
        ours, native = explicit(x, 0), op(x, 0)
        assert type(ours) is type(native)
        assert_equal(ours.values, native.values)
        assert_equal(ours.indices, native.indices)
        assert_same_error(lambda: explicit(x, 2))  # native's error for a bad dim
        z = torch.randn(3, dtype=torch.complex64, device=DEVICE)
        assert error_of(lambda: explicit(z, 0)) is error_of(lambda: op(z, 0))


@pytest.mark.parametrize("case", [
    lambda: torch.cumsum(make((3, 4), torch.float32), 2),
    lambda: torch.cumsum(make((), torch.float32), 1),
    lambda: torch.cumprod(make((3, 4), torch.float32), -3),
    lambda: torch.cummax(make((3, 4), torch.float32), 2),
    lambda: torch.cummin(make((), torch.float32), 1),
    lambda: torch.logcumsumexp(make((3, 4), torch.float32), 5),
    lambda: torch.logcumsumexp(make((3, 4), torch.int32), 1),
    lambda: torch.cumsum(make((3, 4), torch.float32), 1, dtype=torch.float64, out=make((3, 4), torch.float32)),
    lambda: make((3, 4), torch.int8).cumsum_(1, dtype=torch.int64),
    lambda: make((3, 4), torch.bool).cumsum_(1),
    lambda: make((3,), torch.float32).expand(4, 3).cumsum_(0),
    lambda: torch.cummax(make((3, 4), torch.float32), 1, out=(make((3, 4), torch.float64),
                                                               make((3, 4), torch.int64))),
    lambda: torch.logcumsumexp(make((3, 4), torch.float32), 1, out=make((3, 4), torch.float64)),
], ids=["dim-range", "0d-dim", "negative-dim", "cummax-dim", "cummin-0d-dim", "logcumsumexp-dim",
        "logcumsumexp-int", "out-dtype-mismatch", "inplace-dtype", "inplace-bool", "inplace-overlap",
        "cummax-out-dtype", "logcumsumexp-out-dtype"])
def test_scan_errors_match_torch(case):
    assert_same_error(case)


def test_scan_complex_falls_back():
    z = torch.randn(5, dtype=torch.complex64, device=DEVICE)
    with flag_gems.use_gems():
        torch.testing.assert_close(torch.cumsum(z, 0), z.cumsum(0))
        torch.testing.assert_close(torch.logcumsumexp(z, 0), z.logcumsumexp(0))


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda op: op.__name__)
def test_scan_gradcheck(op):
    x = torch.rand(3, 4, dtype=torch.float64, device=DEVICE).add_(0.5).requires_grad_()

    def function(t):
        result = op(t, 1)
        return result.values if op in WITH_INDEX else result

    with flag_gems.use_gems():
        assert torch.autograd.gradcheck(function, (x,))
        assert torch.autograd.gradcheck(lambda t: op(t, 0).values if op in WITH_INDEX else op(t, 0), (x,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("op", ALL_OPS, ids=lambda op: op.__name__)
def test_scan_gradients_match_native(op, dtype):
    x = (torch.rand(pick((4, 12), (64, 200)), device=DEVICE) + 0.5).to(dtype)
    # Weights of -1, 0, 1: every partial sum of them is exact in any dtype, so the cumsum,
    # cummax and cummin gradients (sums of weights) do not depend on the order or the
    # precision of the additions (native CUDA scatter_add adds halves in a random order).
    weights = torch.randint(-1, 2, x.shape, device=DEVICE).to(dtype)

    def grad(x, weights):
        leaf = x.clone().requires_grad_()
        result = op(leaf, 1)
        result = result.values if op in WITH_INDEX else result
        (gradient,) = torch.autograd.grad((result * weights).sum(), leaf)
        return gradient

    native = grad(x, weights)
    with flag_gems.use_gems():
        ours = grad(x, weights)
    assert ours.dtype == native.dtype
    try:
        torch.testing.assert_close(ours.float(), native.float(), rtol=2e-2 if dtype != torch.float32 else 1e-4,
                                   atol=2e-2 if dtype != torch.float32 else 1e-4)
    except AssertionError:
        if dtype == torch.float32:
            raise
        # Native CUDA scans halves rounding every partial result to the half type (cumprod's and
        # logcumsumexp's gradients scan real values); ours accumulates in fp32: then ours must be at
        # least as close to the gradient computed in float64.
        exact = grad(x.double(), weights.double())
        our_error = (ours.double() - exact).abs().max()
        native_error = (native.double() - exact).abs().max()
        assert our_error <= native_error * 1.01 + 1e-6, (our_error, native_error)
