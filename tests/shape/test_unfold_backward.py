"""unfold_backward against native, through autograd of Tensor.unfold and called
directly: every dtype, overlapping and gapped windows, any dim, out= and errors."""

import pytest
import torch

from conftest import ALL_DTYPES, DEVICE, assert_same_error
from shape_checks import check, check_gradients, integers

WINDOWS = [(3, 1), (3, 2), (2, 3), (4, 4), (1, 1)]


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_unfold_backward(dtype):
    aten = torch.ops.aten
    sizes = [3, 7, 2]
    for i, (size, step) in enumerate(WINDOWS):
        dim = i % 3 - 1
        unfolded = torch.empty(sizes, device="meta").unfold(dim, min(size, sizes[dim]), step)
        grad = integers(unfolded.shape, dtype)
        check(lambda: aten.unfold_backward(grad, sizes, dim, unfolded.shape[-1], step), "unfold_backward")
    grad = integers((3, 3, 2, 3), dtype).transpose(0, 2).contiguous().transpose(0, 2)
    check(lambda: aten.unfold_backward(grad, sizes, 1, 3, 2), "unfold_backward")


def test_unfold_gradients():
    x = integers((4, 9), torch.float64)
    for size, step in WINDOWS:
        check_gradients(lambda t: t.unfold(1, size, step) * 2, x, overloads=("unfold_backward",))
    check_gradients(lambda t: t.unfold(0, 2, 1), x, overloads=("unfold_backward",))


def test_out_form_and_errors():
    aten = torch.ops.aten
    grad = integers((4, 3), torch.float32)
    check(lambda: aten.unfold_backward.out(grad, [10], 0, 3, 2, out=torch.empty(10, device=DEVICE)),
          "unfold_backward.out")
    permuted = integers((2, 3, 4, 2), torch.float32).permute(1, 0, 2, 3)  # dims before dim do not merge
    check(lambda: aten.unfold_backward(permuted, [3, 2, 5], 2, 2, 1))
    for bad in (lambda: aten.unfold_backward(grad, [10], 0, 3, 0), lambda: aten.unfold_backward(grad, [10], 1, 3, 2)):
        assert_same_error(bad)
