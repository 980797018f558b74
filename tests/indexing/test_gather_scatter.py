"""gather (+out, backward), scatter (src, value, reduce=), scatter_add and scatter_reduce
(every reduction, include_self), in-place and out= forms, against native."""

import pytest
import torch

from conftest import DEVICE, routed
from indexing_cases import VALUE_DTYPES, check, check_strides, index, same_error, values, widened

SELF, INDEX = (4, 5), (3, 5)  # index along dim 0; dim 1 takes the transposes
OLD_REDUCE = pytest.mark.filterwarnings("ignore:The reduce argument of torch.scatter")  # deprecated, still served


def _distinct_rows(rows, cols, high):
    """An index of ``rows`` x ``cols`` whose columns hold distinct values below ``high``
    (a plain scatter with repeats keeps any one of the values, natively too)."""
    return torch.stack([torch.randperm(high, device=DEVICE)[:rows] for _ in range(cols)], 1)


def _repeating(rows, cols, high):
    return torch.randint(0, high, (rows, cols), device=DEVICE)


@pytest.mark.parametrize("dtype", VALUE_DTYPES, ids=str)
def test_gather_every_dtype(dtype):
    x = values(SELF, dtype)
    ids = _repeating(*INDEX, SELF[0])
    check_strides(lambda: torch.gather(x, 0, ids))
    check_strides(lambda: torch.gather(x.t(), 1, ids.t()))  # non-contiguous self and index


def test_gather_shapes_and_out():
    x = values((3, 4, 5), torch.float32)
    check_strides(lambda: torch.gather(x, 2, index([[[4, 0]], [[1, 1]]])))  # smaller index in every dim
    expanded = _repeating(2, 5, 4)[None].expand(3, 2, 5)
    check_strides(lambda: torch.gather(x, -2, expanded))
    check_strides(lambda: torch.gather(x, 1, index([[[3]]], torch.int32)))
    check_strides(lambda: torch.gather(torch.tensor(2.0, device=DEVICE), 0, index(0)))  # 0-d
    check(lambda: torch.gather(x, 0, index([], torch.int64).view(0, 1, 1)), ours=False)  # empty
    ids, out = _repeating(2, 5, 3), torch.empty(5, 2, device=DEVICE).t()  # a transposed out
    check(lambda: torch.gather(x[0], 0, ids, out=out))


def test_gather_errors():
    x = values((4, 5), torch.float32)
    same_error(lambda: torch.gather(x, 0, index([[4]])))
    same_error(lambda: torch.gather(x, 1, index([[-1]])))
    same_error(lambda: torch.gather(x, 0, index([0])))  # fewer dims
    same_error(lambda: torch.gather(x, 0, _repeating(2, 6, 4)))  # larger than self outside dim
    same_error(lambda: torch.gather(x, 2, index([[0]])))


def test_gather_autograd():
    x = values((4, 3), torch.float64).requires_grad_()
    ids = _repeating(5, 3, 4)
    grad = values((5, 3), torch.float64)
    native = torch.autograd.grad(torch.gather(x, 0, ids), x, grad)[0]
    ours, where_ran = routed(lambda: torch.autograd.grad(torch.gather(x, 0, ids), x, grad)[0])
    torch.testing.assert_close(ours, native, rtol=1e-12, atol=1e-12)
    assert ("aten::scatter_add_", "triton") in where_ran, where_ran


@pytest.mark.parametrize("dtype", VALUE_DTYPES, ids=str)
def test_scatter_stores_every_dtype(dtype):
    x, src = values(SELF, dtype), values((4, 6), dtype)
    ids = _distinct_rows(*INDEX, SELF[0])
    check_strides(lambda: torch.scatter(x, 0, ids, src))
    check_strides(lambda: torch.scatter(x, 0, ids, True if dtype == torch.bool else 3))
    check(lambda: x.clone().scatter_(0, ids, src))
    check(lambda: x.clone().t().scatter_(1, ids.t(), src.t()))  # in place, non-contiguous


def test_scatter_values_out_and_layouts():
    x = values(SELF, torch.float16)
    ids = _distinct_rows(*INDEX, SELF[0])
    check_strides(lambda: torch.scatter(x.t(), 1, ids.t(), -1.5))  # a transposed self gives a contiguous result
    check(lambda: torch.scatter(x, 0, ids, 0.1))  # rounded to fp16 as aten rounds it
    src = values(INDEX, torch.float16)
    check(lambda: torch.scatter(x, 0, ids, src, out=torch.empty(SELF, dtype=x.dtype, device=DEVICE)))
    check(lambda: torch.scatter(x, 0, ids, 2.0, out=torch.empty(SELF[::-1], dtype=x.dtype, device=DEVICE).t()))
    scalar = values((), torch.int32)
    check(lambda: torch.scatter(scalar, 0, index(0), 7))  # 0-d
    check(lambda: torch.scatter(x, 0, index([], torch.int64).view(0, 1), 1.0), ours=False)


