"""repeat_interleave against native: the Tensor overload (and its out= form) on our
kernels, the self_int and self_Tensor composites reaching them, and PyTorch's errors."""

import pytest
import torch

from conftest import DEVICE, assert_same_error, make
from shape_checks import check


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64], ids=str)
def test_repeats_tensor(dtype):
    repeats = torch.tensor([2, 0, 3, 1, 0, 5], device=DEVICE, dtype=dtype)
    check(lambda: torch.repeat_interleave(repeats), "repeat_interleave.Tensor")
    check(lambda: torch.repeat_interleave(repeats[::2]), "repeat_interleave.Tensor")  # strided
    check(lambda: torch.repeat_interleave(repeats, output_size=11), "repeat_interleave.Tensor")
    zeros = torch.zeros(4, device=DEVICE, dtype=dtype)
    check(lambda: torch.repeat_interleave(zeros), "repeat_interleave.Tensor")
    long = torch.randint(0, 4, (1500,), device=DEVICE, dtype=dtype)  # more than one scan block
    check(lambda: torch.repeat_interleave(long), "repeat_interleave.Tensor")
    empty = torch.empty(0, device=DEVICE, dtype=dtype)
    check(lambda: torch.repeat_interleave(empty), "repeat_interleave.Tensor")


def test_repeats_out_form():
    repeats = torch.tensor([1, 2, 3], device=DEVICE)
    out_call = torch.ops.aten.repeat_interleave.Tensor_out
    check(lambda: out_call(repeats, output_size=6, out=torch.empty(6, device=DEVICE, dtype=torch.int64)),
          "repeat_interleave.Tensor_out")
    # without output_size native resizes out, computing the values with our kernel
    check(lambda: out_call(repeats, out=torch.empty(0, device=DEVICE, dtype=torch.int64)), "repeat_interleave.Tensor")


def test_composite_overloads_reach_our_kernels():
    x = make((2, 3), torch.float32)
    check(lambda: torch.repeat_interleave(x, 2), "clone")  # self_int: an expanded view cloned
    check(lambda: torch.repeat_interleave(x, 3, dim=1), "clone")
    repeats = torch.tensor([1, 0, 2], device=DEVICE)
    check(lambda: torch.repeat_interleave(x, repeats, dim=1), "repeat_interleave.Tensor")


def test_errors_match_torch():
    for bad in (lambda: torch.repeat_interleave(torch.tensor([1, -1], device=DEVICE)),
                lambda: torch.repeat_interleave(torch.tensor([1, 2], device=DEVICE), output_size=2),
                lambda: torch.repeat_interleave(torch.tensor([[1, 2]], device=DEVICE)),
                lambda: torch.repeat_interleave(torch.tensor([1.0, 2.0], device=DEVICE))):
        assert_same_error(bad)
