"""select_scatter, slice_scatter, select_backward, slice_backward (+out) against native, and
one_hot (CompositeImplicitAutograd: not registered; its scatter_ is ours)."""

import pytest
import torch
import torch.nn.functional as F

from conftest import DEVICE, routed
from indexing_cases import VALUE_DTYPES, check, check_strides, same_error, values

SHAPE = (3, 4, 5)


@pytest.mark.parametrize("dtype", VALUE_DTYPES, ids=str)
def test_select_and_slice_scatter_every_dtype(dtype):
    x = values(SHAPE, dtype)
    row, block = values((3, 5), dtype), values((3, 2, 5), dtype)
    check_strides(lambda: torch.select_scatter(x, row, 1, -1))
    check_strides(lambda: torch.slice_scatter(x, block, 1, 1, 4, 2))


def test_slices_layouts_bounds_and_out():
    x = values(SHAPE, torch.float32)
    column_major, wide = values((3, 4), torch.float32).t(), values((3, 4, 2), torch.float64)
    check_strides(lambda: torch.select_scatter(x.transpose(0, 2), column_major, 0, 2))
    check_strides(lambda: torch.slice_scatter(x, x[:, 1:3].transpose(0, 1).clone().transpose(0, 1), 1, -2, None))
    check_strides(lambda: torch.slice_scatter(x, wide, 2, 3, 100))  # converts, clamps
    check_strides(lambda: torch.slice_scatter(x, x[:, :0], 1, 3, 1))  # empty
    small, seven = values((4,), torch.int8), torch.tensor(7, dtype=torch.int8, device=DEVICE)
    check_strides(lambda: torch.select_scatter(small, seven, 0, 1))
    out = torch.empty(5, 4, 3, device=DEVICE).permute(2, 1, 0)
    rows = values((3, 4), torch.float32)
    check(lambda: torch.ops.aten.select_scatter.out(x, rows, 2, 0, out=out))
    check(lambda: torch.ops.aten.slice_scatter.out(x, x[:, :1], 1, 2, 3, out=out))


def test_slice_backwards():
    grad = values((3, 2, 5), torch.bfloat16)
    check_strides(lambda: torch.ops.aten.slice_backward(grad, list(SHAPE), 1, 1, 2**63 - 1, 2))
    check_strides(lambda: torch.ops.aten.select_backward(grad[:, 0], list(SHAPE), -2, 3))
    out = torch.empty(SHAPE, dtype=torch.bfloat16, device=DEVICE)
    check(lambda: torch.ops.aten.slice_backward.out(grad, list(SHAPE), 1, -3, -1, 1, out=out))
    face = values((3, 4), torch.bfloat16)
    check(lambda: torch.ops.aten.select_backward.out(face, list(SHAPE), 2, 0, out=out))


def test_autograd_through_select_and_slices():
    x = values(SHAPE, torch.float64).requires_grad_()
    native = torch.autograd.grad((x[:, 1] * 2).sum() + x[:, ::2, 1:].sum(), x)[0]
    ours, where_ran = routed(lambda: torch.autograd.grad((x[:, 1] * 2).sum() + x[:, ::2, 1:].sum(), x)[0])
    assert torch.equal(ours, native)
    assert ("aten::select_backward", "triton") in where_ran and ("aten::slice_backward", "triton") in where_ran


def test_one_hot_reaches_our_scatter():
    labels = torch.tensor([[0, 3], [2, 2]], device=DEVICE)
    check(lambda: F.one_hot(labels, 4))
    _, where_ran = routed(lambda: F.one_hot(labels, 5))
    assert ("aten::scatter_.value", "triton") in where_ran, where_ran


def test_slice_errors():
    x = values(SHAPE, torch.float32)
    same_error(lambda: torch.select_scatter(x, values((3, 5), torch.float32), 1, 4))
    same_error(lambda: torch.select_scatter(x, values((3, 4), torch.float32), 1, 0))
    same_error(lambda: torch.slice_scatter(x, values((3, 4, 5), torch.float32), 1, 0, None, 0))
    same_error(lambda: torch.slice_scatter(x, values((3, 2, 5), torch.float32), 1, 0, 3))
    same_error(lambda: torch.select_scatter(torch.tensor(1.0, device=DEVICE), torch.tensor(2.0, device=DEVICE), 0, 0))
