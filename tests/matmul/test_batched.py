"""bmm and baddbmm against PyTorch computed in fp64."""

import pytest
import torch

import flag_gems

from conftest import DEVICE, FLOAT_DTYPES, assert_same_error, make, pick
from matmul_checks import close, our_kernel, ran, reference  # noqa: F401 - our_kernel: autouse fixture

SHAPES = [  # (batch, m, k, n)
    (1, 1, 1, 1), (3, 5, 7, 3), (2, 33, 19, 40),
    pick((4, 16, 48, 64), (32, 1024, 128, 1024)),  # attention-shaped
    pick((5, 3, 70, 5), (7, 127, 1000, 255)),  # odd sizes: masked edges
]
NAN = float("nan")


def check(a, b, bias=None, beta=1, alpha=1):
    """bmm without ``bias``, baddbmm with it."""
    if bias is None:
        native = torch.bmm(a, b)
        ours, kinds = ran("bmm", lambda: torch.bmm(a, b))
    else:
        native = torch.baddbmm(bias, a, b, beta=beta, alpha=alpha)
        ours, kinds = ran("baddbmm", lambda: torch.baddbmm(bias, a, b, beta=beta, alpha=alpha))
    assert kinds == ["triton"] or 0 in native.shape
    assert ours.dtype == native.dtype and ours.shape == native.shape
    close(ours, reference(bias, a, b, beta, alpha), a.shape[2])
    return ours


@pytest.mark.parametrize("z, m, k, n", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_bmm_and_baddbmm(z, m, k, n, dtype):
    a, b = make((z, m, k), dtype), make((z, k, n), dtype)
    check(a, b)
    check(a, b, make((z, m, n), dtype), beta=0.5, alpha=2)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_layouts(dtype):
    z, m, k, n = pick((3, 9, 20, 11), (8, 256, 128, 512))
    a, b = make((z, m, k), dtype), make((z, k, n), dtype)
    check(make((z, k, m), dtype).transpose(1, 2), b)  # transposed matrices
    check(a, make((z, n, k), dtype).transpose(1, 2))  # q @ k^T
    check(make((m, z, k), dtype).transpose(0, 1), b)  # batch not outermost (heads of a [T, H, D] tensor)
    check(make((m, k), dtype).expand(z, m, k), b)  # one matrix for every batch: batch stride 0
    check(a, make((z, k, 2 * n), dtype)[:, :, ::2])  # strided columns
    for bias in (make((n,), dtype), make((m, 1), dtype), make((1, m, n), dtype), make((), dtype),
                 make((z, n, m), dtype).transpose(1, 2)):
        check(a, b, bias, beta=2)


def test_alpha_beta_nan():
    a, b, bias = make((2, 4, 6), torch.float32), make((2, 6, 5), torch.float32), make((2, 4, 5), torch.float32)
    nan_bias = bias.clone()
    nan_bias[1, 2, 3] = NAN
    assert not check(a, b, nan_bias, beta=0).isnan().any()  # beta == 0: the bias is never read
    check(a, b, bias, alpha=0)
    check(a, b, bias, beta=-1, alpha=0.25)


def test_out_and_in_place():
    z, m, k, n = 2, 5, 6, 4
    a, b, bias = make((z, m, k), torch.float32), make((z, k, n), torch.float32), make((z, m, n), torch.float32)
    out = torch.empty(z, n, m, device=DEVICE).transpose(1, 2)
    with flag_gems.use_gems():
        assert torch.bmm(a, b, out=out) is out
    close(out, reference(None, a, b), k)
    with flag_gems.use_gems():
        assert torch.baddbmm(bias, a, b, alpha=3, out=out) is out
    close(out, reference(bias, a, b, alpha=3), k)
    inplace = bias.clone()
    returned, kinds = ran("baddbmm_", lambda: inplace.baddbmm_(a, b, beta=0.5))
    assert returned is inplace and kinds == ["triton"]
    close(inplace, reference(bias, a, b, beta=0.5), k)


def test_empty_and_zero_k():
    for z, m, k, n in ((0, 2, 3, 4), (2, 0, 3, 4), (2, 3, 0, 4), (2, 3, 4, 0)):
        a, b, bias = make((z, m, k), torch.float32), make((z, k, n), torch.float32), make((n,), torch.float32)
        with flag_gems.use_gems():
            ours = torch.bmm(a, b), torch.baddbmm(bias, a, b, beta=3)
        torch.testing.assert_close(ours[0], torch.bmm(a, b))
        torch.testing.assert_close(ours[1], torch.baddbmm(bias, a, b, beta=3))


def test_errors():
    f32 = torch.float32
    a, b = make((2, 3, 4), f32), make((2, 4, 5), f32)
    assert_same_error(lambda: torch.bmm(a, make((3, 4, 5), f32)))  # batch mismatch
    assert_same_error(lambda: torch.bmm(a, make((2, 5, 5), f32)))  # K mismatch
    assert_same_error(lambda: torch.bmm(a, b.half()))
    assert_same_error(lambda: torch.bmm(a[0], b[0]))  # not batches
    assert_same_error(lambda: torch.baddbmm(make((3, 5), f32), a, b))  # bias does not broadcast
    assert_same_error(lambda: torch.baddbmm(make((2, 3, 5), torch.float64), a, b))
    assert_same_error(lambda: make((3, 5), f32).baddbmm_(a, b))  # in place: self of the result's shape


def test_autograd():
    a = make((2, 3, 4), torch.float64).requires_grad_()
    b = make((2, 4, 5), torch.float64).requires_grad_()
    bias = make((5,), torch.float64).requires_grad_()

    def grads():
        loss = torch.bmm(a, b).pow(2).sum() + torch.baddbmm(bias, a, b, alpha=0.5).sum()
        return torch.autograd.grad(loss, (a, b, bias))

    native = grads()
    ours, kinds = ran("bmm", grads)
    assert kinds == ["triton"] * 5  # the forward, and the products of both backwards
    for mine, theirs in zip(ours, native):
        close(mine, theirs, 5)
