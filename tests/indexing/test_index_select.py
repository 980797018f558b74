"""index_select (+out) and index_add (+in-place, out=, alpha) against native."""

import pytest
import torch

from conftest import DEVICE, routed
from indexing_cases import VALUE_DTYPES, check, check_strides, index, same_error, values, widened


@pytest.mark.parametrize("dtype", VALUE_DTYPES, ids=str)
def test_index_select_every_dtype_and_dim(dtype):
    x = values((3, 4, 5), dtype)
    for dim in (0, 1, 2, -1):
        ids = torch.randint(0, x.shape[dim], (6,), device=DEVICE)  # with repeats
        check_strides(lambda: torch.index_select(x, dim, ids))


def test_index_select_layouts_and_shapes():
    x = values((4, 6), torch.float32)
    ids = index([3, 0, 0, 2])
    check_strides(lambda: torch.index_select(x.t(), 0, ids))  # transposed
    check_strides(lambda: torch.index_select(x[:, ::2], 1, ids[2:]))  # sliced
    check_strides(lambda: torch.index_select(x[0].expand(5, 6), 0, ids))  # expanded
    check_strides(lambda: torch.index_select(x, 1, index([5, 1, 2, 0, 4, 3])[::2]))  # strided index
    check_strides(lambda: torch.index_select(x, 0, index([1, 3], torch.int32)))
    check_strides(lambda: torch.index_select(x, 0, index(2)))  # 0-d index
    check_strides(lambda: torch.index_select(torch.tensor(2.5, device=DEVICE), 0, index([0])))  # 0-d self
    check(lambda: torch.index_select(x, 1, index([], torch.int64)), ours=False)  # empty
    permuted = values((2, 3, 2, 5), torch.int16).permute(3, 1, 0, 2)
    check(lambda: torch.index_select(permuted, 2, index([1, 0, 1])))


def test_index_select_out():
    x = values((4, 6), torch.float16)
    ids = index([3, 1])
    check(lambda: torch.index_select(x, 0, ids, out=torch.empty(2, 6, dtype=torch.float16, device=DEVICE)))
    # out of another layout is written in place
    check(lambda: torch.index_select(x, 0, ids, out=torch.empty(6, 2, dtype=torch.float16, device=DEVICE).t()))
    # an out that needs resizing goes native, which resizes it
    check(lambda: torch.index_select(x, 0, ids, out=torch.empty(0, dtype=torch.float16, device=DEVICE)), ours=False)


def test_index_select_errors():
    x = values((4, 6), torch.float32)
    same_error(lambda: torch.index_select(x, 0, index([4])))
    same_error(lambda: torch.index_select(x, 1, index([-1])))
    same_error(lambda: torch.index_select(x, 2, index([0])))
    same_error(lambda: torch.index_select(x, 0, index([[0]])))
    same_error(lambda: torch.index_select(x, 0, index([0], torch.int16)))
    same_error(lambda: torch.index_select(torch.tensor(1.0, device=DEVICE), 0, index([0, 0])))


def test_index_select_autograd():
    x = values((5, 3), torch.float64).requires_grad_()
    ids = index([4, 0, 4, 2])
    grad = values((4, 3), torch.float64)
    native = torch.autograd.grad(torch.index_select(x, 0, ids), x, grad)[0]
    ours, where_ran = routed(lambda: torch.autograd.grad(torch.index_select(x, 0, ids), x, grad)[0])
    assert torch.equal(ours, native)
    assert ("aten::index_add_", "triton") in where_ran, where_ran


def _index_add_reference(self, dim, ids, source, alpha=1):
    """index_add computed wide (fp64 or int64), then in self's dtype."""
    if self.dtype == torch.bool:
        return torch.index_add(self, dim, ids, source)
    return torch.index_add(widened(self), dim, ids, widened(source), alpha=alpha).to(self.dtype)


@pytest.mark.parametrize("dtype", VALUE_DTYPES, ids=str)
def test_index_add_every_dtype(dtype):
    x = values((4, 5), dtype)
    for dim in (0, 1):
        ids = torch.randint(0, x.shape[dim], (7,), device=DEVICE)  # duplicates accumulate
        source = values((7, 5) if dim == 0 else (4, 7), dtype)
        reference = lambda: _index_add_reference(x, dim, ids, source)  # noqa: E731
        check(lambda: torch.index_add(x, dim, ids, source), exact=False, reference=reference)
        check(lambda: x.clone().index_add_(dim, ids, source), exact=False, reference=reference)


def test_index_add_alpha_layouts_and_out():
    x = values((5, 4), torch.float32)
    ids = index([4, 0, 4])
    source = values((4, 3), torch.float32).t()  # non-contiguous source
    check(lambda: torch.index_add(x, 0, ids, source, alpha=2.5), exact=False)
    check(lambda: torch.index_add(x, 0, ids, source, alpha=-3), exact=False)
    x_long = values((4, 5), torch.int64)
    check(lambda: x_long.clone().t().index_add_(0, ids, source.long(), alpha=2))  # in place, transposed
    check(lambda: torch.index_add(x.t(), 1, ids, source.t(), out=torch.empty(4, 5, device=DEVICE)), exact=False)
    scalar, empty = torch.tensor(1.5, device=DEVICE), values((5, 0), torch.float32)
    check(lambda: torch.index_add(scalar, 0, index([0]), scalar), exact=False)  # 0-d
    same_error(lambda: torch.index_add(scalar, 0, index([0, 0]), values((2,), torch.float32)))
    check(lambda: torch.index_add(x, 1, index([], torch.int64), empty))


def test_index_add_errors():
    x = values((5, 4), torch.float32)
    same_error(lambda: torch.index_add(x, 0, index([5]), values((1, 4), torch.float32)))
    same_error(lambda: torch.index_add(x, 0, index([-1]), values((1, 4), torch.float32)))
    same_error(lambda: torch.index_add(x, 0, index([1]), values((1, 3), torch.float32)))
    same_error(lambda: torch.index_add(x, 0, index([1]), values((1, 4), torch.float64)))
    same_error(lambda: torch.index_add(x.long(), 0, index([1]), values((1, 4), torch.int64), alpha=0.5))
    same_error(lambda: x[:1].expand(5, 4).index_add_(0, index([1]), values((1, 4), torch.float32)))
