"""Group, batch, instance and weight norm, forward and backward, against PyTorch in fp64."""

import pytest
import torch
import torch.nn.functional as F

import flag_gems
from flag_gems.testing import assert_close

from conftest import DEVICE, FLOAT_DTYPES, ON_GPU, assert_same_error, make, pick

SHAPES = [pick((4, 6), (256, 512)), pick((2, 6, 5), (16, 64, 1024)), pick((2, 6, 3, 4), (8, 64, 56, 56)),
          pick((2, 6, 2, 3, 2), (4, 32, 8, 16, 16))]
# Long reductions: split over programs, partials combined in a second pass.
LONG = pick((1, 2, 40000), (2, 32, 2**20))


def params(C, dtype, present=True):
    if not present:
        return None, None
    return make((C,), dtype), make((C,), dtype)


def reduced(shape, channels_only):
    """Elements per statistic (scales the absolute tolerance of sums)."""
    n = 1
    for s in shape:
        n *= s
    return max(n // shape[1] if channels_only else n // shape[0], 1)


def close(ours, native, reference, dtype=None, reduce_dim=1):
    assert ours.shape == native.shape and ours.dtype == native.dtype
    dtype = dtype or ours.dtype
    # Gradients are differences of O(1) terms: half results near zero carry O(1) rounding.
    atol = 1e-2 if dtype == torch.bfloat16 else 1e-3 if dtype == torch.float16 else 1e-4
    assert_close(ours, reference, dtype, reduce_dim=reduce_dim, atol=atol)


# ------------------------------------------------------------------------------------ group norm


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


# ------------------------------------------------------------------------------------ batch norm


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


# ------------------------------------------------------------------------------------ instance norm


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", SHAPES[1:], ids=str)
def test_instance_norm(dtype, shape):
    C = shape[1]
    x = make(shape, dtype)
    w, b = params(C, dtype)
    rm, rv = torch.zeros(C, device=DEVICE), torch.ones(C, device=DEVICE)
    rm64, rv64 = rm.double(), rv.double()
    reference = F.instance_norm(x.double(), rm64, rv64, w.double(), b.double(), True, 0.1, 1e-5)
    ours = flag_gems.instance_norm(x, w, b, rm, rv, True, 0.1, 1e-5)
    assert_close(ours, reference, dtype)
    assert_close(rm, rm64, torch.float32)
    assert_close(rv, rv64, torch.float32, atol=1e-3)
    eval_reference = F.instance_norm(x.double(), rm64, rv64, w.double(), b.double(), False, 0.1, 1e-5)
    assert_close(flag_gems.ops.instance_norm(x, w, b, rm, rv, False), eval_reference, dtype)
    with flag_gems.use_gems():  # torch's composite instance_norm runs our batch norm
        ours = F.instance_norm(x, None, None, w, b)
    assert_close(ours, F.instance_norm(x.double(), None, None, w.double(), b.double()), dtype)


def test_instance_norm_autograd(tmp_path):
    x = torch.randn(2, 3, 4, dtype=torch.float64, device=DEVICE, requires_grad=True)
    w = torch.randn(3, dtype=torch.float64, device=DEVICE, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, device=DEVICE, requires_grad=True)
    rm, rv = torch.zeros(3, dtype=torch.float64, device=DEVICE), torch.ones(3, dtype=torch.float64, device=DEVICE)
    assert torch.autograd.gradcheck(lambda *t: flag_gems.instance_norm(t[0], t[1], t[2]), (x, w, b))
    assert torch.autograd.gradcheck(lambda *t: flag_gems.instance_norm(t[0], t[1], t[2], rm, rv, False), (x, w, b))
    log = tmp_path / "record.log"
    # With cuDNN on, torch's composite batch_norm calls cudnn_batch_norm instead of native_batch_norm.
    with torch.backends.cudnn.flags(enabled=False), flag_gems.use_gems(record=True, path=str(log)):
        assert torch.autograd.gradcheck(lambda *t: F.instance_norm(t[0], weight=t[1], bias=t[2]), (x, w, b))
    ran = log.read_text()
    assert "native_batch_norm\ttriton" in ran and "native_batch_norm_backward\ttriton" in ran
    xb = make((2, 4, 9), torch.bfloat16).requires_grad_()
    dy = make(xb.shape, torch.bfloat16)
    (ours,) = torch.autograd.grad(flag_gems.instance_norm(xb), xb, dy)
    (reference,) = torch.autograd.grad(F.instance_norm(xb.double()), xb, dy.double())
    assert_close(ours, reference, torch.bfloat16)


def test_instance_norm_errors_go_to_torch():
    x = make((2, 3, 4), torch.float32)
    with pytest.raises(Exception):
        flag_gems.instance_norm(x, use_input_stats=False)  # no running stats to use
    with pytest.raises(ValueError):
        flag_gems.instance_norm(make((2, 3, 1), torch.float32))  # one value per instance


# ------------------------------------------------------------------------------------ weight norm


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape, dim", [(pick((7,), (4096,)), 0), (pick((5, 9), (4096, 4096)), 0),
                                        (pick((5, 9), (4096, 4096)), 1), (pick((4, 3, 2, 2), (256, 128, 3, 3)), 0),
                                        (pick((4, 3, 5), (64, 128, 512)), 2)], ids=str)
