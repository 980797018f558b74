"""Losses (nll_loss, nll_loss2d, mse, smooth_l1, huber, binary_cross_entropy(_with_logits))
through the dispatcher, and the fused cross_entropy_loss, against PyTorch in fp64."""

import math

import pytest
import torch
import torch.nn.functional as F

import flag_gems
from flag_gems.testing import assert_close

from conftest import DEVICE, FLOAT_DTYPES, ON_GPU, assert_same_error, make, pick

REDUCTIONS = ["none", "mean", "sum"]


def _double(value):
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.detach().double().requires_grad_(value.requires_grad)
    return value


def _targets(shape, classes, ignore):
    target = torch.randint(0, classes, shape, device=DEVICE)
    if ignore and target.numel():
        target.view(-1)[::3] = -100
    return target


def _check(ours, native, reference, dtype, reduce_dim=1):
    assert ours.dtype == native.dtype and ours.shape == native.shape
    assert_close(ours, reference, dtype, equal_nan=True, reduce_dim=reduce_dim)


def _check_grads(native, ours, reference, x, xd, dtype, composite=False):
    """Gradients in ``x`` (``xd`` for the fp64 reference) through use_gems against the
    reference; a composite backward in half precision against native."""
    grad = make(ours.shape, dtype)
    (native_grad,) = torch.autograd.grad(native, x, grad)
    with flag_gems.use_gems():
        (ours_grad,) = torch.autograd.grad(ours, x, grad)
    (reference_grad,) = torch.autograd.grad(reference, xd, grad.double())
    if composite and dtype in (torch.float16, torch.bfloat16):
        resolution = 4 * flag_gems.testing.RESOLUTION[dtype]
        torch.testing.assert_close(ours_grad, native_grad, rtol=resolution, atol=resolution)
    else:
        _check(ours_grad, native_grad, reference_grad, dtype)


# ---- nll_loss / nll_loss2d ---------------------------------------------------------------

NLL_SHAPES = [
    (5,),  # one sample: aten's 1-d path, 0-d target
    pick((7, 5), (4096, 1000)),
    (0, 5),
    pick((2, 3, 4, 5), (16, 21, 64, 64)),  # nll_loss2d
    pick((3, 4, 6), (64, 10, 4096)),  # 3-d: PyTorch reshapes it for nll_loss2d
    pick((2, 3, 2, 2, 3), (4, 5, 8, 16, 16)),
]


def _nll_case(shape, dtype, weighted, ignore):
    classes = shape[0] if len(shape) == 1 else shape[1]
    x = make(shape, dtype).log_softmax(1 if len(shape) > 1 else 0)
    target_shape = () if len(shape) == 1 else shape[:1] + shape[2:]
    target = _targets(target_shape, classes, ignore)
    weight = torch.rand(classes, device=DEVICE, dtype=dtype) + 0.1 if weighted else None
    return x, target, weight


