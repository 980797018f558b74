"""What the loss tests share: fp64 references, class targets, comparisons."""

import torch

import flag_gems
from flag_gems.testing import assert_close

from conftest import DEVICE, make

REDUCTIONS = ["none", "mean", "sum"]


def double(value):
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.detach().double().requires_grad_(value.requires_grad)
    return value


def targets(shape, classes, ignore):
    target = torch.randint(0, classes, shape, device=DEVICE)
    if ignore and target.numel():
        target.view(-1)[::3] = -100
    return target


def check(ours, native, reference, dtype, reduce_dim=1):
    assert ours.dtype == native.dtype and ours.shape == native.shape
    assert_close(ours, reference, dtype, equal_nan=True, reduce_dim=reduce_dim)


def check_grads(native, ours, reference, x, xd, dtype, composite=False):
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
        check(ours_grad, native_grad, reference_grad, dtype)