@pytest.mark.parametrize("one_pass", [True, False], ids=["one-pass", "partial-sums"])
def test_weight_norm(monkeypatch, dtype, shape, dim, one_pass):
    if not one_pass:  # rows too long for registers (the dim-0 kernel steps aside)
        from flag_gems import runtime

        vendor_config = runtime.config
        monkeypatch.setattr(runtime, "config", lambda kernel, default: (lambda *a: None)
                            if kernel == "weight_norm_rows" else vendor_config(kernel, default))
    v = make(shape, dtype)
    g_shape = [1] * len(shape)
    g_shape[dim] = shape[dim]
    g = make(g_shape, dtype)
    native = torch.ops.aten._weight_norm_interface(v, g, dim)
    with flag_gems.use_gems():
        ours = torch.ops.aten._weight_norm_interface(v, g, dim)
    reference = torch.ops.aten._weight_norm_interface(v.double(), g.double(), dim)
    for o, n, r in zip(ours, native, reference):
        close(o, n, r)
    # grad_v = g / |v| * (grad_w - v * P / |v|^2) cancels terms of size g / |v|: the error scales with it.
    cancelled = max((g.double().abs() / reference[1].abs()).max().item(), 1.0)
    grad_w = make(shape, dtype)
    args = (grad_w, v, g, native[1], dim)
    native = torch.ops.aten._weight_norm_interface_backward(*args)
    with flag_gems.use_gems():
        ours = torch.ops.aten._weight_norm_interface_backward(*args)
    reference = torch.ops.aten._weight_norm_interface_backward(grad_w.double(), v.double(), g.double(),
                                                               reference[1], dim)
    for o, n, r in zip(ours, native, reference):
        close(o, n, r, reduce_dim=v.numel() // shape[dim] * cancelled)


def test_weight_norm_autograd():
    v = torch.randn(4, 3, dtype=torch.float64, device=DEVICE, requires_grad=True)
    with flag_gems.use_gems():
        for dim in (0, 1):
            g = torch.randn([4, 1] if dim == 0 else [1, 3], dtype=torch.float64, device=DEVICE, requires_grad=True)
            assert torch.autograd.gradcheck(lambda a, c, d=dim: torch._weight_norm(a, c, d), (v, g))
        linear = torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(3, 4, device=DEVICE).double())
        x = torch.randn(2, 3, dtype=torch.float64, device=DEVICE)
        ours = torch.autograd.grad(linear(x).sum(), list(linear.parameters()))
    native = torch.autograd.grad(linear(x).sum(), list(linear.parameters()))
    for o, n in zip(ours, native):
        assert_close(o, n, torch.float64)


def test_weight_norm_strided_rows():
    v = make((9, 5), torch.float32).t()  # dim 0 rows strided: the partial-sums path
    g = make((5, 1), torch.float32)
    grad_w = make((9, 5), torch.float32).t()
    with flag_gems.use_gems():
        w, norms = torch.ops.aten._weight_norm_interface(v, g, 0)
        grads = torch.ops.aten._weight_norm_interface_backward(grad_w, v.contiguous(), g, norms, 0)
    assert_close(w, torch._weight_norm(v.double(), g.double(), 0), torch.float32)
    # contiguous copies: CPU's native kernel misreads a strided grad_w
    reference = torch.ops.aten._weight_norm_interface_backward(grad_w.double().contiguous(), v.double().contiguous(),
                                                               g.double(), norms.double(), 0)
    for ours, exact in zip(grads, reference):
        assert_close(ours, exact, torch.float32, reduce_dim=9)


def test_weight_norm_other_dims():
    v = make((3, 4, 5), torch.float32)
    g = make((1, 4, 1), torch.float32)
    with flag_gems.use_gems():
        ours = torch._weight_norm(v, g, 1)
        last = torch._weight_norm(v, make((1, 1, 5), torch.float32), -1)
    assert_close(ours, torch._weight_norm(v.double(), g.double(), 1), torch.float32)
    assert last.shape == v.shape
    assert_same_error(lambda: torch.ops.aten._weight_norm_interface(v, g, 1))
