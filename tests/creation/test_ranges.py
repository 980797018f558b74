"""arange, linspace and logspace, every overload with its out= form, against native."""

import pytest
import torch

from flag_gems.ops.creation import ranges

from conftest import DEVICE, FLOAT_DTYPES, INT_DTYPES
from creation_cases import assert_rows_reach_backend, check, check_error, exact_on_gpu, ulps

RANGE_DTYPES = FLOAT_DTYPES + INT_DTYPES  # bool ranges raise in PyTorch


def test_rows_reach_the_backend():
    assert_rows_reach_backend(ranges)


def test_arange_overloads_infer_the_dtype():
    check(lambda: torch.arange(7, device=DEVICE))
    check(lambda: torch.arange(-3, 4, device=DEVICE))
    check(lambda: torch.arange(10, -2, -3, device=DEVICE))
    check(lambda: torch.arange(True, 5, device=DEVICE))  # bool bounds count as integers
    check(lambda: torch.arange(2.5, device=DEVICE))
    check(lambda: torch.arange(1, 4, 0.5, device=DEVICE))
    check(lambda: torch.arange(0, device=DEVICE))
    check(lambda: torch.arange(3, 3, device=DEVICE))


@pytest.mark.parametrize("dtype", RANGE_DTYPES, ids=str)
def test_arange_every_dtype(dtype):
    check(lambda: torch.arange(0, 40, 3, dtype=dtype, device=DEVICE))
    check(lambda: torch.arange(30, -9, -2.5, dtype=dtype, device=DEVICE))  # integers truncate the bounds
    check(lambda: torch.arange(-0.9, 2.1, 2, dtype=dtype, device=DEVICE))
    check(lambda: torch.arange(0.0, -8.000001, -4.0, dtype=dtype, device=DEVICE))
    if not dtype.is_floating_point:
        check(lambda: torch.arange(120, 140, dtype=dtype, device=DEVICE))  # wraps in 8 bits
    else:
        # an inexact step: PyTorch's vectorized CPU loop rounds some values twice
        check(lambda: torch.arange(-1.1, 3.7, 0.1, dtype=dtype, device=DEVICE), atol=exact_on_gpu(ulps(dtype, 3.7)))


def test_arange_length_is_torchs():
    for start, end, step in [(0, 1, 0.1), (1, 2, 1 / 3), (0, 1e-3, 1e-4), (2**40, 2**40 + 5, 1), (-1, -0.1, 0.3)]:
        check(lambda: torch.arange(start, end, step, dtype=torch.float64, device=DEVICE), atol=exact_on_gpu(1e-15))
    check(lambda: torch.arange(2**62, 2**62 + 3, device=DEVICE))
    # a step that truncates to 0: zeros (an int64 result raises, below)
    check(lambda: torch.arange(0, 5, 0.5, dtype=torch.int32, device=DEVICE), ours=False)


def test_arange_out_forms():
    check(lambda: torch.arange(6, out=torch.empty(6, device=DEVICE)))
    check(lambda: torch.arange(1, 13, 2, out=torch.empty(2, 3, dtype=torch.int16, device=DEVICE)))  # same count
    check(lambda: torch.arange(0, 3, 0.5, out=torch.empty(12, device=DEVICE)[::2]))
    check(lambda: torch.arange(6, out=torch.empty(3, 2, dtype=torch.int64, device=DEVICE).t()))  # through a copy
    check(lambda: torch.arange(4, out=torch.empty(0, device=DEVICE)), ours=False)  # native resizes


def test_arange_bad_input_raises_as_torch():
    check_error(lambda: torch.arange(0, 5, 0, device=DEVICE))
    check_error(lambda: torch.arange(0, 5, 0.5, dtype=torch.int64, device=DEVICE))
    check_error(lambda: torch.arange(5, 0, 1, device=DEVICE))
    check_error(lambda: torch.arange(0, float("inf"), device=DEVICE))
    check_error(lambda: torch.arange(0, float("nan"), device=DEVICE))
    check_error(lambda: torch.arange(5, dtype=torch.bool, device=DEVICE))
    check_error(lambda: torch.arange(1e300, 1e301, 1e299, dtype=torch.float16, device=DEVICE))


