"""tril, triu (in place and out=), diag_embed and diagonal_backward against native:
every dtype, any strides and diagonal, negative dims, empty tensors, autograd and errors."""

import pytest
import torch

from conftest import ALL_DTYPES, DEVICE, assert_same_error, make, pick
from shape_checks import check, check_gradients

SHAPE = pick((2, 4, 5), (8, 130, 96))


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_tril_and_triu(dtype):
    x = make(SHAPE, dtype)
    for i, source in enumerate((x, x.transpose(1, 2), x[:, ::2], x[0, :1].expand(3, 4, 5))):
        for diagonal in (0, -1, 2, -100, 100)[i:i + 2]:
            check(lambda: torch.tril(source, diagonal), "tril")
            check(lambda: torch.triu(source, diagonal), "triu")
    square = make((3, 3), dtype)
    check(lambda: square.clone().tril_(1), "tril_")
    check(lambda: square.t().clone().triu_(-1), "triu_")
    empty = make((0, 3), dtype)
    check(lambda: torch.tril(empty), "tril")


def test_triangles_out_in_place_layouts_and_errors():
    x = make((4, 5), torch.float32)
    check(lambda: torch.tril(x, 1, out=torch.empty(4, 5, device=DEVICE)), "tril.out")
    check(lambda: torch.triu(x, out=torch.empty(5, 4, device=DEVICE).t()), "triu.out")
    check(lambda: x.t().clone().t().tril_(-1), "tril_")  # a transposed self, written in place
    for bad in (lambda: torch.tril(x[0]), lambda: x[0].triu_(), lambda: x[:1].expand(3, 5).tril_()):
        assert_same_error(bad)


def test_triangle_gradients():
    x = make((3, 4), torch.float64)
    check_gradients(lambda t: torch.tril(t, 1) * 2, x, overloads=("tril",))
    check_gradients(lambda t: torch.triu(t.t(), -1), x, overloads=("triu",))


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_diag_embed(dtype):
    x = make((2, 3, 4), dtype)
    for offset, dim1, dim2 in ((0, -2, -1), (1, 0, 1), (-2, 1, 3), (2, -1, 0), (0, 3, 2)):
        check(lambda: torch.diag_embed(x, offset, dim1, dim2), "diag_embed")
    check(lambda: torch.diag_embed(x.transpose(0, 2), 1), "diag_embed")
    vector = make((4,), dtype)
    check(lambda: torch.diag(vector, -1), "diag_embed")  # diag is a composite reaching diag_embed
    empty = make((0, 3), dtype)
    check(lambda: torch.diag_embed(empty), "diag_embed")


def test_diag_embed_out_errors_and_gradients():
    x = make((2, 3), torch.float32)
    check(lambda: torch.ops.aten.diag_embed.out(x, 1, out=torch.empty(2, 4, 4, device=DEVICE)), "diag_embed.out")
    for bad in (lambda: torch.diag_embed(x, 0, 1, 1), lambda: torch.diag_embed(x, 0, 0, 3),
                lambda: torch.diag_embed(make((), torch.float32))):
        assert_same_error(bad)
    check_gradients(lambda t: torch.diag_embed(t, -1), x.double(), overloads=("diag_embed",))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.int64, torch.bool], ids=str)
def test_diagonal_backward(dtype):
    aten = torch.ops.aten
    sizes = [2, 4, 5, 3]
    for offset, dim1, dim2 in ((0, 1, 2), (1, 1, 3), (-1, 3, 1), (2, -1, 0), (9, 1, 2)):
        grad = make(torch.empty(sizes, device="meta").diagonal(offset, dim1, dim2).shape, dtype)
        check(lambda: aten.diagonal_backward(grad, sizes, offset, dim1, dim2), "diagonal_backward")
        check(lambda: aten.diagonal_backward(grad.flip(0), sizes, offset, dim1, dim2), "diagonal_backward")
    grad = make((2, 5, 3), dtype)
    check(lambda: aten.diagonal_backward.out(grad, sizes, 0, 1, 3, out=torch.empty(sizes, device=DEVICE,
                                                                                       dtype=dtype)),
          "diagonal_backward.out")


def test_diagonal_backward_through_autograd_and_errors():
    x = make((3, 4, 5), torch.float64)
    check_gradients(lambda t: torch.diagonal(t, 1, 1, 2) * 3, x, overloads=("diagonal_backward",))
    check_gradients(lambda t: torch.diagonal(t, -1, -1, 0), x, overloads=("diagonal_backward",))
    for bad in (lambda: torch.ops.aten.diagonal_backward(make((3, 4), torch.float32), [3, 4, 5], 0, 1, 1),
                lambda: torch.ops.aten.diagonal_backward(make((3, 4), torch.float32), [3, 4, 5], 0, 1, 5)):
        assert_same_error(bad)
