"""The elementwise losses (mse, smooth_l1, huber, binary_cross_entropy(_with_logits))
through the dispatcher, and the composite kl_div, against PyTorch in fp64."""

import pytest
import torch
import torch.nn.functional as F

import flag_gems
from flag_gems.testing import assert_close

from conftest import DEVICE, FLOAT_DTYPES, ON_GPU, assert_same_error, make, pick
from loss_cases import REDUCTIONS, check, check_grads, double



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
    xd = double(x)
    reference = call(xd, double(y), double(w), reduction)
    check(ours, native, reference, dtype, reduce_dim=max(x.numel(), 1))
    if x.numel() == 0:
        return
    # the backward of bce_logits is PyTorch's composite of rounded half-precision steps
    check_grads(native, ours, reference, x, xd, dtype, composite=kind == "bce_logits")


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

