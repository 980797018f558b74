"""nll_loss / nll_loss2d (forward and backward rows) through the dispatcher, against
PyTorch in fp64."""

import math

import pytest
import torch
import torch.nn.functional as F

import flag_gems
from flag_gems.testing import assert_close

from conftest import DEVICE, FLOAT_DTYPES, ON_GPU, assert_same_error, make, pick
from loss_cases import REDUCTIONS, check, check_grads, double, targets


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
    target = targets(target_shape, classes, ignore)
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
    xd = double(x)
    reference = F.nll_loss(xd, target, double(weight), reduction=reduction)
    check(ours, native, reference, dtype, reduce_dim=max(target.numel(), 1))
    if x.numel() == 0:
        return
    check_grads(native, ours, reference, x, xd, dtype)


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
            indices = targets((math.prod(target_shape) + 1,), classes, True)
            weights = (None, torch.rand(classes, device=DEVICE) + 0.1, torch.rand(2 * classes, device=DEVICE)[::2])
            for target in (indices[:-1].view(target_shape), indices[1:].view(target_shape)):
                for weight, reduction in zip(weights, ("mean", "none", "sum")):
                    xr = x.detach().requires_grad_()
                    # contiguous: native CPU's backward rejects a channels-last input
                    xd = x.detach().double().contiguous().requires_grad_()
                    with flag_gems.use_gems():
                        ours = F.nll_loss(xr, target, weight, reduction=reduction)
                    exact = F.nll_loss(xd, target, double(weight), reduction=reduction)
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



def test_nll_all_ignored_and_non_contiguous():
    x = make(pick((12, 6), (1024, 512)), torch.float32).log_softmax(1)
    ignored = torch.full((x.shape[0],), 3, device=DEVICE)
    for reduction in REDUCTIONS:
        native = F.nll_loss(x, ignored, ignore_index=3, reduction=reduction)
        with flag_gems.use_gems():
            ours = F.nll_loss(x, ignored, ignore_index=3, reduction=reduction)
        torch.testing.assert_close(ours, native, equal_nan=True)
    wide = make((x.shape[1], 2 * x.shape[0]), torch.float32).t()[::2]  # transposed and strided
    target = targets((2 * x.shape[0],), x.shape[1], True)[::2]
    weight = torch.rand(2 * x.shape[1], device=DEVICE)[::2]
    x4 = make(pick((2, 5, 3, 4), (8, 16, 64, 64)), torch.float32).permute(0, 3, 1, 2)  # channels last-ish
    t4 = targets((x4.shape[0], *x4.shape[2:]), x4.shape[1], True)
    for inputs in ((wide, target, weight), (x4, t4, None)):
        for reduction in REDUCTIONS:
            native = F.nll_loss(*inputs, reduction=reduction)
            with flag_gems.use_gems():
                ours = F.nll_loss(*inputs, reduction=reduction)
            assert_close(ours, native, torch.float32, reduce_dim=inputs[1].numel())


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_nll_many_targets_split_the_sum(reduction):
    x = make(pick((20000, 3), (1 << 20, 8)), torch.float32).log_softmax(1)
    target = targets((x.shape[0],), 3, True)
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


