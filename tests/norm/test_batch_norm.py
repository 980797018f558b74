"""Batch norm, forward (with its out= forms) and backward, against PyTorch in fp64."""

import pytest
import torch
import torch.nn.functional as F

import flag_gems
from flag_gems.testing import assert_close

from conftest import DEVICE, FLOAT_DTYPES, ON_GPU, assert_same_error, make, pick
from moments_cases import SHAPES, close, params


def reduced(shape, channels_only):
    """Elements per statistic (scales the absolute tolerance of sums)."""
    n = 1
    for s in shape:
        n *= s
    return max(n // shape[1] if channels_only else n // shape[0], 1)


def layouts(shape, dtype):
    x = make(shape, dtype)
    yield "contiguous", x
    if len(shape) in (4, 5):
        yield "channels_last", x.to(memory_format=torch.channels_last if len(shape) == 4
                                    else torch.channels_last_3d)
    if len(shape) >= 3:
        yield "strided", make((shape[0], shape[1], shape[2] * 2) + tuple(shape[3:]), dtype)[:, :, ::2]
    yield "batch sliced", make((shape[0] * 2,) + tuple(shape[1:]), dtype)[::2]


def batch_norm_reference(x, rm, rv, w, b, training, momentum, eps=1e-5):
    rm64 = None if rm is None else rm.double()
    rv64 = None if rv is None else rv.double()
    out = F.batch_norm(x.double(), rm64, rv64, None if w is None else w.double(),
                       None if b is None else b.double(), training, momentum, eps)
    return out, rm64, rv64


@pytest.mark.parametrize("shape", SHAPES + [pick((8, 2, 5000), (64, 32, 65536))], ids=str)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_forward(shape, dtype, training):
    C = shape[1]
    for layout, x in layouts(shape, dtype):
        # Running stats in the parameters' dtype (fp32 for halves): CUDA's cudnn path requires it.
        stat_dtype = torch.float64 if dtype == torch.float64 else torch.float32
        for stats in ((None, None), (make((C,), stat_dtype), torch.rand(C, device=DEVICE, dtype=stat_dtype) + 0.5)):
            if not training and stats[0] is None:
                continue
            for w, b in (params(C, dtype), (None, None)):
                rm, rv = (None, None) if stats[0] is None else (stats[0].clone(), stats[1].clone())
                reference, rm64, rv64 = batch_norm_reference(x, rm, rv, w, b, training, 0.1)
                with flag_gems.use_gems():
                    ours = F.batch_norm(x, rm, rv, w, b, training, 0.1)
                assert ours.dtype == dtype and ours.shape == x.shape, layout
                assert_close(ours, reference, dtype)
                if rm is not None:
                    assert_close(rm, rm64, stat_dtype)
                    assert_close(rv, rv64, stat_dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("op", ["native_batch_norm", "_native_batch_norm_legit", "no_stats"])
def test_batch_norm_saved_outputs(dtype, op):
    x = make(pick((3, 5, 4), (64, 256, 3136)), dtype)
    w, b = params(5 if not ON_GPU else 256, dtype)
    C = x.shape[1]
    rm, rv = make((C,), dtype), torch.rand(C, device=DEVICE, dtype=dtype) + 0.5
    if op == "no_stats":
        call = lambda: torch.ops.aten._native_batch_norm_legit.no_stats(x, w, b, True, 0.1, 1e-5)  # noqa: E731
    else:
        call = lambda: getattr(torch.ops.aten, op)(x, w, b, rm.clone(), rv.clone(), True, 0.1, 1e-5)  # noqa: E731
    native = call()
    with flag_gems.use_gems():
        ours = call()
    reference = torch.ops.aten.native_batch_norm(x.double(), w.double(), b.double(), None, None, True, 0.1, 1e-5)
    close(ours[0], native[0], reference[0])
    for o, n, r in zip(ours[1:], native[1:], reference[1:]):
        assert o.shape == n.shape
        if ON_GPU:  # on the CPU torch saves half statistics in the input dtype; CUDA in fp32
            assert o.dtype == n.dtype
        assert_close(o, r, o.dtype)


def test_batch_norm_out_forms():
    x = make((3, 5, 4), torch.float32)
    w, b = params(5, torch.float32)
    reference = F.batch_norm(x.double(), None, None, w.double(), b.double(), True)
    for op in (torch.ops.aten.native_batch_norm.out, torch.ops.aten._native_batch_norm_legit.no_stats_out):
        out, mean, invstd = torch.empty_like(x), torch.empty(5, device=DEVICE), torch.empty(5, device=DEVICE)
        args = (x, w, b, None, None, True, 0.1, 1e-5) if op is torch.ops.aten.native_batch_norm.out else (
            x, w, b, True, 0.1, 1e-5)
        with flag_gems.use_gems():
            op(*args, out=out, save_mean=mean, save_invstd=invstd)
        assert_close(out, reference, torch.float32)
        assert_close(mean, x.double().mean((0, 2)), torch.float32)
    rm, rv = torch.zeros(5, device=DEVICE), torch.ones(5, device=DEVICE)
    out, mean, invstd = torch.empty_like(x), torch.empty(5, device=DEVICE), torch.empty(5, device=DEVICE)
    with flag_gems.use_gems():
        torch.ops.aten._native_batch_norm_legit.out(x, w, b, rm, rv, True, 0.1, 1e-5, out=out, save_mean=mean,
                                                    save_invstd=invstd)
    assert_close(out, reference, torch.float32)
    assert_close(rm, 0.1 * x.double().mean((0, 2)), torch.float32)


@pytest.mark.parametrize("shape", SHAPES + [pick((8, 2, 5000), (64, 32, 65536))], ids=str)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_backward(shape, dtype, train):
    C = shape[1]
    w, _ = params(C, dtype)
    rm, rv = make((C,), torch.float32), torch.rand(C, device=DEVICE) + 0.5
    for layout, x in layouts(shape, dtype):
        dy = make(x.shape, dtype)
        # As the forward saves them: batch statistics in training, the running ones in eval (CUDA's
        # backward reads save_mean / save_invstd whenever they are non-empty, even in eval).
        _, save_mean, save_invstd = torch.ops.aten.native_batch_norm(x.double(), w.double(), None, rm.double(),
                                                                     rv.double(), train, 0.1, 1e-5)
        save_mean, save_invstd = save_mean.float(), save_invstd.float()
        for mask in ([True, True, True], [True, False, False], [False, True, True]):
            args = (dy, x, w, rm, rv, save_mean, save_invstd, train, 1e-5, mask)
            with flag_gems.use_gems():
                ours = torch.ops.aten.native_batch_norm_backward(*args)
            reference = torch.ops.aten.native_batch_norm_backward(
                dy.double(), x.double(), w.double(), rm.double(), rv.double(), save_mean.double(),
                save_invstd.double(), train, 1e-5, mask)
            for o, r, sums, wanted in zip(ours, reference, (1, reduced(shape, True), reduced(shape, True)), mask):
                assert (o is not None) == wanted  # CUDA may also return the gradients not asked for
                if wanted:
                    assert o.shape == r.shape, layout
                    assert_close(o, r, dtype, reduce_dim=sums)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(training):
    x = torch.randn(3, 4, 2, dtype=torch.float64, device=DEVICE, requires_grad=True)
    w = torch.randn(4, dtype=torch.float64, device=DEVICE, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, device=DEVICE, requires_grad=True)
    rm, rv = torch.zeros(4, dtype=torch.float64, device=DEVICE), torch.ones(4, dtype=torch.float64, device=DEVICE)
    with flag_gems.use_gems():
        assert torch.autograd.gradcheck(lambda *t: F.batch_norm(t[0], rm, rv, t[1], t[2], training), (x, w, b))
        cl = torch.randn(2, 3, 2, 2, dtype=torch.float64, device=DEVICE).to(
            memory_format=torch.channels_last).requires_grad_()
        assert torch.autograd.gradcheck(lambda t: F.batch_norm(t, None, None, training=True), (cl,))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_batch_norm_module_grads_match_native(dtype):
    x = make(pick((4, 6, 3, 3), (64, 256, 28, 28)), dtype).to(memory_format=torch.channels_last).requires_grad_()
    C = x.shape[1]
    module = torch.nn.BatchNorm2d(C, device=DEVICE, dtype=dtype)
    reference_module = torch.nn.BatchNorm2d(C, device=DEVICE, dtype=torch.float64)
    dy = make(x.shape, dtype)
    with flag_gems.use_gems():
        ours = torch.autograd.grad(module(x), (x, module.weight, module.bias), dy)
    reference = torch.autograd.grad(reference_module(x.double()), (x, *reference_module.parameters()), dy.double())
    native = torch.autograd.grad(torch.nn.BatchNorm2d(C, device=DEVICE, dtype=dtype)(x), x, dy)
    close(ours[0], native[0], reference[0])
    for o, r in zip(ours[1:], reference[1:]):
        assert_close(o, r, dtype, reduce_dim=x.numel() // C)
    assert_close(module.running_var, reference_module.running_var, dtype)


def test_batch_norm_cumulative_momentum_and_eval():
    """momentum=None: the module passes 1 / num_batches_tracked as the factor."""
    ours_module = torch.nn.BatchNorm1d(5, momentum=None, device=DEVICE)
    native_module = torch.nn.BatchNorm1d(5, momentum=None, device=DEVICE)
    for _ in range(3):
        x = make((7, 5, 3), torch.float32)
        with flag_gems.use_gems():
            ours = ours_module(x)
        assert_close(ours, native_module(x), torch.float32)
    assert_close(ours_module.running_mean, native_module.running_mean, torch.float32)
    assert_close(ours_module.running_var, native_module.running_var, torch.float32)
    ours_module.eval()
    native_module.eval()
    x = make((2, 5), torch.float32)  # 2-d input
    with flag_gems.use_gems():
        ours = ours_module(x)
    assert_close(ours, native_module(x), torch.float32)


def test_batch_norm_errors():
    x = make((4, 3, 5), torch.float32)
    assert_same_error(lambda: F.batch_norm(x, None, None, make((4,), torch.float32), training=True))
    assert_same_error(lambda: F.batch_norm(x, torch.zeros(2, device=DEVICE), torch.ones(2, device=DEVICE)))
    assert_same_error(lambda: F.batch_norm(make((0, 3, 5), torch.float32), None, None, training=True))


def test_batch_norm_stable_for_large_means():
    x = make(pick((4, 2, 20000), (64, 2, 2**18)), torch.float32) * 0.01 + 1e3
    with flag_gems.use_gems():
        ours = torch.ops.aten.native_batch_norm(x, None, None, None, None, True, 0.1, 1e-5)
    reference = torch.ops.aten.native_batch_norm(x.double(), None, None, None, None, True, 0.1, 1e-5)
    assert_close(ours[2], reference[2], torch.float32)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_batch_norm_stable_when_the_first_element_is_an_outlier(layout):
    # Statistics are taken relative to each channel's first element: here it sits 500
    # standard deviations off the mean, and the variance must still come out right.
    x = make(pick((4, 3, 40, 50), (64, 8, 64, 64)), torch.float32) * 0.01 + 1e3
    x[0, :, 0, 0] += 5
    x = x.contiguous(memory_format=layout)
    with flag_gems.use_gems():
        ours = torch.ops.aten.native_batch_norm(x, None, None, None, None, True, 0.1, 1e-5)
    reference = torch.ops.aten.native_batch_norm(x.double(), None, None, None, None, True, 0.1, 1e-5)
    assert_close(ours[1], reference[1], torch.float32)
    assert_close(ours[2], reference[2], torch.float32)
    # x - mean in fp32 is off by up to half an ulp of 1e3, which rstd scales.
    assert_close(ours[0], reference[0], torch.float32, atol=1e3 * 2**-23 * reference[2].max().item())
