"""sum against PyTorch computed in higher precision."""

import pytest
import torch

import flag_gems
from flag_gems.testing import assert_close, assert_equal

from conftest import assert_same_error, ALL_DTYPES, DEVICE, make, pick

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
