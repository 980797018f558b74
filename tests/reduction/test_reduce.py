"""The simple folds (sum, prod, mean, all/any, count_nonzero) against PyTorch computed in
higher precision: sum first, then the others through the shared checker; last, the
tests that span the family's modules (out=, errors, dtype=, autograd, plans)."""

import math

import pytest
import torch

import flag_gems
from flag_gems.testing import assert_close, assert_equal

from conftest import assert_same_error, ALL_DTYPES, FLOAT_DTYPES, DEVICE, make, pick
from reduction_checks import check_op, one, op_table_tests

# PyTorch's own warning for var/std with no degrees of freedom (those calls go native).
pytestmark = pytest.mark.filterwarnings("ignore:.*degrees of freedom is <= 0")

SHAPES_AND_DIMS = [
    ((), None), ((), 0), ((), [-1]),
    ((0,), None), ((4, 0), 1), ((4, 0), 0), ((0, 3), [0, 1]),
    ((17,), 0),
    (pick((13, 37), (1024, 4097)), 1),
    (pick((13, 37), (1024, 4097)), 0),
    (pick((13, 37), (1024, 4097)), -1),
    (pick((13, 37), (1024, 4097)), None),
    (pick((3, 4, 5), (64, 128, 96)), 1),  # a middle dim, read in place
    (pick((3, 4, 5), (64, 128, 96)), [0, 2]),  # non-adjacent dims
    (pick((3, 4, 5), (64, 128, 96)), [1, 2]),
    (pick((2, 3, 4, 5, 6), (8, 16, 32, 4, 64)), [1, 3]),
    (pick((20011,), (1 << 24,)), 0),  # long: split across programs
    (pick((3, 9001), (4, 1 << 22)), 1),
    (pick((9001, 3), (1 << 20, 8)), 0),
]


def _reference_dtype(dtype):
    return torch.float64 if dtype.is_floating_point else dtype


def check(x, dim=None, keepdim=False, **kwargs):
    if dim is None:
        native = torch.sum(x, **kwargs)
        with flag_gems.use_gems():
            ours = torch.sum(x, **kwargs)
        reference = torch.sum(x.to(_reference_dtype(x.dtype)), **kwargs) if "dtype" not in kwargs else native
    else:
        native = torch.sum(x, dim, keepdim=keepdim, **kwargs)
        with flag_gems.use_gems():
            ours = torch.sum(x, dim, keepdim=keepdim, **kwargs)
        reference = native if "dtype" in kwargs else torch.sum(
            x.to(_reference_dtype(x.dtype)), dim, keepdim=keepdim)
    assert ours.shape == native.shape and ours.dtype == native.dtype
    if native.dtype.is_floating_point:
        reduced = max(1, x.numel() // max(1, native.numel()))
        assert_close(ours, reference, native.dtype, reduce_dim=reduced, equal_nan=True)
    else:
        assert_equal(ours, native)
    return ours


@pytest.mark.parametrize("shape, dim", SHAPES_AND_DIMS, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int32])
def test_sum_shapes_and_dims(shape, dim, dtype):
    x = make(shape, dtype)
    check(x, dim)
    if dim is not None:
        check(x, dim, keepdim=True)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_sum_every_dtype(dtype):
    x = make(pick((5, 33), (512, 1000)), dtype)
    check(x)
    check(x, 1)
    check(x, 0, keepdim=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64])
def test_sum_dtype_argument(dtype):
    check(make(pick((6, 40), (256, 1000)), torch.float16), 1, dtype=torch.float32)
    check(make(pick((6, 40), (256, 1000)), torch.int8), 0, dtype=dtype)
    check(make(pick((6, 40), (256, 1000)), torch.bool), dtype=dtype)
    check(make(pick((6, 40), (256, 1000)), torch.float32), 1, dtype=torch.float16)


def test_sum_non_contiguous():
    base = make(pick((12, 30), (1024, 2048)), torch.float32)
    check(base.t(), 0)
    check(base.t(), 1)
    check(base[:, ::3], 1)
    check(base[::2], None)
    check(make(pick((5,), (1000,)), torch.float32).expand(7, -1), 0)  # zero stride
    check(torch.empty(4, 0, 3, device=DEVICE).permute(2, 0, 1), [0, 2])  # empty, any strides
    x = make(pick((4, 5, 6), (32, 64, 128)), torch.float32).permute(2, 0, 1)
    check(x, [0, 2])  # dims that do not merge: one copy, same answer
    check(x, 1)


