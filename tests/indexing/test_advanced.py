"""index.Tensor (+out) and index_put / index_put_ / _index_put_impl_ (+out; accumulate,
repeated indices, bool masks) against native, and autograd through indexing."""

import pytest
import torch

from conftest import DEVICE, routed
from indexing_cases import VALUE_DTYPES, check, index, same_error, values, widened

INDEX = torch.ops.aten.index.Tensor


@pytest.mark.parametrize("dtype", VALUE_DTYPES, ids=str)
def test_index_every_dtype(dtype):
    x = values((3, 4, 5), dtype)
    rows, cols = index([2, -1, 0, 2]), index([[1], [-4]])
    check(lambda: x[rows])
    check(lambda: x[:, cols, rows])  # adjacent: the index dims stay in place, broadcast to [2, 4]
    check(lambda: x[rows, :, rows])  # apart: the index dims go first


def test_index_shapes_and_layouts():
    x = values((3, 4, 5), torch.float32)
    mask = values((3, 4), torch.bool)
    i, j = index([1, 0, 2]), index([3, 3, -1], torch.int32)
    check(lambda: x[mask])
    check(lambda: x[:, mask[0]])
    check(lambda: x[mask[:, :1].expand(3, 4)])  # an expanded mask
    check(lambda: x.transpose(0, 2)[i, 1:3])  # non-contiguous self
    check(lambda: x[i[:, None], j[None, ::2]])  # broadcast, strided index
    check(lambda: INDEX(x, [index(1), index(2)]))  # 0-d indices (Python would select with them)
    check(lambda: x[index([], torch.int64)], ours=False)
    check(lambda: INDEX(x, [None, None, index([4, 0])]))
    check(lambda: INDEX(x.expand(2, 3, 4, 5), [index([1]), None, index([0, 2])]))
    out = torch.empty(3, 4, 5, device=DEVICE)
    check(lambda: torch.ops.aten.index.Tensor_out(x, [i], out=out))


def test_index_errors():
    x = values((3, 4), torch.float32)
    same_error(lambda: x[index([3])])
    same_error(lambda: x[index([-4])])
    same_error(lambda: INDEX(x, [index([0, 1]), index([0, 1, 2])]))  # do not broadcast
    same_error(lambda: INDEX(x, [None, None, index([0])]))
    same_error(lambda: INDEX(x, [values((3, 3), torch.bool)]))
    same_error(lambda: INDEX(x, [index([0], torch.int16)]))
    same_error(lambda: INDEX(x, []))


def test_index_autograd():
    x = values((4, 3), torch.float64).requires_grad_()
    rows = index([0, 3, 0, -1])
    grad = values((4, 2), torch.float64)
    native = torch.autograd.grad(x[rows, 1:], x, grad)[0]
    ours, where_ran = routed(lambda: torch.autograd.grad(x[rows, 1:], x, grad)[0])
    assert torch.equal(ours, native)
    assert ("aten::index.Tensor", "triton") in where_ran and ("aten::_index_put_impl_", "triton") in where_ran


def _put_reference(self, indices, values_, accumulate):
    if self.dtype == torch.bool or not accumulate:
        return torch.index_put(self, indices, values_, accumulate)
    return torch.index_put(widened(self), indices, widened(values_), True).to(self.dtype)


@pytest.mark.parametrize("dtype", VALUE_DTYPES, ids=str)
def test_index_put_every_dtype(dtype):
    x = values((4, 5), dtype)
    repeated, distinct = (index([1, -3, 3]),), (index([2, 0]), index([[4], [-1]]))
    added, stored = values((3, 5), dtype), values((2, 2), dtype)
    check(lambda: torch.index_put(x, repeated, added, True), exact=False,
          reference=lambda: _put_reference(x, repeated, added, True))
    check(lambda: x.clone().index_put_(distinct, stored))
    check(lambda: x.clone().index_put_(repeated, added[0], accumulate=True), exact=False,
          reference=lambda: _put_reference(x, repeated, added[0].expand(3, 5), True))


def test_index_put_masks_layouts_and_out():
    x = values((4, 5), torch.float16)
    mask = values((4, 5), torch.bool)
    count = int(mask.sum())
    chosen = values((count,), torch.float16)

    def assign_masked():
        y = x.clone()
        y[mask] = chosen
        return y

    check(assign_masked)
    check(lambda: torch.index_put(x, (mask,), torch.tensor(2.5, dtype=torch.float16, device=DEVICE)))
    check(lambda: torch.index_put(x, (mask[:, 0],), chosen[:5], True), exact=False)
    column = values((5, 1), torch.float16)
    check(lambda: torch.ops.aten.index_put_(x.clone().t(), [None, index([0, 0])], column, True), exact=False)
    check(lambda: torch.ops.aten._index_put_impl_(x.clone(), (index([1]),), chosen[:5], True, True), exact=False)
    out = torch.empty(4, 5, dtype=torch.float16, device=DEVICE)
    check(lambda: torch.ops.aten.index_put.out(x, (index([1, 2]),), chosen[:1], out=out))
    check(lambda: torch.ops.aten._index_put_impl.out(x, (index([3]),), chosen[:5], True, out=out), exact=False)


def test_index_put_errors():
    x = values((4, 5), torch.float32)
    same_error(lambda: torch.index_put(x, (index([4]),), values((5,), torch.float32)))
    same_error(lambda: torch.index_put(x, (index([-5]),), values((5,), torch.float32), True))
    same_error(lambda: torch.index_put(x, (index([1]),), values((5,), torch.float64)))
    same_error(lambda: torch.index_put(x, (index([1]),), values((2, 5), torch.float32)))
    mask = torch.ones(4, 5, dtype=torch.bool, device=DEVICE)
    same_error(lambda: torch.index_put(x, (mask,), values((3,), torch.float32)))  # 20 places, 3 values
    same_error(lambda: (lambda y: y.index_put_((index([1, 2]),), y[0]))(x.clone()))  # values overlap self