@pytest.mark.parametrize("shape", NLL_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted, ignore", [(False, False), (True, True)])
def test_nll_loss(shape, dtype, reduction, weighted, ignore):
    x, target, weight = _nll_case(shape, dtype, weighted, ignore)
    x.requires_grad_()
    native = F.nll_loss(x, target, weight, ignore_index=-100, reduction=reduction)
    with flag_gems.use_gems():
        ours = F.nll_loss(x, target, weight, ignore_index=-100, reduction=reduction)
    xd = _double(x)
    reference = F.nll_loss(xd, target, _double(weight), reduction=reduction)
    _check(ours, native, reference, dtype, reduce_dim=max(target.numel(), 1))
    if x.numel() == 0:
        return
    _check_grads(native, ours, reference, x, xd, dtype)


@pytest.mark.parametrize("op, shape", [("nll_loss_forward", pick((6, 4), (512, 512))),
                                       ("nll_loss_forward", (4,)),
                                       ("nll_loss2d_forward", pick((2, 4, 3, 2), (8, 16, 32, 32)))], ids=str)
@pytest.mark.parametrize("reduction", [0, 1, 2])
def test_nll_aten_total_weight_and_out(op, shape, reduction):
    x, target, weight = _nll_case(shape, torch.float32, True, True)
    fn = getattr(torch.ops.aten, op)
    native = fn(x, target, weight, reduction, -100)
    with flag_gems.use_gems():
        ours = fn(x, target, weight, reduction, -100)
        # NaN-filled out= tensors: every value must be written, not left as allocated
        output, total_weight = torch.full_like(native[0], float("nan")), torch.full_like(native[1], float("nan"))
        returned = fn.output(x, target, weight, reduction, -100, output=output, total_weight=total_weight)
    assert returned[0] is output and returned[1] is total_weight
    # native CUDA nll_loss2d with reduction='none' leaves total_weight unwritten (ours is 0, as CPU's)
    unwritten = ON_GPU and op == "nll_loss2d_forward" and reduction == 0
    for mine in (ours, (output, total_weight)):
        for a, b in zip(mine, native):
            assert a.shape == b.shape and a.dtype == b.dtype
            if not (unwritten and a is mine[1]):
                torch.testing.assert_close(a, b, equal_nan=True)
    assert not total_weight.isnan().any()


def test_nll_planned_layouts_are_not_mixed_up():
    """Each call layout gets its own launch plan: alternating input layouts (in place, off
    16-byte alignment, classes strided), targets, weights (dense and strided), reductions,
    out= tensors and gradient layouts each get their own right answer, repeatedly."""
    n, c = pick((6, 40), (512, 4096))
    flat = make((n * c + 1,), torch.float32)
    images = make(pick((2, 5, 3, 4), (8, 21, 32, 32)), torch.float32)
    inputs = [flat[:-1].view(n, c), flat[1:].view(n, c), flat[:-1].view(c, n).t(), images,
              images.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)]  # the last channels-last
    for _ in range(2):
        for x in inputs:
            classes, target_shape = x.shape[1], x.shape[:1] + x.shape[2:]
            indices = _targets((math.prod(target_shape) + 1,), classes, True)
            weights = (None, torch.rand(classes, device=DEVICE) + 0.1, torch.rand(2 * classes, device=DEVICE)[::2])
            for target in (indices[:-1].view(target_shape), indices[1:].view(target_shape)):
                for weight, reduction in zip(weights, ("mean", "none", "sum")):
                    xr = x.detach().requires_grad_()
                    # contiguous: native CPU's backward rejects a channels-last input
                    xd = x.detach().double().contiguous().requires_grad_()
                    with flag_gems.use_gems():
                        ours = F.nll_loss(xr, target, weight, reduction=reduction)
                    exact = F.nll_loss(xd, target, _double(weight), reduction=reduction)
                    assert_close(ours, exact, torch.float32, reduce_dim=target.numel())
                    grads = [make(ours.shape, torch.float32)]
                    if reduction == "none":  # strided gradients
                        grads.append(make((2 * target.numel(),), torch.float32)[::2].view(target.shape))
                    for g in grads:
                        with flag_gems.use_gems():
                            (mine,) = torch.autograd.grad(ours, xr, g, retain_graph=True)
                        (expected,) = torch.autograd.grad(exact, xd, g.double(), retain_graph=True)
                        assert_close(mine, expected, torch.float32)
                if x.dim() == 2:  # out= tensors, one of them off 16-byte alignment
                    buffer = torch.full((5,), math.nan, device=DEVICE)
                    output, total_weight = buffer[1:2].view(()), buffer[4:5].view(())
                    with flag_gems.use_gems():
                        torch.ops.aten.nll_loss_forward.output(x, target, weights[1], 1, -100, output=output,
                                                               total_weight=total_weight)
                    assert_close(output, F.nll_loss(x.double(), target, weights[1].double()), torch.float32,
                                 reduce_dim=n)


@pytest.mark.parametrize("weight_value", [None, 0.0, 0.7])
@pytest.mark.parametrize("ignored", [False, True])
def test_one_sample_mean_follows_cuda(monkeypatch, weight_value, ignored):
    """aten's CUDA rule for the mean of input [C], forced on any device: the unweighted
    loss, 0 when ignored, NaN at a zero weight; total_weight the target's weight."""
    monkeypatch.setattr(flag_gems.ops.loss.loss, "_one_sample_mean_rule",
                        lambda input, reduction: input.dim() == 1 and reduction == 1)
    for plans in ("_nll_plans", "_ce_plans"):  # launch plans made under the device's own rule
        monkeypatch.setattr(flag_gems.ops.loss.loss, plans, {})
    x = make((5,), torch.float32).log_softmax(0)
    target = torch.tensor(-100 if ignored else 2, device=DEVICE)
    weight = None if weight_value is None else torch.full((5,), weight_value, device=DEVICE)
    with flag_gems.use_gems():
        loss, total_weight = torch.ops.aten.nll_loss_forward(x, target, weight, 1, -100)
    fused = flag_gems.cross_entropy_loss(x, target, weight)
    w = 1.0 if weight_value is None else weight_value
    expected = torch.tensor(0.0 if ignored else float("nan") if w == 0 else -float(x[2]), device=DEVICE)
    torch.testing.assert_close(loss, expected, equal_nan=True)
    torch.testing.assert_close(total_weight, torch.tensor(0.0 if ignored else w, device=DEVICE))
    torch.testing.assert_close(fused, expected, equal_nan=True)  # x is already log-probabilities