def test_sum_special_values():
    x = torch.tensor([[1.0, float("nan"), 2.0], [float("inf"), 1.0, 2.0], [float("inf"), float("-inf"), 0.0]],
                     device=DEVICE)
    check(x, 1)
    check(x, 0)
    check(x)


def test_sum_integers_overflow_like_torch():
    x = torch.full((pick(300, 70000),), 2**62, dtype=torch.int64, device=DEVICE)
    check(x)
    check(torch.full((pick(300, 70000),), 100, dtype=torch.int8, device=DEVICE))


def test_sum_large_stable():
    n = pick(1 << 16, 1 << 24)
    x = torch.rand(n, device=DEVICE) + 1.0
    ours = check(x)
    assert abs(ours.item() - x.double().sum().item()) / n < 1e-5


def test_sum_out_forms():
    x = make(pick((6, 40), (256, 1000)), torch.float32)
    out = torch.empty(x.shape[0], device=DEVICE)
    with flag_gems.use_gems():
        returned = torch.sum(x, 1, out=out)
    assert returned is out
    assert_close(out, x.double().sum(1), torch.float32, reduce_dim=x.shape[1])
    strided = torch.empty(x.shape[0] * 2, device=DEVICE)[::2]
    with flag_gems.use_gems():
        torch.sum(x, 1, out=strided)
    assert_close(strided, x.double().sum(1), torch.float32, reduce_dim=x.shape[1])
    wide = torch.empty(x.shape[0], dtype=torch.float64, device=DEVICE)  # out's dtype decides
    with flag_gems.use_gems():
        torch.sum(x, 1, out=wide)
    assert_close(wide, torch.sum(x, 1, out=torch.empty_like(wide)), torch.float64, reduce_dim=x.shape[1])
    resized = torch.empty(0, device=DEVICE)
    with flag_gems.use_gems():
        torch.sum(x, 1, out=resized)
    assert resized.shape == (x.shape[0],)


@pytest.mark.parametrize("case", [
    lambda: torch.sum(make((3, 4), torch.float32), 2),
    lambda: torch.sum(make((3, 4), torch.float32), [0, 0]),
    lambda: torch.sum(make((3, 4), torch.float32), 1, out=make((3,), torch.float32), dtype=torch.float64),
], ids=["dim-range", "repeated-dim", "out-dtype-mismatch"])
def test_sum_errors_match_torch(case):
    assert_same_error(case)


def test_sum_autograd():
    x = make((4, 6), torch.float64).requires_grad_()
    with flag_gems.use_gems():
        (grad,) = torch.autograd.grad((torch.sum(x, 1) * torch.arange(4.0, dtype=torch.float64,
                                                                        device=DEVICE)).sum(), x)
    assert_equal(grad, torch.arange(4.0, dtype=torch.float64, device=DEVICE)[:, None].expand(4, 6))


def test_sum_complex_falls_back():
    z = torch.randn(5, dtype=torch.complex64, device=DEVICE)
    with flag_gems.use_gems():
        torch.testing.assert_close(torch.sum(z), z.sum())


# The other folds: the shared checker over an op table.

# name -> (call(x, dim, keepdim), dtypes torch supports for it)
OPS = {
    "mean": (lambda x, d, k: torch.mean(x, d, keepdim=k) if d is not None else torch.mean(x), FLOAT_DTYPES),
    "prod": (lambda x, d, k: torch.prod(x, one(d), keepdim=k) if d is not None else torch.prod(x), ALL_DTYPES),
    "all": (lambda x, d, k: torch.all(x, d, keepdim=k) if d is not None else torch.all(x), ALL_DTYPES),
    "any": (lambda x, d, k: torch.any(x, d, keepdim=k) if d is not None else torch.any(x), ALL_DTYPES),
    "count_nonzero": (lambda x, d, k: torch.count_nonzero(x, d), ALL_DTYPES),
}

test_op_shapes_and_dims, test_op_dtypes, test_op_strided_inputs, test_op_special_values = op_table_tests(OPS)


# Across the family: every module's reductions at once.

