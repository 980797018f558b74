"""alias_copy, t_copy and lift_fresh_copy, with their out= forms, against native."""

import pytest
import torch

from flag_gems.ops.creation import copies

from conftest import ALL_DTYPES, DEVICE, make
from creation_cases import assert_rows_reach_backend, check, check_error

COPIES = [torch.ops.aten.alias_copy, torch.ops.aten.lift_fresh_copy]


def _inputs(dtype):
    base = make((3, 4), dtype)
    return [base, base.t(), base[:, ::2], make((4,), dtype).expand(3, 4), make((), dtype), make((0, 2), dtype),
            make((5,), dtype)[::2], make((2, 3, 4), dtype).permute(2, 0, 1)]


def test_rows_reach_the_backend():
    assert_rows_reach_backend(copies)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_every_dtype_and_layout(dtype):
    for x in _inputs(dtype):
        for copy in COPIES:
            check(lambda: copy(x))
        if x.dim() <= 2:
            check(lambda: torch.t_copy(x))


def test_out_forms():
    x = make((3, 4), torch.float32)
    for out in (torch.empty(3, 4, device=DEVICE), torch.empty(4, 3, device=DEVICE).t()):
        for copy in COPIES:
            check(lambda: copy(x.t().t(), out=out))
    for out in (torch.empty(4, 3, device=DEVICE), torch.empty(3, 4, device=DEVICE).t()):
        check(lambda: torch.t_copy(x, out=out))
    check(lambda: torch.t_copy(x, out=torch.empty(0, device=DEVICE)), ours=False)  # native resizes
    square = make((3, 3), torch.float32)
    check(lambda: torch.t_copy(square, out=square), ours=False)  # out is the input: native copies first


def test_bad_input_raises_as_torch():
    check_error(lambda: torch.t_copy(make((2, 2, 2), torch.float32)))
    check_error(lambda: torch.alias_copy(make((2,), torch.float32), out=torch.empty(2, dtype=torch.int32)))
    complex_input = make((2,), torch.float32).to(torch.complex64)
    check(lambda: torch.alias_copy(complex_input), ours=False)