def test_nll_all_ignored_and_non_contiguous():
    x = make(pick((12, 6), (1024, 512)), torch.float32).log_softmax(1)
    ignored = torch.full((x.shape[0],), 3, device=DEVICE)
    for reduction in REDUCTIONS:
        native = F.nll_loss(x, ignored, ignore_index=3, reduction=reduction)
        with flag_gems.use_gems():
            ours = F.nll_loss(x, ignored, ignore_index=3, reduction=reduction)
        torch.testing.assert_close(ours, native, equal_nan=True)
    wide = make((x.shape[1], 2 * x.shape[0]), torch.float32).t()[::2]  # transposed and strided
    target = _targets((2 * x.shape[0],), x.shape[1], True)[::2]
    weight = torch.rand(2 * x.shape[1], device=DEVICE)[::2]
    x4 = make(pick((2, 5, 3, 4), (8, 16, 64, 64)), torch.float32).permute(0, 3, 1, 2)  # channels last-ish
    t4 = _targets((x4.shape[0], *x4.shape[2:]), x4.shape[1], True)
    for inputs in ((wide, target, weight), (x4, t4, None)):
        for reduction in REDUCTIONS:
            native = F.nll_loss(*inputs, reduction=reduction)
            with flag_gems.use_gems():
                ours = F.nll_loss(*inputs, reduction=reduction)
            assert_close(ours, native, torch.float32, reduce_dim=inputs[1].numel())


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_nll_many_targets_split_the_sum(reduction):
    x = make(pick((20000, 3), (1 << 20, 8)), torch.float32).log_softmax(1)
    target = _targets((x.shape[0],), 3, True)
    weight = torch.rand(x.shape[1], device=DEVICE) + 0.1
    with flag_gems.use_gems():
        ours = torch.ops.aten.nll_loss_forward(x, target, weight, REDUCTIONS.index(reduction), -100)
    reference = torch.ops.aten.nll_loss_forward(x.double(), target, weight.double(), REDUCTIONS.index(reduction),
                                                -100)
    for a, b in zip(ours, reference):
        assert_close(a, b, torch.float32, reduce_dim=64)


def test_nll_byte_target_and_expanded_weight():
    x = make((6, 4), torch.float32).log_softmax(1)
    target = torch.tensor([0, 3, 2, 1, 1, 0], dtype=torch.uint8, device=DEVICE)
    weight = torch.tensor(0.5, device=DEVICE).expand(4)
    for reduction in REDUCTIONS:
        with flag_gems.use_gems():
            ours = F.nll_loss(x, target, weight, reduction=reduction)
            fused = flag_gems.cross_entropy_loss(x, target, weight, reduction, label_smoothing=0.2)
        torch.testing.assert_close(ours, F.nll_loss(x, target.long(), weight, reduction=reduction))
        torch.testing.assert_close(fused, F.cross_entropy(x, target.long(), weight, reduction=reduction,
                                                          label_smoothing=0.2))


def test_nll_gradcheck():
    x = torch.randn(4, 3, dtype=torch.float64, device=DEVICE, requires_grad=True)
    target = torch.tensor([0, 2, -100, 1], device=DEVICE)
    weight = torch.rand(3, dtype=torch.float64, device=DEVICE)
    x4 = torch.randn(2, 3, 2, 2, dtype=torch.float64, device=DEVICE, requires_grad=True)
    t4 = torch.randint(0, 3, (2, 2, 2), device=DEVICE)
    with flag_gems.use_gems():
        for reduction in REDUCTIONS:
            assert torch.autograd.gradcheck(lambda a: F.nll_loss(a, target, weight, reduction=reduction), (x,))
            assert torch.autograd.gradcheck(lambda a: F.nll_loss(a, t4, weight, reduction=reduction), (x4,))


