"""embedding (+out) and embedding_dense_backward (+out; padding_idx, scale_grad_by_freq) against native."""

import pytest
import torch
import torch.nn.functional as F

from conftest import DEVICE, FLOAT_DTYPES, routed
from indexing_cases import VALUE_DTYPES, check, check_strides, index, same_error, values


@pytest.mark.parametrize("dtype", VALUE_DTYPES, ids=str)
def test_embedding_every_dtype(dtype):
    weight = values((6, 5), dtype)
    check_strides(lambda: F.embedding(index([[1, 5, 1], [0, 2, 2]]), weight))


def test_embedding_layouts_and_shapes():
    weight = values((5, 6), torch.bfloat16)
    ids = index([[4, 0], [2, 2], [1, 3]])
    check_strides(lambda: F.embedding(ids, weight.t()))  # column-major table
    check_strides(lambda: F.embedding(ids.t(), weight[:, ::2]))  # strided ids and table
    check_strides(lambda: F.embedding(ids.to(torch.int32), weight))
    check_strides(lambda: F.embedding(index(3), weight))  # 0-d ids
    check_strides(lambda: F.embedding(index([], torch.int64), weight))
    out = torch.empty(3, 2, 6, dtype=torch.bfloat16, device=DEVICE)
    check(lambda: torch.ops.aten.embedding.out(weight, ids, out=out))


def test_a_module_reaches_our_embedding_row():
    """aten::embedding is CompositeExplicitAutograd: with autograd on, a model's call still
    reaches the backend's kernel (ours), and its backward our embedding_dense_backward."""
    table = torch.nn.Embedding(7, 4, padding_idx=0).to(DEVICE)
    ids = index([[0, 3, 6], [3, 3, 1]])
    _, where_ran = routed(lambda: table(ids).sum().backward())
    assert ("aten::embedding", "triton") in where_ran, where_ran
    assert ("aten::embedding_dense_backward", "triton") in where_ran, where_ran


def _gradient(weight, ids, grad, **options):
    return torch.autograd.grad(F.embedding(ids, weight, **options), weight, grad)[0]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_embedding_backward(dtype):
    weight = values((6, 4), dtype).requires_grad_()
    ids = index([[1, 5, 1, 1], [0, 2, 5, 1]])
    grad = values((2, 4, 4), dtype)
    wide = weight.detach().double().requires_grad_()
    for options in ({}, {"padding_idx": 1}, {"scale_grad_by_freq": True},
                    {"padding_idx": -1, "scale_grad_by_freq": True}):
        check(lambda: _gradient(weight, ids, grad, **options), exact=dtype == torch.float64,
              reference=lambda: _gradient(wide, ids, grad.double(), **options).to(dtype))


def test_embedding_dense_backward_directly():
    grad = values((3, 2, 5), torch.float32).transpose(0, 1)  # non-contiguous rows
    ids = index([[0, 4, 4], [2, 0, 0]]).to(torch.int32)
    backward = torch.ops.aten.embedding_dense_backward
    check(lambda: backward(grad, ids, 6, 0, True), exact=False)
    check(lambda: backward(grad, ids, 6, -1, False), exact=False)
    out = torch.empty(6, 5, device=DEVICE)
    check(lambda: backward.out(grad, ids, 6, 4, False, out=out), exact=False)
    check(lambda: backward(values((0, 5), torch.float32), index([], torch.int64), 3, -1, False))


def test_embedding_errors():
    weight = values((5, 3), torch.float32)
    same_error(lambda: F.embedding(index([5]), weight))
    same_error(lambda: F.embedding(index([-1]), weight))
    same_error(lambda: torch.ops.aten.embedding(weight, index([0.5], torch.float32)))
    same_error(lambda: torch.ops.aten.embedding_dense_backward(values((2, 3), torch.float32), index([0, 9]), 5, -1,
                                                             False))
