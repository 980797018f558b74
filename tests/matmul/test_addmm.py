"""addmm and addr against PyTorch computed in fp64."""

import pytest
import torch

import flag_gems

from conftest import DEVICE, FLOAT_DTYPES, ON_GPU, assert_same_error, make, pick
from matmul_checks import close, our_kernel, ran, reference  # noqa: F401 - our_kernel: autouse fixture

SHAPES = [  # (m, k, n)
    (1, 1, 1), (5, 7, 3), (33, 19, 70),
    pick((16, 48, 64), (16, 4096, 4096)),  # decode-shaped
    pick((3, 200, 5), (127, 4093, 255)),  # odd sizes: masked edges
]
NAN = float("nan")


def check(bias, a, b, beta=1, alpha=1, equal_nan=False):
    native = torch.addmm(bias, a, b, beta=beta, alpha=alpha)
    ours, kinds = ran("addmm", lambda: torch.addmm(bias, a, b, beta=beta, alpha=alpha))
    assert kinds == ["triton"]
    assert ours.dtype == native.dtype and ours.shape == native.shape
    close(ours, reference(bias, a, b, beta, alpha), a.shape[1], equal_nan=equal_nan)
    return ours


@pytest.mark.parametrize("m, k, n", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_addmm(m, k, n, dtype):
    check(make((n,), dtype), make((m, k), dtype), make((k, n), dtype))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_addmm_bias_shapes(dtype):
    m, k, n = pick((6, 9, 5), (256, 512, 384))
    a, b = make((m, k), dtype), make((k, n), dtype)
    for bias in (make((n,), dtype), make((1,), dtype), make((), dtype), make((m, 1), dtype), make((1, n), dtype),
                 make((m, n), dtype), make((n, m), dtype).t(), make((2 * n,), dtype)[::2],
                 make((1,), dtype).expand(n)):
        check(bias, a, b)


def test_addmm_alpha_beta():
    m, k, n = 7, 10, 6
    a, b, bias = make((m, k), torch.float32), make((k, n), torch.float32), make((m, n), torch.float32)
    for beta, alpha in ((0.5, 2), (2, -1.5), (1, 3), (0.25, 1), (0, 0), (True, 1)):
        check(bias, a, b, beta=beta, alpha=alpha)
    nan_bias = bias.clone()
    nan_bias[1, 2] = NAN
    assert not check(nan_bias, a, b, beta=0).isnan().any()  # beta == 0: the bias is never read
    nan_a = a.clone()
    nan_a[3, 4] = NAN
    assert not check(bias, nan_a, b, alpha=0).isnan().any()  # alpha == 0: no product formed
    assert check(nan_bias, a, b, equal_nan=True).isnan().sum() == 1


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_addmm_layouts(dtype):
    m, k, n = pick((9, 20, 11), (512, 768, 256))
    a, b, bias = make((m, k), dtype), make((k, n), dtype), make((n,), dtype)
    check(bias, make((k, m), dtype).t(), b)  # transposed mat1
    check(bias, a, make((n, k), dtype).t())  # transposed mat2: nn.Linear's weight
    check(bias, make((k, m), dtype).t(), make((n, k), dtype).t())
    check(bias, make((m, 2 * k), dtype)[:, ::2], make((k, n + 3), dtype)[:, :n])  # strided, padded
    check(bias, make((1, k), dtype).expand(m, k), b)  # expanded rows


def test_addmm_out_and_in_place():
    m, k, n = 6, 8, 5
    a, b, bias = make((m, k), torch.float32), make((k, n), torch.float32), make((m, n), torch.float32)
    expected = reference(bias, a, b, 0.5, 2)
    out = torch.empty(n, m, device=DEVICE).t()
    with flag_gems.use_gems():
        assert torch.addmm(bias, a, b, beta=0.5, alpha=2, out=out) is out
    close(out, expected, k)
    inplace = bias.clone()
    returned, kinds = ran("addmm_", lambda: inplace.addmm_(a, b, beta=0.5, alpha=2))
    assert returned is inplace and kinds == ["triton"]
    close(inplace, expected, k)
    aliased = bias.clone()
    with flag_gems.use_gems():
        torch.addmm(aliased, a, b, beta=0.5, alpha=2, out=aliased)  # out is self
    close(aliased, expected, k)
    transposed = bias.t().contiguous().t()  # in place on a column-major self
    with flag_gems.use_gems():
        transposed.addmm_(a, b, beta=0.5, alpha=2)
    close(transposed, expected, k)


def test_addmm_empty_and_zero_k():
    for m, k, n in ((0, 4, 3), (3, 4, 0), (3, 0, 4), (0, 0, 0)):
        a, b, bias = make((m, k), torch.float32), make((k, n), torch.float32), make((n,), torch.float32)
        with flag_gems.use_gems():
            ours = torch.addmm(bias, a, b, beta=2)
        torch.testing.assert_close(ours, torch.addmm(bias, a, b, beta=2))


def test_addmm_routing():
    a, b, bias = make((4, 5), torch.float32), make((5, 3), torch.float32), make((3,), torch.float32)
    assert ran("addmm", lambda: torch.addmm(bias, a, b))[1] == ["triton"]
    doubles = a.double(), b.double(), bias.double()
    # fp64 takes alpha and beta only where fp32 holds them exactly
    assert ran("addmm", lambda: torch.addmm(doubles[2], *doubles[:2], alpha=0.5))[1] == ["triton"]
    result, kinds = ran("addmm", lambda: torch.addmm(doubles[2], *doubles[:2], alpha=0.1))
    assert kinds[0].startswith("native (") and "fp32" in kinds[0]
    close(result, reference(doubles[2], *doubles[:2], 1, 0.1), 5)
    if not ON_GPU:  # torch has integer matmuls on the CPU only: they run natively
        ints = [t.to(torch.int64) for t in (bias, a, b)]
        result, kinds = ran("addmm", lambda: torch.addmm(*ints))
        assert kinds[0].startswith("native (") and torch.equal(result, torch.addmm(*ints))


def test_addmm_errors():
    f32 = torch.float32
    a, b, bias = make((3, 4), f32), make((4, 5), f32), make((5,), f32)
    assert_same_error(lambda: torch.addmm(bias, a, make((6, 5), f32)))  # K mismatch
    assert_same_error(lambda: torch.addmm(bias, a, b.double()))  # dtypes
    assert_same_error(lambda: torch.addmm(bias.double(), a, b))
    assert_same_error(lambda: torch.addmm(make((4,), f32), a, b))  # bias does not broadcast
    assert_same_error(lambda: torch.addmm(make((2, 3, 5), f32), a, b))
    assert_same_error(lambda: torch.addmm(bias, make((2, 3, 4), f32), b))  # not matrices
    assert_same_error(lambda: bias.clone().addmm_(a, b))  # in place: self must be the result's shape
    assert_same_error(lambda: torch.addmm(bias, a, b, alpha=1j))


def test_linear_with_bias_autograd():
    x = make((8, 16), torch.float64).requires_grad_()
    w = make((4, 16), torch.float64).requires_grad_()
    bias = make((4,), torch.float64).requires_grad_()

    def grads():
        return torch.autograd.grad(torch.nn.functional.linear(x, w, bias).pow(2).sum(), (x, w, bias))

    native = grads()
    ours, kinds = ran("addmm", grads)
    assert kinds == ["triton"]
    for mine, theirs in zip(ours, native):
        close(mine, theirs, 16)


# ------------------------------------------------------------------ addr


def check_addr(bias, v1, v2, beta=1, alpha=1):
    native = torch.addr(bias, v1, v2, beta=beta, alpha=alpha)
    ours, kinds = ran("addr", lambda: torch.addr(bias, v1, v2, beta=beta, alpha=alpha))
    assert kinds == ["triton"]
    assert ours.dtype == native.dtype and ours.shape == native.shape
    close(ours, reference(bias, v1, v2, beta, alpha, product=torch.outer), 1)
    return ours


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_addr(dtype):
    m, n = pick((37, 20), (1000, 3000))
    v1, v2 = make((m,), dtype), make((n,), dtype)
    for bias in (make((m, n), dtype), make((n,), dtype), make((), dtype), make((n, m), dtype).t()):
        check_addr(bias, v1, v2)
    check_addr(make((m, n), dtype), make((2 * m,), dtype)[::2], v2, beta=0.5, alpha=2)  # strided


def test_addr_alpha_beta_out_and_in_place():
    v1, v2, bias = make((5,), torch.float32), make((7,), torch.float32), make((5, 7), torch.float32)
    nan_bias = bias.clone()
    nan_bias[0, 0] = NAN
    assert not check_addr(nan_bias, v1, v2, beta=0).isnan().any()
    check_addr(bias, v1, v2, alpha=0)
    out = torch.empty(7, 5, device=DEVICE).t()
    with flag_gems.use_gems():
        assert torch.addr(bias, v1, v2, beta=2, out=out) is out
        inplace = bias.clone()
        assert inplace.addr_(v1, v2, alpha=-1) is inplace
    close(out, reference(bias, v1, v2, 2, 1, product=torch.outer), 1)
    close(inplace, reference(bias, v1, v2, 1, -1, product=torch.outer), 1)
    for m, n in ((0, 3), (3, 0)):
        with flag_gems.use_gems():
            assert torch.addr(make((n,), torch.float32), make((m,), torch.float32), make((n,), torch.float32)).shape \
                == (m, n)


def test_addr_errors():
    f32 = torch.float32
    v1, v2 = make((3,), f32), make((4,), f32)
    assert_same_error(lambda: torch.addr(make((3, 4), f32), make((3, 1), f32), v2))
    assert_same_error(lambda: torch.addr(make((3, 4), f32), v1, v2.double()))
    assert_same_error(lambda: torch.addr(make((3,), f32), v1, v2))
    assert_same_error(lambda: torch.addr(make((3, 4), f32), v1, v2, beta=1j))