def test_nll_errors():
    x = make((4, 3), torch.float32)
    target = torch.tensor([0, 2, 1, 1], device=DEVICE)
    assert_same_error(lambda: F.nll_loss(x, target[:3]))  # batch size mismatch
    assert_same_error(lambda: F.nll_loss(x, target.int()))  # target dtype
    assert_same_error(lambda: F.nll_loss(x, target.float()))
    assert_same_error(lambda: F.nll_loss(x, target, torch.ones(4, device=DEVICE)))  # weight size
    assert_same_error(lambda: F.nll_loss(x, target, torch.ones(3, device=DEVICE, dtype=torch.float64)))
    assert_same_error(lambda: torch.ops.aten.nll_loss_forward(x, target, None, 5, -100))  # reduction
    assert_same_error(lambda: F.nll_loss(x[0], target))  # 1-d input, 1-d target
    if not ON_GPU:  # native CUDA stops on a device assert; ours masks (see test_nll_out_of_range_on_gpu)
        assert_same_error(lambda: F.nll_loss(x, torch.tensor([0, 3, 1, 1], device=DEVICE)))
        assert_same_error(lambda: F.nll_loss(x, torch.tensor([0, -1, 1, 1], device=DEVICE)))


@pytest.mark.skipif(not ON_GPU, reason="on the CPU device such calls go native")
def test_nll_out_of_range_on_gpu():
    x = make((4, 3), torch.float32).requires_grad_()
    target = torch.tensor([0, 7, 1, -5], device=DEVICE)
    with flag_gems.use_gems():
        loss = F.nll_loss(x, target, reduction="none")
        assert torch.isnan(loss[1]) and torch.isnan(loss[3]) and not torch.isnan(loss[0])
        assert torch.isnan(F.nll_loss(x, target))
        (grad,) = torch.autograd.grad(loss.sum(), x)
    assert (grad[1] == 0).all() and grad[0, 0] == -1


# ---- fused cross_entropy_loss and F.cross_entropy under use_gems -------------------------

CE_SHAPES = [
    (7,),
    pick((6, 9), (4096, 32000)),
    pick((3, 3000), (64, 50000)),  # rows longer than one tile
    (0, 5),
    pick((2, 5, 3, 2), (8, 21, 64, 64)),  # class dim not last: strided rows
]


def _ce_case(shape, dtype, probs, weighted, ignore):
    classes = shape[0] if len(shape) == 1 else shape[1]
    x = (make(shape, dtype) * 3).requires_grad_()
    if probs:
        target = make(shape, dtype).softmax(1 if len(shape) > 1 else 0)
    else:
        target = _targets(() if len(shape) == 1 else shape[:1] + shape[2:], classes, ignore)
    weight = torch.rand(classes, device=DEVICE, dtype=dtype) + 0.1 if weighted else None
    return x, target, weight


