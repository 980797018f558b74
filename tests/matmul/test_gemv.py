"""mv, addmv, dot and vdot against PyTorch computed in fp64."""

import pytest
import torch

import flag_gems

from conftest import DEVICE, FLOAT_DTYPES, assert_same_error, make, pick
from matmul_checks import close, our_kernel, ran, reference  # noqa: F401 - our_kernel: autouse fixture

SHAPES = [  # (m, k)
    (1, 1), (5, 7), (33, 70),
    pick((3, 5000), (16, 14336)),  # few rows, long K: split into slices
    pick((100, 40), (4096, 4096)),
]
NAN = float("nan")


def check(a, x, bias=None, beta=1, alpha=1, equal_nan=False):
    """mv (or dot, for a vector ``a``) without ``bias``, addmv with it."""
    if bias is not None:
        name, call = "addmv", lambda: torch.addmv(bias, a, x, beta=beta, alpha=alpha)
    else:
        name, call = ("mv", lambda: torch.mv(a, x)) if a.dim() == 2 else ("dot", lambda: torch.dot(a, x))
    native = call()
    ours, kinds = ran(name, call)
    assert kinds == ["triton"]
    assert ours.dtype == native.dtype and ours.shape == native.shape
    close(ours, reference(bias, a, x, beta, alpha), a.shape[-1], equal_nan=equal_nan)
    return ours


@pytest.mark.parametrize("m, k", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_mv_and_addmv(m, k, dtype):
    a, x = make((m, k), dtype), make((k,), dtype)
    check(a, x)
    check(a, x, make((m,), dtype), beta=0.5, alpha=2)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_mv_layouts(dtype):
    m, k = pick((40, 9), (4096, 1024))
    a, x = make((m, k), dtype), make((k,), dtype)
    check(make((k, m), dtype).t(), x)  # column-major: x @ W for W [K, M] reaches mv as W.t()
    check(make((k, 2 * m), dtype).t()[::2], x)  # strided both ways
    check(make((m, 2 * k), dtype)[:, ::2], make((3 * k,), dtype)[::3])  # strided columns and vector
    check(a, make((1,), dtype).expand(k))  # expanded vector
    check(make((1, k), dtype).expand(m, k), x)  # one row repeated
    check(make((3, 5000), dtype).t(), make((3,), dtype))  # long column-major M, short K


def test_addmv_bias_alpha_beta_out_and_in_place():
    m, k = 6, 9
    a, x, bias = make((m, k), torch.float32), make((k,), torch.float32), make((m,), torch.float32)
    for b in (make((1,), torch.float32), make((), torch.float32), make((2 * m,), torch.float32)[::2]):
        check(a, x, b, beta=-1)
    for beta, alpha in ((0, 0), (2, -1.5), (1, 0.25)):
        check(a, x, bias, beta=beta, alpha=alpha)
    nan_bias, nan_a = bias.clone(), a.clone()
    nan_bias[2] = NAN
    nan_a[1, 3] = NAN
    assert not check(a, x, nan_bias, beta=0).isnan().any()  # beta == 0: the bias is never read
    assert not check(nan_a, x, bias, alpha=0).isnan().any()  # alpha == 0: no product formed
    assert check(a, x, nan_bias, equal_nan=True).isnan().sum() == 1
    out = torch.empty(2 * m, device=DEVICE)[::2]
    with flag_gems.use_gems():
        assert torch.addmv(bias, a, x, beta=0.5, out=out) is out
        assert torch.mv(a, x, out=out[:m]) is not None
    close(out, reference(None, a, x), k)
    inplace = bias.clone()
    returned, kinds = ran("addmv_", lambda: inplace.addmv_(a, x, alpha=3))
    assert returned is inplace and kinds == ["triton"]
    close(inplace, reference(bias, a, x, alpha=3), k)


@pytest.mark.parametrize("k", [1, 7, 300, pick(20000, 64 * 2**20)], ids=str)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_dot_and_vdot(k, dtype):
    x, y = make((k,), dtype), make((k,), dtype)
    check(x, y)
    ours, kinds = ran("vdot", lambda: torch.vdot(x, y))  # real: vdot is dot
    assert kinds == ["triton"]
    close(ours, reference(None, x, y), k)


def test_dot_layouts_out_and_complex():
    x, y = make((30,), torch.float32), make((90,), torch.float32)[::3]
    check(x, y)
    check(make((1,), torch.float32).expand(30), y)
    out = torch.empty((), device=DEVICE)
    with flag_gems.use_gems():
        assert torch.dot(x, y, out=out) is out
    close(out, reference(None, x, y), 30)
    z = torch.randn(5, dtype=torch.complex64, device=DEVICE)
    result, kinds = ran("vdot", lambda: torch.vdot(z, z * 2))
    assert kinds[0].startswith("native (") and torch.allclose(result, torch.vdot(z, z * 2))


def test_empty_and_zero_k():
    for m, k in ((0, 3), (3, 0), (0, 0)):
        a, x, bias = make((m, k), torch.float32), make((k,), torch.float32), make((m,), torch.float32)
        with flag_gems.use_gems():
            ours = torch.mv(a, x), torch.addmv(bias, a, x, beta=2)
        torch.testing.assert_close(ours[0], torch.mv(a, x))
        torch.testing.assert_close(ours[1], torch.addmv(bias, a, x, beta=2))
    empty = make((0,), torch.float32)
    with flag_gems.use_gems():
        assert torch.dot(empty, empty).item() == 0 and torch.vdot(empty, empty).item() == 0


def test_errors():
    f32 = torch.float32
    a, x = make((3, 4), f32), make((4,), f32)
    assert_same_error(lambda: torch.mv(a, make((5,), f32)))
    assert_same_error(lambda: torch.mv(a, x.double()))
    assert_same_error(lambda: torch.mv(a, make((4, 1), f32)))
    assert_same_error(lambda: torch.addmv(make((4,), f32), a, x))  # bias does not broadcast
    assert_same_error(lambda: torch.addmv(make((3,), torch.float64), a, x))
    assert_same_error(lambda: make((1,), f32).addmv_(a, x))  # in place: self of the result's shape
    assert_same_error(lambda: torch.dot(x, make((5,), f32)))
    assert_same_error(lambda: torch.dot(x, x.half()))
    assert_same_error(lambda: torch.dot(a, a))
    assert_same_error(lambda: torch.vdot(x, make((3,), f32)))


def test_autograd():
    a = make((5, 6), torch.float64).requires_grad_()
    x = make((6,), torch.float64).requires_grad_()
    y = make((6,), torch.float64).requires_grad_()
    bias = make((5,), torch.float64).requires_grad_()

    def grads():
        loss = torch.mv(a, x).pow(2).sum() + torch.addmv(bias, a, y, alpha=0.5).sum() + torch.dot(x, y) ** 2
        return torch.autograd.grad(loss, (a, x, y, bias))

    native = grads()
    ours, kinds = ran("mv", grads)
    assert kinds == ["triton"] * 3  # the forward, and the two of the backwards that take a transposed matrix
    for mine, theirs in zip(ours, native):
        close(mine, theirs, 6)
