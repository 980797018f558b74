"""The fused cross_entropy_loss, and F.cross_entropy under use_gems, against PyTorch in
fp64."""

import math

import pytest
import torch
import torch.nn.functional as F

import flag_gems
from flag_gems.testing import assert_close

from conftest import DEVICE, FLOAT_DTYPES, assert_same_error, make, pick
from loss_cases import REDUCTIONS, check, double, targets


CE_SHAPES = [
    (7,),
    pick((6, 9), (1024, 32000)),
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
        target = targets(() if len(shape) == 1 else shape[:1] + shape[2:], classes, ignore)
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
    xd = double(x)
    reference = F.cross_entropy(xd, double(target), double(weight), **kwargs)
    rows = max(x.numel() // max(x.shape[1 if x.dim() > 1 else 0], 1), 1)
    composite_half = through_gems and dtype in (torch.float16, torch.bfloat16)
    if composite_half:
        # the composite path rounds log-probabilities to the input dtype (one unit of
        # their magnitude, the logits'), whichever log_softmax runs: compare with native
        resolution = flag_gems.testing.RESOLUTION[dtype]
        magnitude = float(x.detach().abs().amax()) if x.numel() else 0.0
        torch.testing.assert_close(ours, native, rtol=resolution, atol=resolution * magnitude, equal_nan=True)
    else:
        check(ours, native, reference, dtype, reduce_dim=rows)
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
        check(ours_grad, native_grad, reference_grad, dtype)


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
    target = targets((x.shape[0],), x.shape[1], True)
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
            indices = targets((n + 1,), classes, True)
            weight = torch.rand(classes, device=DEVICE) + 0.1
            for target in (indices[:-1], indices[1:], make(x.shape, torch.float32).softmax(1)):
                for w, reduction, smoothing in ((None, "mean", 0.0), (weight, "sum", 0.1), (weight, "none", 0.0)):
                    xr = x.detach().requires_grad_()
                    xd = x.detach().double().requires_grad_()
                    kwargs = dict(reduction=reduction, label_smoothing=smoothing)
                    ours = flag_gems.cross_entropy_loss(xr, target, w, **kwargs)
                    exact = F.cross_entropy(xd, double(target), double(w), **kwargs)
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
    monkeypatch.setattr(flag_gems.ops.loss.cross_entropy, "_ce_plans", {})  # plans made before hold the usual tiles


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
        target = targets(shape[:1] + shape[2:] if x.dim() > 1 else (), classes, kind != "1d")
    if kind == "weighted":
        weight, smoothing = (torch.rand(shape[1], device=DEVICE) + 0.1).to(dtype), 0.1
    exact = x.detach().double().requires_grad_()
    reference = F.cross_entropy(exact, double(target), double(weight), reduction=reduction,
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
