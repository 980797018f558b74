"""isin (Tensor_Tensor, Tensor_Scalar, Scalar_Tensor, each with out=) against native."""

import pytest
import torch

from conftest import DEVICE, FLOAT_DTYPES, INT_DTYPES
from indexing_cases import check, check_strides, same_error, values


@pytest.mark.parametrize("dtype", FLOAT_DTYPES + INT_DTYPES, ids=str)
def test_isin_every_dtype(dtype):
    elements, tests = values((4, 7), dtype), values((5,), dtype)
    for invert in (False, True):
        check_strides(lambda: torch.isin(elements, tests, invert=invert))
        check_strides(lambda: torch.isin(elements, 2, invert=invert))
        check_strides(lambda: torch.isin(1, tests, invert=invert))


# native's Scalar_Tensor_out resizes a 0-d out to [0] and back, with a warning
@pytest.mark.filterwarnings("ignore:An output with one or more elements was resized")
def test_isin_promotion_layouts_and_out():
    elements = values((6, 5), torch.int16)
    check_strides(lambda: torch.isin(elements.t(), index_like([1, -3, 300], torch.int64)))
    halves = values((7,), torch.float16)
    check_strides(lambda: torch.isin(elements, halves[::2]))  # compared as fp16, strided
    small, halves = values((9,), torch.uint8), torch.tensor([0.1, 0.2, 0.0999], dtype=torch.float16, device=DEVICE)
    check_strides(lambda: torch.isin(small, -253))  # converted to uint8: 3
    check_strides(lambda: torch.isin(halves, 0.1))  # 0.1 rounded to fp16 first
    check_strides(lambda: torch.isin(elements, elements[:0]))  # nothing to find
    check_strides(lambda: torch.isin(elements[:0], elements))
    tests = torch.tensor([float("nan"), 1.0, float("inf")], device=DEVICE)
    check_strides(lambda: torch.isin(torch.tensor([float("nan"), float("inf"), 2.0], device=DEVICE), tests))
    many = torch.arange(300, device=DEVICE, dtype=torch.int32).flip(0)
    distinct = torch.arange(-20, 460, 16, device=DEVICE, dtype=torch.int32).view(6, 5)
    check_strides(lambda: torch.isin(distinct, many, assume_unique=True))  # both must be unique then
    check_strides(lambda: torch.isin(elements, many))
    out = torch.empty(6, 5, dtype=torch.bool, device=DEVICE)
    check(lambda: torch.isin(elements, many, out=out))
    check(lambda: torch.isin(elements, 3, out=out))
    check(lambda: torch.isin(3, many, out=torch.empty((), dtype=torch.bool, device=DEVICE)))


def index_like(values_list, dtype):
    return torch.tensor(values_list, dtype=dtype, device=DEVICE)


def test_isin_errors():
    same_error(lambda: torch.isin(values((3,), torch.bool), values((3,), torch.bool)))
    same_error(lambda: torch.isin(values((3,), torch.float32), True))