def _reference(op, self, *args, **kwargs):
    """``op`` computed wide (fp64 or int64) and cast back; bool as native."""
    if self.dtype == torch.bool:
        return op(self, *args, **kwargs)
    args = [widened(a) if isinstance(a, torch.Tensor) and a.dtype == self.dtype else a for a in args]
    return op(widened(self), *args, **kwargs).to(self.dtype)


@OLD_REDUCE
@pytest.mark.parametrize("dtype", VALUE_DTYPES, ids=str)
def test_scatter_accumulations_every_dtype(dtype):
    x, src = values(SELF, dtype), values(INDEX, dtype)
    ids = _repeating(*INDEX, SELF[0])  # repeats accumulate
    value = True if dtype == torch.bool else 2

    def checked(op, *args, **kwargs):
        check(lambda: op(x, *args, **kwargs), exact=False, reference=lambda: _reference(op, x, *args, **kwargs))

    checked(torch.scatter_add, 0, ids, src)
    checked(torch.scatter, 0, ids, src, reduce="add")
    checked(torch.scatter, 0, ids, src, reduce="multiply")
    checked(torch.scatter, 0, ids, value, reduce="add")
    checked(torch.scatter, 0, ids, value, reduce="multiply")
    for reduce in ("sum", "prod", "mean", "amax", "amin"):
        if reduce == "mean" and dtype == torch.bool:
            continue
        for include_self in (True, False):
            checked(torch.scatter_reduce, 0, ids, src, reduce, include_self=include_self)


@OLD_REDUCE
def test_scatter_accumulations_in_place_and_out():
    x, src = values(SELF, torch.bfloat16), values(INDEX, torch.bfloat16)
    ids = _repeating(*INDEX, SELF[0])
    for reduce in ("sum", "mean", "amax"):
        check(lambda: x.clone().scatter_reduce_(0, ids, src, reduce, include_self=False), exact=False,
              reference=lambda: _reference(torch.scatter_reduce, x, 0, ids, src, reduce, include_self=False))
    check(lambda: x.clone().t().scatter_add_(1, ids.t(), src.t()), exact=False,
          reference=lambda: _reference(torch.scatter_add, x.t(), 1, ids.t(), src.t()))
    out = torch.empty(SELF, dtype=torch.bfloat16, device=DEVICE)
    check(lambda: torch.scatter_add(x, 0, ids, src, out=out), exact=False,
          reference=lambda: _reference(torch.scatter_add, x, 0, ids, src))
    check(lambda: torch.scatter_reduce(x, 0, ids, src, "prod", out=out), exact=False,
          reference=lambda: _reference(torch.scatter_reduce, x, 0, ids, src, "prod"))
    check(lambda: x.clone().scatter_(0, ids, 1.5, reduce="multiply"), exact=False,
          reference=lambda: _reference(torch.scatter, x, 0, ids, 1.5, reduce="multiply"))


def test_scatter_special_values():
    x = torch.tensor([[1.0, float("nan")], [float("-inf"), 0.0]], device=DEVICE)
    src = torch.tensor([[float("nan"), 2.0], [3.0, float("inf")]], device=DEVICE)
    ids = index([[1, 0], [1, 0]])
    for reduce in ("sum", "prod", "amax", "amin"):
        check(lambda: torch.scatter_reduce(x, 0, ids, src, reduce))


@OLD_REDUCE
def test_scatter_errors():
    x, src = values(SELF, torch.float32), values(INDEX, torch.float32)
    ids = _repeating(*INDEX, SELF[0])
    same_error(lambda: torch.scatter(x, 0, index([[4]]), src))
    same_error(lambda: torch.scatter_add(x, 1, index([[-1]]), src))
    same_error(lambda: torch.scatter(x, 0, ids, src.double()))
    same_error(lambda: torch.scatter(x.to(torch.int8), 0, ids, 300))
    same_error(lambda: torch.scatter_reduce(x, 0, ids, src, "max"))
    same_error(lambda: torch.scatter_reduce(x > 0, 0, ids, src > 0, "mean"))
    same_error(lambda: torch.scatter(x, 0, ids, src, reduce="mean"))
    larger = _repeating(5, 5, 4)
    same_error(lambda: torch.scatter_add(x, 0, larger, src))  # index larger than src
    same_error(lambda: x[:1].expand(*SELF).scatter_(0, ids, src))