def test_integer_reductions_exact():
    big = torch.full((pick(300, 70000),), 2**40 + 3, dtype=torch.int64, device=DEVICE)
    for call in (torch.sum, torch.prod, torch.amax, torch.max, torch.argmin, torch.count_nonzero):
        check_op(call, big)
    small = torch.randint(-3, 4, (pick(7, 70), pick(33, 3000)), dtype=torch.int8, device=DEVICE)
    check_op(torch.prod, small, 1)  # int64 products of int8
    check_op(torch.prod, small, 1, dtype=torch.int8)  # wraps like torch
    check_op(torch.mean, small, 1, dtype=torch.float64)


def test_dtype_arguments():
    x = make(pick((6, 40), (256, 1000)), torch.float16)
    check_op(torch.mean, x, 1, dtype=torch.float32)
    check_op(torch.mean, x, dtype=torch.float64)
    check_op(torch.prod, x, 0, dtype=torch.float64)
    check_op(torch.prod, make((6, 5), torch.bool), dtype=torch.int32)
    check_op(torch.linalg.vector_norm, x, 2, 1, dtype=torch.float64)
    check_op(torch.norm, x, 3, [0], False, dtype=torch.float32)
    check_op(torch.norm, x, 0, dtype=torch.float64)
    # dtype= a half type: squares and powers still in fp32; a narrowing dtype= raises.
    for half in (torch.float16, torch.bfloat16):
        check_op(torch.linalg.vector_norm, x.to(half), 2, 1, dtype=half)
        check_op(torch.norm, x.to(half) * 3, 3.5, dtype=half)
    for wide, narrow in ((torch.float32, torch.float16), (torch.float16, torch.bfloat16),
                         (torch.float64, torch.float32)):
        check_op(torch.linalg.vector_norm, x.to(wide), 2, 1, dtype=narrow)
        check_op(torch.norm, x.to(wide), 3, [0], dtype=narrow)

def test_large_reductions():
    n = pick(1 << 16, 1 << 24)
    x = torch.rand(n, device=DEVICE) + 1.0
    for fn in (torch.mean, torch.amax, torch.argmax, torch.linalg.vector_norm):
        check_op(fn, x)
    row = make((1, pick(20011, 1 << 20)), torch.bfloat16)
    for fn in (torch.amax, torch.argmin, torch.mean, torch.linalg.vector_norm, torch.logsumexp):
        check_op(fn, row, 1)


def test_out_forms():
    x = make(pick((6, 40), (256, 1000)), torch.float32)
    cases = [
        (lambda out: torch.mean(x, 1, out=out), torch.float32),
        (lambda out: torch.prod(x, 1, out=out), torch.float32),
        (lambda out: torch.amax(x, 1, out=out), torch.float32),
        (lambda out: torch.argmax(x, 1, out=out), torch.int64),
        (lambda out: torch.var(x, 1, out=out), torch.float32),
        (lambda out: torch.linalg.vector_norm(x, 2, 1, out=out), torch.float32),
        (lambda out: torch.norm(x, 2, [1], out=out), torch.float32),
        (lambda out: torch.all(x, 1, out=out), torch.bool),
        (lambda out: torch.any(x, [1], out=out), torch.bool),
        (lambda out: torch.ops.aten.count_nonzero.out(x, 1, out=out), torch.int64),
        (lambda out: torch.logsumexp(x, 1, out=out), torch.float32),
    ]
    for call, dtype in cases:
        native = call(torch.empty(x.shape[0], dtype=dtype, device=DEVICE))
        for out in (torch.empty(x.shape[0], dtype=dtype, device=DEVICE),
                    torch.empty(2 * x.shape[0], dtype=dtype, device=DEVICE)[::2],  # strided out
                    torch.empty(0, dtype=dtype, device=DEVICE)):  # resized: native
            with flag_gems.use_gems():
                returned = call(out)
            assert returned is out and out.shape == native.shape
            assert_close(out, native, dtype, reduce_dim=x.shape[1], equal_nan=True)
    values, indices = torch.empty(6, device=DEVICE), torch.empty(6, dtype=torch.long, device=DEVICE)
    with flag_gems.use_gems():
        torch.max(x, 1, out=(values, indices))
    assert_equal(indices, torch.argmax(x, 1))
    low, high = torch.empty(6, device=DEVICE), torch.empty(6, device=DEVICE)
    with flag_gems.use_gems():
        torch.aminmax(x, dim=1, out=(low, high))
        var, mean = torch.var_mean(x, 1)
    assert_equal(low, x.amin(1))
    assert_equal(high, x.amax(1))
    assert_close(var, x.double().var(1), torch.float32, reduce_dim=x.shape[1])
    assert_close(mean, x.double().mean(1), torch.float32, reduce_dim=x.shape[1])
    total = torch.empty((), device=DEVICE)
    with flag_gems.use_gems():
        torch.max(x, out=total)
    assert_equal(total, x.max())


