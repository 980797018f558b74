"""eye, every overload with its out= form, against native."""

import pytest
import torch

from flag_gems.ops.creation import eye as eye_module

from conftest import ALL_DTYPES, DEVICE
from creation_cases import assert_rows_reach_backend, check, check_error


def test_rows_reach_the_backend():
    assert_rows_reach_backend(eye_module)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_every_dtype_and_shape(dtype):
    for n, m in [(1, None), (5, None), (3, 7), (9, 2), (0, None), (0, 3), (4, 0)]:
        if m is None:
            check(lambda: torch.eye(n, dtype=dtype, device=DEVICE))
        else:
            check(lambda: torch.eye(n, m, dtype=dtype, device=DEVICE))


def test_default_dtype():
    check(lambda: torch.eye(3, device=DEVICE))
    check(lambda: torch.eye(2, 4, device=DEVICE))


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.bool], ids=str)
def test_out_forms_into_any_layout(dtype):
    def outs(n, m):
        return [torch.full((n, m), 7, dtype=dtype, device=DEVICE),
                torch.full((m, n), 7, dtype=dtype, device=DEVICE).t(),
                torch.full((n, 2 * m), 7, dtype=dtype, device=DEVICE)[:, ::2]]

    for out in outs(4, 4):
        check(lambda: torch.eye(4, out=out))
    for out in outs(3, 5):
        check(lambda: torch.eye(3, 5, out=out))
    check(lambda: torch.eye(3, out=torch.empty(0, dtype=dtype, device=DEVICE)), ours=False)  # native resizes


def test_bad_input_raises_as_torch():
    check_error(lambda: torch.eye(-1, device=DEVICE))
    check_error(lambda: torch.eye(2, -3, device=DEVICE))
    check_error(lambda: torch.eye(-2, out=torch.empty(0, device=DEVICE)))
    check(lambda: torch.eye(2, dtype=torch.complex64, device=DEVICE), ours=False)