@pytest.mark.parametrize("dtype", RANGE_DTYPES, ids=str)
def test_linspace_every_dtype(dtype):
    low = 3.3 if dtype == torch.uint8 else -3.3
    for steps in (0, 1, 2, 5, 8, 37):
        check(lambda: torch.linspace(low, 50.7, steps, dtype=dtype, device=DEVICE))
        check(lambda: torch.linspace(100, 2, steps, dtype=dtype, device=DEVICE))
    check(lambda: torch.linspace(0.5, 0.5, 4, dtype=dtype, device=DEVICE))


def test_linspace_default_dtype_and_integer_bounds():
    check(lambda: torch.linspace(0, 10, 7, device=DEVICE))
    check(lambda: torch.linspace(2.5, 5.9, 4, dtype=torch.int64, device=DEVICE))
    check(lambda: torch.linspace(-1e30, 1e30, 9, device=DEVICE))
    check(lambda: torch.linspace(2**60, 2**60 + 100, 11, dtype=torch.int64, device=DEVICE))
    check(lambda: torch.linspace(-3, 4, 5, dtype=torch.uint8, device=DEVICE))  # a negative integer wraps


def test_tensor_endpoints():
    start, end = torch.tensor(-2.25, device=DEVICE), torch.tensor(7, device=DEVICE)
    for fn in (torch.linspace, torch.logspace):
        check(lambda: fn(start, end, 9))
        check(lambda: fn(start, 4.5, 6, dtype=torch.float64))
        check(lambda: fn(1, end, 5, dtype=torch.int32))
        check(lambda: fn(torch.tensor(True, device=DEVICE), torch.tensor(3.5, dtype=torch.float16), 4))
        check(lambda: fn(start, end, 1))
        out = torch.empty(10, device=DEVICE)[::2]
        check(lambda: fn(start, end, 5, out=out))


@pytest.mark.parametrize("dtype", RANGE_DTYPES, ids=str)
def test_logspace_every_dtype(dtype):
    low, high = (0, 3) if not dtype.is_floating_point else (-2.2, 1.7)
    for steps in (0, 1, 2, 5, 16):
        check(lambda: torch.logspace(low, high, steps, dtype=dtype, device=DEVICE))
        check(lambda: torch.logspace(high, low, steps, base=2.5, dtype=dtype, device=DEVICE))
    check(lambda: torch.logspace(0, 4, 5, base=-2.0, dtype=dtype, device=DEVICE))


def test_spaced_out_forms():
    for out in (lambda: torch.empty(6, device=DEVICE), lambda: torch.empty(12, dtype=torch.int32, device=DEVICE)[::2],
                lambda: torch.empty(2, 3, dtype=torch.float64, device=DEVICE),
                lambda: torch.empty(3, 2, dtype=torch.float16, device=DEVICE).t()):
        check(lambda: torch.linspace(-1, 9.5, 6, out=out()))
        check(lambda: torch.logspace(-1, 1.5, 6, base=3, out=out()))
    check(lambda: torch.linspace(0, 1, 6, out=torch.empty(0, device=DEVICE)), ours=False)  # native resizes


def test_spaced_bad_input_raises_as_torch():
    for fn in (torch.linspace, torch.logspace):
        check_error(lambda: fn(0, 1, -1, device=DEVICE))
        check_error(lambda: fn(0, 1, 3, dtype=torch.bool, device=DEVICE))
        check_error(lambda: fn(torch.zeros(2, device=DEVICE), 1, 3))
        check_error(lambda: fn(0, torch.ones(1, 1, device=DEVICE), 3))
    check_error(lambda: torch.linspace(300, 0, 1, dtype=torch.int8, device=DEVICE))
    check_error(lambda: torch.linspace(-3.5, 4, 5, dtype=torch.uint8, device=DEVICE))
    check_error(lambda: torch.logspace(20, 30, 1, dtype=torch.int32, device=DEVICE))


def test_complex_ranges_run_natively():
    check(lambda: torch.linspace(0, 1 + 1j, 3, device=DEVICE), ours=False)
    check(lambda: torch.logspace(0, 1j, 3, device=DEVICE), ours=False)