def _ce_compare(call, shape, dtype, probs, weighted, smoothing, reduction, through_gems):
    x, target, weight = _ce_case(shape, dtype, probs, weighted, not probs)
    kwargs = dict(reduction=reduction, label_smoothing=smoothing)
    native = F.cross_entropy(x, target, weight, **kwargs)
    if through_gems:
        with flag_gems.use_gems():
            ours = call(x, target, weight, **kwargs)
    else:
        ours = call(x, target, weight, **kwargs)
    xd = _double(x)
    reference = F.cross_entropy(xd, _double(target), _double(weight), **kwargs)
    rows = max(x.numel() // max(x.shape[1 if x.dim() > 1 else 0], 1), 1)
    composite_half = through_gems and dtype in (torch.float16, torch.bfloat16)
    if composite_half:
        # the composite path rounds log-probabilities to the input dtype (one unit of
        # their magnitude, the logits'), whichever log_softmax runs: compare with native
        resolution = flag_gems.testing.RESOLUTION[dtype]
        magnitude = float(x.detach().abs().amax()) if x.numel() else 0.0
        torch.testing.assert_close(ours, native, rtol=resolution, atol=resolution * magnitude, equal_nan=True)
    else:
        _check(ours, native, reference, dtype, reduce_dim=rows)
    if x.numel() == 0:
        return
    grad = make(ours.shape, dtype)
    (native_grad,) = torch.autograd.grad(native, x, grad)
    if through_gems:
        with flag_gems.use_gems():
            (ours_grad,) = torch.autograd.grad(ours, x, grad)
    else:
        (ours_grad,) = torch.autograd.grad(ours, x, grad)
    (reference_grad,) = torch.autograd.grad(reference, xd, grad.double())
    if composite_half:
        torch.testing.assert_close(ours_grad, native_grad, rtol=resolution, atol=resolution)
    else:
        _check(ours_grad, native_grad, reference_grad, dtype)


def _fused(x, target, weight, reduction, label_smoothing):
    return flag_gems.cross_entropy_loss(x, target, weight, reduction=reduction, label_smoothing=label_smoothing)


@pytest.mark.parametrize("shape", CE_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("probs, weighted, smoothing", [(False, False, 0.0), (False, True, 0.0),
                                                        (False, True, 0.2), (True, False, 0.0),
                                                        (True, True, 0.1)])
def test_cross_entropy_loss_fused(shape, dtype, reduction, probs, weighted, smoothing):
    _ce_compare(_fused, shape, dtype, probs, weighted, smoothing, reduction, through_gems=False)


@pytest.mark.parametrize("probs, weighted, smoothing", [(False, False, 0.0), (False, True, 0.2), (True, True, 0.1)])
def test_cross_entropy_loss_tiles(monkeypatch, probs, weighted, smoothing):
    """Rows read a tile at a time (running statistics), as long vocabularies are on the GPU."""
    _small_ce_tiles(monkeypatch)
    for reduction in REDUCTIONS:
        _ce_compare(_fused, (5, 30), torch.float32, probs, weighted, smoothing, reduction, through_gems=False)


@pytest.mark.parametrize("shape", CE_SHAPES[1:], ids=str)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("probs, weighted, smoothing", [(False, True, 0.0), (False, False, 0.3),
                                                        (True, True, 0.2)])
def test_cross_entropy_through_use_gems(shape, dtype, reduction, probs, weighted, smoothing):
    _ce_compare(F.cross_entropy, shape, dtype, probs, weighted, smoothing, reduction, through_gems=True)


def test_cross_entropy_non_contiguous_and_fallbacks():
    x = make(pick((9, 20), (2048, 4096)), torch.float32).t()  # classes strided
    target = _targets((x.shape[0],), x.shape[1], True)
    weight = torch.rand(2 * x.shape[1], device=DEVICE)[::2]
    for reduction in REDUCTIONS:
        assert_close(flag_gems.cross_entropy_loss(x, target, weight, reduction=reduction, label_smoothing=0.1),
                     F.cross_entropy(x.double(), target, weight.double(), reduction=reduction, label_smoothing=0.1),
                     torch.float32, reduce_dim=x.shape[0])
    # integer reduction (aten's enum), as FlagGems' function takes it
    torch.testing.assert_close(flag_gems.cross_entropy_loss(x, target, None, 2), F.cross_entropy(x, target,
                                                                                                 reduction="sum"))
    # inputs the kernels do not take go to F.cross_entropy: its errors and results
    for bad in (dict(reduction="avg"), dict(label_smoothing=1.5), dict(ignore_index=3)):
        probs = x.softmax(1) if "ignore_index" in bad else target
        assert type(_error(lambda: F.cross_entropy(x, probs, **bad))) is type(
            _error(lambda: flag_gems.cross_entropy_loss(x, probs, **bad)))
    assert_same_error(lambda: flag_gems.cross_entropy_loss(x, target[:-1]))
    assert_same_error(lambda: flag_gems.cross_entropy_loss(x, target, torch.ones(3, device=DEVICE)))


def test_cross_entropy_planned_layouts_are_not_mixed_up():
    """Each call layout gets its own launch plan: alternating layouts of one shape (in place,
    off 16-byte alignment, classes strided, sliced), targets, weights, reductions and
    gradient layouts each get their own right answer, on first and repeated calls."""
    n, c = pick((6, 40), (512, 4096))
    flat = make((n * c + 1,), torch.float32)
    inputs = [flat[:-1].view(n, c), flat[1:].view(n, c), flat[:-1].view(c, n).t(), flat[:-1].view(n, c)[:, ::2]]
    for _ in range(2):
        for x in inputs:
            classes = x.shape[1]
            indices = _targets((n + 1,), classes, True)
            weight = torch.rand(classes, device=DEVICE) + 0.1
            for target in (indices[:-1], indices[1:], make(x.shape, torch.float32).softmax(1)):
                for w, reduction, smoothing in ((None, "mean", 0.0), (weight, "sum", 0.1), (weight, "none", 0.0)):
                    xr = x.detach().requires_grad_()
                    xd = x.detach().double().requires_grad_()
                    kwargs = dict(reduction=reduction, label_smoothing=smoothing)
                    ours = flag_gems.cross_entropy_loss(xr, target, w, **kwargs)
                    exact = F.cross_entropy(xd, _double(target), _double(w), **kwargs)
                    assert_close(ours, exact, torch.float32, reduce_dim=n)
                    grads = [make(ours.shape, torch.float32)]
                    if reduction == "none":  # strided and expanded (stride 0) gradients
                        grads += [make((2 * n,), torch.float32)[::2], torch.ones(()).to(DEVICE).expand(n)]
                    for g in grads:
                        (mine,) = torch.autograd.grad(ours, xr, g, retain_graph=True)
                        (expected,) = torch.autograd.grad(exact, xd, g.double(), retain_graph=True)
                        assert_close(mine, expected, torch.float32)


def _small_ce_tiles(monkeypatch):
    """Rows two at a time, classes eight at a time: several programs, several tiles a row."""
    from flag_gems import runtime

    tiles = {"cross_entropy": lambda M, C, contiguous: (2, 8, 4, False),
             "cross_entropy_with_grad": lambda M, C, contiguous: (2, 8, 4, False),
             "cross_entropy_backward": lambda M, C, contiguous: (2, 8, 4)}
    vendor_config = runtime.config
    monkeypatch.setattr(runtime, "config", lambda kernel, default: tiles.get(kernel) or vendor_config(kernel, default))
    monkeypatch.setattr(flag_gems.ops.loss.loss, "_ce_plans", {})  # plans made before hold the usual tiles


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("kind", ["weighted", "probabilities", "3d", "classes strided", "1d"])
@pytest.mark.parametrize("tiles", ["usual", "small"])
def test_cross_entropy_gradient_from_the_forward(monkeypatch, dtype, reduction, kind, tiles):
    """A loss that needs a gradient gets it from the forward kernel, for an incoming 1: a
    backward of 1 returns it, bit for bit what the backward kernel computes from scratch;
    any other gradient, or a second backward of a retained graph (even after the first
    result was changed in place), is computed from scratch."""
    if tiles == "small":
        _small_ce_tiles(monkeypatch)
    shape = {"3d": pick((3, 10, 4), (64, 1000, 8)), "1d": pick((40,), (32000,))}.get(kind, pick((6, 40), (512, 4096)))
    x = make(shape, dtype) if kind != "classes strided" else make(shape[::-1], dtype).t()
    x.requires_grad_()
    classes = shape[x.dim() > 1]
    weight, smoothing = None, 0.0
    if kind == "probabilities":
        target = make(shape, dtype).softmax(1)
    else:
        target = _targets(shape[:1] + shape[2:] if x.dim() > 1 else (), classes, kind != "1d")
    if kind == "weighted":
        weight, smoothing = (torch.rand(shape[1], device=DEVICE) + 0.1).to(dtype), 0.1
    exact = x.detach().double().requires_grad_()
    reference = F.cross_entropy(exact, _double(target), _double(weight), reduction=reduction,
                                label_smoothing=smoothing)
    (expected,) = torch.autograd.grad(reference, exact)
    for _ in range(2):  # the first call of a layout, then a planned one
        loss = flag_gems.cross_entropy_loss(x, target, weight, reduction, label_smoothing=smoothing)
        assert_close(loss, reference.to(dtype), dtype, reduce_dim=math.prod(shape) // classes)
        (first,) = torch.autograd.grad(loss, x, retain_graph=True)
        (again,) = torch.autograd.grad(loss, x, retain_graph=True)
        torch.testing.assert_close(first, again, rtol=0, atol=0)
        assert_close(first, expected.to(dtype), dtype)
        first.zero_()
        (scaled,) = torch.autograd.grad(loss, x, torch.tensor(-2.5, device=DEVICE, dtype=dtype), retain_graph=True)
        assert_close(scaled, (expected * -2.5).to(dtype), dtype)
        x.grad = None
        loss.backward()
        torch.testing.assert_close(x.grad, again, rtol=0, atol=0)
        scaled_loss = flag_gems.cross_entropy_loss(x, target, weight, reduction, label_smoothing=smoothing) * 3
        (scaled,) = torch.autograd.grad(scaled_loss, x)
        assert_close(scaled, (expected * 3).to(dtype), dtype)
    changed = flag_gems.cross_entropy_loss(x, target, weight, reduction)
    with torch.no_grad():
        x.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        changed.backward()


def test_cross_entropy_gradient_from_the_forward_without_counted_targets():
    """Every target ignored, or no sample at all: a mean of 0/0 (NaN, as native), a zero
    (or empty) gradient."""
    classes = pick(30, 4096)
    for rows in (pick(5, 256), 0):
        x = make((rows, classes), torch.float32).requires_grad_()
        target = torch.full((rows,), -100, device=DEVICE)
        loss = flag_gems.cross_entropy_loss(x, target)
        assert torch.isnan(loss) and torch.isnan(F.cross_entropy(x, target))
        (grad,) = torch.autograd.grad(loss, x)
        torch.testing.assert_close(grad, torch.zeros_like(x), rtol=0, atol=0)


def _error(fn):
    try:
        fn()
    except Exception as error:  # noqa: BLE001 - the test compares exception types
        return error
    return None


def test_cross_entropy_gradcheck():
    x = torch.randn(3, 4, dtype=torch.float64, device=DEVICE, requires_grad=True)
    target = torch.tensor([1, -100, 3], device=DEVICE)
    probs = torch.rand(3, 4, dtype=torch.float64, device=DEVICE).softmax(1)
    weight = torch.rand(4, dtype=torch.float64, device=DEVICE) + 0.1
    x3 = torch.randn(2, 3, 2, dtype=torch.float64, device=DEVICE, requires_grad=True)
    t3 = torch.randint(0, 3, (2, 2), device=DEVICE)
    for reduction in REDUCTIONS:
        for t, s in ((target, 0.0), (target, 0.25), (probs, 0.1)):
            assert torch.autograd.gradcheck(lambda a: _fused(a, t, weight, reduction, s), (x,))
            with flag_gems.use_gems():
                assert torch.autograd.gradcheck(
                    lambda a: F.cross_entropy(a, t, weight, reduction=reduction, label_smoothing=s), (x,))
        assert torch.autograd.gradcheck(lambda a: _fused(a, t3, None, reduction, 0.1), (x3,))


def test_kl_div_through_use_gems():
    x = make(pick((5, 7), (1024, 1024)), torch.float32).log_softmax(1).requires_grad_()
    target = make(x.shape, torch.float32).softmax(1)
    for log_target in (False, True):
        t = target.log() if log_target else target
        for reduction in ("none", "sum", "batchmean"):
            native = F.kl_div(x, t, reduction=reduction, log_target=log_target)
            with flag_gems.use_gems():
                ours = F.kl_div(x, t, reduction=reduction, log_target=log_target)
                (ours_grad,) = torch.autograd.grad(ours.sum(), x)
            (native_grad,) = torch.autograd.grad(native.sum(), x)
            assert_close(ours, native, torch.float32, reduce_dim=x.numel())
            assert_close(ours_grad, native_grad, torch.float32)


# ---- pointwise losses ----------------------------------------------------------------------


def _unit(shape, dtype):
    return torch.rand(shape, device=DEVICE, dtype=dtype).clamp(0.01, 0.99)


POINTWISE = {
    "mse": (lambda x, y, w, r: F.mse_loss(x, y, reduction=r), False),
    "smooth_l1": (lambda x, y, w, r: F.smooth_l1_loss(x, y, reduction=r, beta=0.5), False),
    "smooth_l1_beta0": (lambda x, y, w, r: F.smooth_l1_loss(x, y, reduction=r, beta=0.0), False),
    "huber": (lambda x, y, w, r: F.huber_loss(x, y, reduction=r, delta=0.7), False),
    "bce": (lambda x, y, w, r: F.binary_cross_entropy(x, y, weight=w, reduction=r), True),
    "bce_logits": (lambda x, y, w, r: F.binary_cross_entropy_with_logits(x, y, weight=w, reduction=r,
                                                                         pos_weight=w), False),
}

POINTWISE_SHAPES = [(), (0, 3), pick((6, 7), (4096, 4096)), pick((2, 3, 5), (64, 64, 1000))]


def _pointwise_inputs(kind, shape, dtype, weighted):
    unit_input = POINTWISE[kind][1]
    x = (_unit(shape, dtype) if unit_input else make(shape, dtype)).requires_grad_()
    y = _unit(shape, dtype) if kind.startswith("bce") else make(shape, dtype)
    w = torch.rand(shape[-1:], device=DEVICE, dtype=dtype) + 0.5 if weighted else None
    return x, y, w


def _pointwise_compare(kind, x, y, w, reduction, dtype):
    call = POINTWISE[kind][0]
    native = call(x, y, w, reduction)
    with flag_gems.use_gems():
        ours = call(x, y, w, reduction)
    xd = _double(x)
    reference = call(xd, _double(y), _double(w), reduction)
    _check(ours, native, reference, dtype, reduce_dim=max(x.numel(), 1))
    if x.numel() == 0:
        return
    # the backward of bce_logits is PyTorch's composite of rounded half-precision steps
    _check_grads(native, ours, reference, x, xd, dtype, composite=kind == "bce_logits")


@pytest.mark.parametrize("kind", list(POINTWISE))
@pytest.mark.parametrize("shape", POINTWISE_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_pointwise_losses(kind, shape, dtype, reduction):
    weighted = kind.startswith("bce") and len(shape) > 0
    _pointwise_compare(kind, *_pointwise_inputs(kind, shape, dtype, weighted), reduction, dtype)


@pytest.mark.parametrize("kind", list(POINTWISE))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_pointwise_losses_strided_and_broadcast(kind, reduction):
    x, y, w = _pointwise_inputs(kind, pick((8, 6), (2048, 4096)), torch.float32, kind.startswith("bce"))
    xt = x.detach().t().requires_grad_()  # transposed: the fused reduction takes the unreduced path
    _pointwise_compare(kind, xt, y.t(), None if w is None else w[:1].expand(xt.shape[-1]), reduction,
                       torch.float32)
    if w is not None:  # weight of another broadcastable shape
        _pointwise_compare(kind, x, y, torch.rand(x.shape[0], 1, device=DEVICE) + 0.5, reduction, torch.float32)


def test_pointwise_losses_large_sum_splits():
    x, y = make(pick((70000,), (64 << 20,)), torch.float32), make(pick((70000,), (64 << 20,)), torch.float32)
    with flag_gems.use_gems():
        ours = F.mse_loss(x, y)
    assert_close(ours, F.mse_loss(x.double(), y.double()), torch.float32, reduce_dim=64)


def test_pointwise_losses_gradcheck_and_out():
    x = torch.rand(3, 4, dtype=torch.float64, device=DEVICE).clamp(0.05, 0.95).requires_grad_()
    y = torch.rand(3, 4, dtype=torch.float64, device=DEVICE)
    w = torch.rand(4, dtype=torch.float64, device=DEVICE)
    with flag_gems.use_gems():
        for reduction in REDUCTIONS:
            for kind, (call, _) in POINTWISE.items():
                if kind != "smooth_l1_beta0":
                    assert torch.autograd.gradcheck(lambda a: call(a, y, w, reduction), (x,))
        out = torch.empty((), dtype=torch.float64, device=DEVICE)
        assert torch.ops.aten.mse_loss.out(x.detach(), y, 1, out=out) is out
    torch.testing.assert_close(out, F.mse_loss(x.detach(), y))


def test_pointwise_losses_errors():
    x, y = make((4, 3), torch.float32), make((4, 3), torch.float32)
    assert_same_error(lambda: F.smooth_l1_loss(x, y, beta=-1.0))
    assert_same_error(lambda: F.huber_loss(x, y, delta=0.0))
    assert_same_error(lambda: F.mse_loss(x, y.double()))
    assert_same_error(lambda: torch.ops.aten.mse_loss(x, make((5, 3), torch.float32)))
    assert_same_error(lambda: F.binary_cross_entropy(x.sigmoid(), y.sigmoid(), weight=torch.ones(5, device=DEVICE)))
    assert_same_error(lambda: F.binary_cross_entropy_with_logits(x, y, pos_weight=torch.ones(5, device=DEVICE)))
    if not ON_GPU:  # native CUDA asserts on the device
        assert_same_error(lambda: F.binary_cross_entropy(x, y.sigmoid()))
