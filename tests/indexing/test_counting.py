"""bincount (+out), unique (_unique2, _unique) and unique_consecutive against native."""

import pytest
import torch

from conftest import DEVICE, INT_DTYPES
from indexing_cases import check, same_error, values

UNIQUE2 = torch.ops.aten._unique2


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=str)
def test_bincount_every_dtype(dtype):
    x = values((17,), dtype).abs()
    weights = values((17,), torch.float32)
    check(lambda: torch.bincount(x))
    check(lambda: torch.bincount(x, weights, minlength=9), exact=False)
    check(lambda: torch.bincount(x[::2], weights.half()[::2]), exact=False)  # fp16 weights sum in fp64


def test_bincount_edges_and_out():
    ids = torch.tensor([0, 7, 7, 2], device=DEVICE)
    check(lambda: torch.bincount(ids[:0], minlength=3))
    check(lambda: torch.bincount(ids, torch.tensor([1, 2, 3, 4], dtype=torch.int32, device=DEVICE)))
    check(lambda: torch.ops.aten.bincount.out(ids, None, 0, out=torch.empty(0, dtype=torch.int64, device=DEVICE)))
    same_error(lambda: torch.bincount(torch.tensor([1, -1], device=DEVICE)))
    same_error(lambda: torch.bincount(ids.view(2, 2)))
    same_error(lambda: torch.bincount(ids.float()))
    same_error(lambda: torch.bincount(ids, torch.ones(3, device=DEVICE)))


@pytest.mark.parametrize("dtype", INT_DTYPES + [torch.bool], ids=str)
def test_unique_every_dtype(dtype):
    x = values((4, 6), dtype)
    check(lambda: torch.unique(x))
    check(lambda: torch.unique(x.t(), return_inverse=True, return_counts=True))
    check(lambda: torch.ops.aten._unique(x, True, True))
    check(lambda: torch.unique_consecutive(x, return_inverse=True, return_counts=True))


def test_unique_edges():
    check(lambda: UNIQUE2(torch.tensor([], dtype=torch.int64, device=DEVICE), True, True, True))
    check(lambda: UNIQUE2(torch.tensor(5, device=DEVICE), True, True, True))  # 0-d
    check(lambda: torch.unique(torch.tensor([7, -(2**40), 7], device=DEVICE), return_counts=True))  # native sorts
    big = values((3000,), torch.int64)
    check(lambda: torch.unique(big, return_inverse=True, return_counts=True))
    floats = torch.tensor([[3.0, 3.0, -0.0], [0.0, float("nan"), float("nan")]], device=DEVICE)
    native = torch.unique_consecutive(floats, return_inverse=True, return_counts=True)
    check(lambda: torch.unique_consecutive(floats, return_inverse=True, return_counts=True)[1:],
          reference=lambda: native[1:])  # NaN runs: the values hold NaN, compared below
    assert len(torch.unique_consecutive(floats)) == 4
    halves, ints = values((5, 2), torch.bfloat16), values((2, 3), torch.int32)
    check(lambda: torch.unique_consecutive(halves.t(), return_counts=True))
    check(lambda: torch.unique_consecutive(ints, dim=1), ours=False)
    check(lambda: torch.unique(halves), ours=False)  # floats need a sort