@pytest.mark.parametrize("case", [
    lambda: torch.amax(torch.empty(3, 0, device=DEVICE), 1),
    lambda: torch.argmax(torch.empty(0, device=DEVICE)),
    lambda: torch.max(torch.empty(0, 4, device=DEVICE), 0),
    lambda: torch.aminmax(torch.empty(0, device=DEVICE)),
    lambda: torch.argmax(make((3, 4), torch.bool), 1),
    lambda: torch.var(make((3, 4), torch.int32), 1),
    lambda: torch.linalg.vector_norm(make((3, 4), torch.int32)),
    lambda: torch.linalg.vector_norm(torch.empty(0, device=DEVICE), math.inf),
    lambda: torch.mean(make((3, 4), torch.int64)),
    lambda: torch.amax(make((3, 4), torch.float32), [0, 0]),
    lambda: torch.argmin(make((3, 4), torch.float32), 2),
    lambda: torch.logsumexp(make((3, 4), torch.float32), []),
    lambda: torch.mean(make((3, 4), torch.float32), 1, out=make((3,), torch.float64)),
    lambda: torch.amax(make((3, 4), torch.float32), 1, out=make((3,), torch.int32)),
], ids=["amax-empty", "argmax-empty", "max-dim-empty", "aminmax-empty", "argmax-bool", "var-int", "norm-int",
        "inf-norm-empty", "mean-int", "repeated-dim", "dim-range", "logsumexp-no-dims", "out-dtype", "out-int"])
def test_errors_match_torch(case):
    assert_same_error(case)

def test_backward_through_reductions():
    x = make((4, 6), torch.float64).requires_grad_()
    with flag_gems.use_gems():
        assert torch.autograd.gradcheck(lambda t: torch.var(t, 1), (x,))
        assert torch.autograd.gradcheck(lambda t: torch.linalg.vector_norm(t, 3, 0), (x,))
        assert torch.autograd.gradcheck(lambda t: torch.logsumexp(t, 1), (x,))
    h = make(pick((8, 64), (512, 4096)), torch.bfloat16).requires_grad_()
    for fn in (lambda t: torch.std(t, 1), lambda t: torch.linalg.vector_norm(t, dim=1),
               lambda t: torch.amax(t, 1)):
        (native,) = torch.autograd.grad(fn(h).float().sum(), h)
        with flag_gems.use_gems():
            (ours,) = torch.autograd.grad(fn(h).float().sum(), h)
        assert_close(ours, native.float(), torch.bfloat16, reduce_dim=h.shape[1])


def test_planned_layouts_are_not_mixed_up():
    """Each call layout (shape, strides, dtype, alignment) gets its own plan: calls that
    alternate layouts of one shape, including views off 16-byte alignment and split
    reductions, each get their own right answer, on first and repeated calls."""
    rows, cols = pick((6, 40), (512, 4096))
    flat = make((rows * cols + 1,), torch.float32)
    matrices = [flat[:-1].view(rows, cols), flat[1:].view(rows, cols), flat[:-1].view(cols, rows).t(),
                flat[:-1].view(rows, cols).double(), flat[:-1].view(rows, cols).t().contiguous().t()]
    long = make((pick(20011, 1 << 22) + 1,), torch.float32)
    for _ in range(2):
        for x in matrices:
            for dim in (0, 1, None):
                check(x, dim)
                check(x, dim, keepdim=True)
        for x in (long[:-1], long[1:]):
            check(x)
            check(x, 0, keepdim=True)


def test_forgotten_tuning_choices_drop_reduction_plans():
    from flag_gems.codegen.reduction import ROWS_TUNER
    from flag_gems.ops.reduction.reduce import SUM

    with flag_gems.use_gems():
        make((4, 8), torch.float32).sum(1)
    assert SUM._plans
    flag_gems.tuning.forget_choices()
    assert not SUM._plans and not ROWS_TUNER._memo
