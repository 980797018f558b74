"""polar (and its out= form) against PyTorch computed in float64."""

import warnings

import pytest
import torch

from flag_gems.ops.creation import polar as polar_module

from conftest import DEVICE, make
from creation_cases import assert_rows_reach_backend, check, check_error

# Our sin and cos (libdevice on a GPU, numpy under the interpreter) and PyTorch's may differ
# in the last place: compare with the float64 result, within a few units of float32.
TOLERANCE = {torch.float32: 1e-6, torch.float64: 1e-15}


def _against_fp64(magnitude, angle, result):
    exact = torch.polar(magnitude.double(), angle.double())
    assert result.dtype == (torch.complex64 if magnitude.dtype == torch.float32 else torch.complex128)
    scale = magnitude.double().abs().max().item() if magnitude.numel() else 0
    torch.testing.assert_close(result.to(torch.complex128), exact, rtol=0, atol=TOLERANCE[magnitude.dtype] * scale)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_polar_any_layout_and_broadcast(dtype):
    magnitude, angle = make((4, 6), dtype), make((4, 6), dtype) * 4
    cases = [(magnitude, angle), (magnitude.t(), angle.t()), (magnitude[:, ::2], angle[:, 1::2]),
             (magnitude, angle[0]), (magnitude[:, :1], angle), (make((), dtype), angle), (magnitude[:0], angle[:0])]
    for a, b in cases:
        result = check(lambda: torch.polar(a, b), atol=TOLERANCE[dtype] * 10)
        _against_fp64(a, b, result)


def test_out_form():
    magnitude, angle = make((3, 5), torch.float32), make((5,), torch.float32)
    for out in (torch.empty(3, 5, dtype=torch.complex64, device=DEVICE),
                torch.empty(5, 3, dtype=torch.complex64, device=DEVICE).t()):
        _against_fp64(magnitude, angle, check(lambda: torch.polar(magnitude, angle, out=out), atol=1e-5))


def test_polar_special_values():
    magnitude = torch.tensor([0.0, -1.0, float("inf"), 2.0, float("nan")], device=DEVICE)
    angle = torch.tensor([1.0, 0.0, 0.0, float("inf"), 0.5], device=DEVICE)
    check(lambda: torch.polar(magnitude, angle))


def test_what_polar_refuses_raises_as_torch():
    x = make((3,), torch.float32)
    check_error(lambda: torch.polar(x, x.double()))
    check_error(lambda: torch.polar(x.int(), x.int()))
    with warnings.catch_warnings():  # making the complex32 result warns before the kernel raises
        warnings.filterwarnings("ignore", "ComplexHalf support is experimental")
        check_error(lambda: torch.polar(x.half(), x.half()))
    check_error(lambda: torch.polar(x, make((2,), torch.float32)))
    check_error(lambda: torch.polar(x, x, out=torch.empty(3, device=DEVICE)))


def test_rows_reach_the_backend():
    assert_rows_reach_backend(polar_module)
