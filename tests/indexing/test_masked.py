"""nonzero, masked_select, masked_scatter / masked_scatter_ (+out) against native."""

import pytest
import torch

from conftest import DEVICE, routed
from indexing_cases import VALUE_DTYPES, check, same_error, values


@pytest.mark.parametrize("dtype", VALUE_DTYPES, ids=str)
def test_masked_ops_every_dtype(dtype):
    x = values((3, 5), dtype)
    mask = values((3, 5), torch.bool)
    source = values((15,), dtype)
    check(lambda: torch.nonzero(x))
    check(lambda: torch.masked_select(x, mask))
    check(lambda: x.clone().masked_scatter_(mask, source))


def test_nonzero_shapes_and_layouts():
    x = values((2, 3, 4), torch.float32) * values((2, 3, 4), torch.bool)
    check(lambda: torch.nonzero(x.permute(2, 0, 1)))
    check(lambda: torch.nonzero(x[:, ::2]))
    zeros = torch.tensor([0.0, -0.0, 1.0, float("nan")], dtype=torch.bfloat16, device=DEVICE)
    check(lambda: torch.nonzero(zeros))  # -0.0 is zero, NaN is not
    check(lambda: torch.nonzero(torch.tensor(3, device=DEVICE)))  # 0-d
    check(lambda: torch.nonzero(torch.zeros(0, 3, device=DEVICE)))
    check(lambda: torch.nonzero(torch.zeros(4, 3, device=DEVICE)))
    check(lambda: torch.nonzero(x, out=torch.empty(0, dtype=torch.int64, device=DEVICE)))
    check(lambda: x.nonzero(as_tuple=True))
    big = values((2500,), torch.bool)  # several blocks
    check(lambda: torch.nonzero(big))


def test_masked_select_and_scatter_broadcast_and_out():
    x = values((3, 4), torch.int16)
    row_mask, mask = values((4,), torch.bool), values((2, 3, 4), torch.bool)
    source = values((30,), torch.int16)
    check(lambda: torch.masked_select(x, row_mask))
    check(lambda: torch.masked_select(x.t().t()[1], mask))  # self broadcast against the mask
    check(lambda: torch.masked_select(x, row_mask, out=torch.empty(0, dtype=torch.int16, device=DEVICE)))
    check(lambda: x.t().clone().t().masked_scatter_(row_mask, source[::2]))  # strided source
    check(lambda: torch.masked_scatter(x[0], mask, source))  # broadcast to the mask's shape
    check(lambda: torch.ops.aten.masked_scatter.out(x, row_mask, source, out=torch.empty_like(x)))
    check(lambda: x[x > 0])  # indexing with a mask
    y = values((3, 4), torch.float32)

    def assign():
        z = y.clone()
        z[y > 0] = 0.5
        return z

    check(assign)


def test_masked_autograd():
    x = values((3, 4), torch.float64).requires_grad_()
    mask = values((3, 4), torch.bool)
    native = torch.autograd.grad(torch.masked_select(x, mask).sum() * 3, x)[0]
    ours, where_ran = routed(lambda: torch.autograd.grad(torch.masked_select(x, mask).sum() * 3, x)[0])
    assert torch.equal(ours, native)
    assert ("aten::masked_select", "triton") in where_ran, where_ran


def test_masked_errors():
    x = values((3, 4), torch.float32)
    same_error(lambda: x.clone().masked_scatter_(torch.ones(3, 4, dtype=torch.bool, device=DEVICE), x[0]))
    same_error(lambda: x.clone().masked_scatter_(torch.ones(3, 4, dtype=torch.bool, device=DEVICE), x.double()))
    same_error(lambda: torch.masked_select(x, torch.ones(2, 4, dtype=torch.bool, device=DEVICE)))
    same_error(lambda: x.clone().masked_scatter_(torch.ones(2, 3, 4, dtype=torch.bool, device=DEVICE), x))
