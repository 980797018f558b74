"""Group norm, forward and backward, against PyTorch in fp64."""

import pytest
import torch
import torch.nn.functional as F

import flag_gems
from flag_gems.testing import assert_close

from conftest import DEVICE, FLOAT_DTYPES, ON_GPU, assert_same_error, make, pick
from moments_cases import LONG, SHAPES, close, params

@pytest.mark.parametrize("shape", SHAPES + [LONG], ids=str)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("groups", ["one", "mid", "all"])
def test_group_norm_forward(shape, dtype, groups):
    C = shape[1]
    G = {"one": 1, "mid": 2, "all": C}[groups]
    x = make(shape, dtype)
    w, b = params(C, dtype)
    N, HxW = shape[0], x.numel() // (shape[0] * C)
    native = torch.ops.aten.native_group_norm(x, w, b, N, C, HxW, G, 1e-5)
    with flag_gems.use_gems():
        ours = torch.ops.aten.native_group_norm(x, w, b, N, C, HxW, G, 1e-5)
    reference = torch.ops.aten.native_group_norm(x.double(), w.double(), b.double(), N, C, HxW, G, 1e-5)
    for o, n, r in zip(ours, native, reference):
        close(o, n, r)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_group_norm_functional_without_params_and_mixed(dtype):
    x = make(pick((3, 8, 7), (32, 256, 4096)), dtype)
    with flag_gems.use_gems():
        ours = F.group_norm(x, 4)
    close(ours, F.group_norm(x, 4), F.group_norm(x.double(), 4))
    if dtype in (torch.float16, torch.bfloat16):  # half input, fp32 parameters: fp32 statistics on the CPU
        N, C, HxW = x.shape
        w, b = params(C, torch.float32)
        args = (x, w, b, N, C, HxW, 4, 1e-5)
        if not x.is_cpu:  # CUDA's kernel raises
            assert_same_error(lambda: torch.ops.aten.native_group_norm(*args))
            return
        native = torch.ops.aten.native_group_norm(*args)
        with flag_gems.use_gems():
            ours = torch.ops.aten.native_group_norm(*args)
        reference = torch.ops.aten.native_group_norm(x.double(), w.double(), b.double(), *args[3:])
        for o, n, r in zip(ours, native, reference):
            close(o, n, r)


@pytest.mark.parametrize("shape", SHAPES + [LONG], ids=str)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("mask", [(True, True, True), (True, False, False), (False, True, True)], ids=str)
def test_group_norm_backward(shape, dtype, mask):
    C = shape[1]
    G = 2
    N, HxW = shape[0], make(shape, dtype).numel() // (shape[0] * C)
    x = make(shape, dtype)
    w, _ = params(C, dtype)
    dy = make(shape, dtype)
    _, mean, rstd = torch.ops.aten.native_group_norm(x, w, None, N, C, HxW, G, 1e-5)
    args = (dy, x, mean, rstd, w, N, C, HxW, G, list(mask))
    native = torch.ops.aten.native_group_norm_backward(*args)
    with flag_gems.use_gems():
        ours = torch.ops.aten.native_group_norm_backward(*args)
    reference = torch.ops.aten.native_group_norm_backward(dy.double(), x.double(), mean.double(), rstd.double(),
                                                          w.double(), N, C, HxW, G, list(mask))
    for o, n, r, sums in zip(ours, native, reference, (1, N * HxW, N * HxW)):
        assert (o is None) == (n is None)
        if o is not None:
            close(o, n, r, reduce_dim=sums)


def test_group_norm_gradcheck_and_expanded_grad():
    x = torch.randn(2, 6, 3, dtype=torch.float64, device=DEVICE, requires_grad=True)
    w = torch.randn(6, dtype=torch.float64, device=DEVICE, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, device=DEVICE, requires_grad=True)
    with flag_gems.use_gems():
        assert torch.autograd.gradcheck(lambda *t: F.group_norm(t[0], 3, t[1], t[2]), (x, w, b))
        # sum().backward() hands the backward an expanded (all-zero strides) gradient.
        ours = torch.autograd.grad(F.group_norm(x, 2, w, b).sum(), (x, w, b))
    native = torch.autograd.grad(F.group_norm(x, 2, w, b).sum(), (x, w, b))
    for o, n in zip(ours, native):
        assert_close(o, n, torch.float64)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_group_norm_grads_match_native(dtype):
    x = make(pick((2, 8, 3, 5), (16, 128, 32, 32)), dtype).requires_grad_()
    w, b = (p.requires_grad_() for p in params(8 if not ON_GPU else 128, dtype))
    dy = make(x.shape, dtype)
    with flag_gems.use_gems():
        ours = torch.autograd.grad(F.group_norm(x, 4, w, b), (x, w, b), dy)
    reference = torch.autograd.grad(F.group_norm(x.double(), 4, w.double(), b.double()), (x, w, b), dy.double())
    native = torch.autograd.grad(F.group_norm(x, 4, w, b), (x, w, b), dy)
    for o, n, r, sums in zip(ours, native, reference, (1, x.numel(), x.numel())):
        close(o, n, r, reduce_dim=sums)


def test_group_norm_errors_and_edge_cases():
    x = make((2, 6, 3), torch.float32)
    assert_same_error(lambda: F.group_norm(x, 4))  # C not divisible by groups
    assert_same_error(lambda: F.group_norm(x, 3, make((5,), torch.float32)))  # wrong weight shape
    assert_same_error(lambda: F.group_norm(make((0, 6, 3), torch.float32), 3))  # empty batch
    one = make((1, 6, 4), torch.float32)  # batch of one
    with flag_gems.use_gems():
        ours = F.group_norm(one, 3)
    assert_close(ours, F.group_norm(one.double(), 3), torch.float32)
    cl = make((2, 6, 3, 4), torch.float32).to(memory_format=torch.channels_last)
    with flag_gems.use_gems():
        ours = F.group_norm(cl, 3)
    assert_close(ours, F.group_norm(cl.double(), 3), torch.float32)


def test_group_norm_stable_for_large_means():
    x = make(pick((1, 2, 50000), (1, 2, 2**24)), torch.float32) + 1e4
    with flag_gems.use_gems():
        ours, mean, rstd = torch.ops.aten.native_group_norm(x, None, None, 1, 2, x.shape[2], 1, 1e-5)
    reference = torch.ops.aten.native_group_norm(x.double(), None, None, 1, 2, x.shape[2], 1, 1e-5)
    assert_close(rstd, reference[2], torch.float32)
    assert_close(ours, reference[0], torch.float32, atol=1e-3)
