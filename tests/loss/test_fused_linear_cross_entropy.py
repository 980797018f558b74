"""fused_linear_cross_entropy and FusedLinearCrossEntropyLoss against F.cross_entropy of
F.linear computed in fp64: the loss and the gradients of input, weight and bias."""

import pytest
import torch
import torch.nn.functional as F

import flag_gems
from flag_gems.ops.loss.fused_linear_cross_entropy import _chunk_rows
from flag_gems.testing import RESOLUTION

from conftest import DEVICE, error_of, make, pick
from loss_cases import REDUCTIONS

# (N, H, V): on the CPU two chunks, of 8 and 4 rows; V not a power of two
N, H, V = pick((12, 32, 60), (1000, 512, 3000))
CHUNK = _chunk_rows(N, V, H)
DTYPES = [torch.float16, torch.bfloat16, torch.float32]
VARIANTS = {"plain": {}, "bias, smoothing": dict(bias=True, label_smoothing=0.1),
            "softcap, class weights": dict(softcap=3.0, ce_weight=True)}


def _operands(dtype, bias=False, ce_weight=False):
    """Hidden states, lm_head weight (logits of a few units, as a model's), bias, class
    weights and targets: a third of them ignored, and all of the last chunk's."""
    hidden = make((N, H), dtype).requires_grad_()
    weight = (make((V, H), dtype) * H ** -0.5 * 2).detach().requires_grad_()
    bias = make((V,), dtype).requires_grad_() if bias else None
    ce_weight = torch.rand(V, device=DEVICE) + 0.5 if ce_weight else None
    target = torch.randint(0, V, (N,), device=DEVICE)
    target[::3] = -100
    target[(N - 1) // CHUNK * CHUNK:] = -100
    return hidden, weight, bias, ce_weight, target


def _reference(hidden, weight, bias, ce_weight, target, softcap=None, **kwargs):
    """(loss, its operands in fp64) of the unfused composition in fp64."""
    exact = [None if t is None else t.detach().double().requires_grad_() for t in (hidden, weight, bias)]
    logits = F.linear(*exact)
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    loss = F.cross_entropy(logits, target, None if ce_weight is None else ce_weight.double(), **kwargs)
    return loss, exact


def _close(ours, exact, dtype):
    """Within the input dtype's resolution, against the largest value (the results come
    from GEMMs whose operands are rounded to ``dtype``)."""
    resolution = RESOLUTION[dtype]
    exact = exact.detach()
    scale = float(exact.abs().max()) if exact.numel() else 0.0
    torch.testing.assert_close(ours.double(), exact, rtol=2 * resolution, atol=resolution * scale,
                               equal_nan=True)


def _check_gradients(loss, operands, reference, exact, dtype, retain_graph=False):
    incoming = make(loss.shape, torch.float32)
    wanted = [t for t in operands if t is not None]
    ours = torch.autograd.grad(loss, wanted, incoming, retain_graph=retain_graph)
    expected = torch.autograd.grad(reference, [t for t in exact if t is not None], incoming.double(),
                                   retain_graph=True)
    for mine, theirs, operand in zip(ours, expected, wanted):
        assert mine.dtype == operand.dtype and mine.shape == operand.shape
        _close(mine, theirs, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_fused_linear_cross_entropy(dtype, reduction, variant):
    options = dict(VARIANTS[variant])
    hidden, weight, bias, ce_weight, target = _operands(dtype, options.pop("bias", False),
                                                       options.pop("ce_weight", False))
    loss = flag_gems.fused_linear_cross_entropy(hidden, weight, target, bias, ce_weight=ce_weight,
                                                reduction=reduction, **options)
    reference, exact = _reference(hidden, weight, bias, ce_weight, target, reduction=reduction, **options)
    assert loss.dtype == torch.float32 and loss.shape == reference.shape
    _close(loss, reference, dtype)
    _check_gradients(loss, (hidden, weight, bias), reference, exact, dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_without_gradients(reduction):
    """Inference (no_grad, or no operand that needs a gradient): the loss alone."""
    hidden, weight, bias, _, target = _operands(torch.float32, bias=True)
    reference, _ = _reference(hidden, weight, bias, None, target, softcap=2.0, reduction=reduction)
    with torch.no_grad():
        loss = flag_gems.fused_linear_cross_entropy(hidden, weight, target, bias, reduction=reduction, softcap=2.0)
    assert not loss.requires_grad
    _close(loss, reference, torch.float32)
    constants = [t.detach() for t in (hidden, weight, bias)]
    loss = flag_gems.fused_linear_cross_entropy(*constants[:2], target, constants[2], reduction=reduction,
                                                softcap=2.0)
    assert not loss.requires_grad
    _close(loss, reference, torch.float32)


def test_second_backward_and_frozen_weight():
    """A retained graph's second backward (another incoming gradient) recomputes; a frozen
    lm_head gets no gradient, the hidden states theirs."""
    hidden, weight, _, _, target = _operands(torch.float32)
    loss = flag_gems.fused_linear_cross_entropy(hidden, weight, target, label_smoothing=0.2)
    reference, exact = _reference(hidden, weight, None, None, target, label_smoothing=0.2)
    for _ in range(2):
        _check_gradients(loss, (hidden, weight), reference, exact, torch.float32, retain_graph=True)
    weight.requires_grad_(False)
    loss = flag_gems.fused_linear_cross_entropy(hidden, weight, target, reduction="sum")
    reference, exact = _reference(hidden, weight, None, None, target, reduction="sum")
    _check_gradients(loss, (hidden,), reference, exact[:1], torch.float32)


def test_every_target_ignored():
    """A mean over no target is NaN (0 / 0), as PyTorch's; the gradients are zero."""
    hidden, weight, _, _, target = _operands(torch.float32)
    target.fill_(-100)
    loss = flag_gems.fused_linear_cross_entropy(hidden, weight, target)
    assert loss.isnan()
    for grad in torch.autograd.grad(loss, (hidden, weight)):
        assert not grad.any()


def test_module_and_names():
    hidden, weight, bias, ce_weight, target = _operands(torch.float32, bias=True, ce_weight=True)
    module = flag_gems.ops.FusedLinearCrossEntropyLoss(ce_weight=ce_weight, label_smoothing=0.1, reduction="sum",
                                                       softcap=4.0)
    assert flag_gems.FusedLinearCrossEntropyLoss is flag_gems.modules.FusedLinearCrossEntropyLoss is type(module)
    assert "softcap=4.0" in repr(module) and module.ce_weight is ce_weight and "ce_weight" in module.state_dict()
    with torch.no_grad():
        loss = module(weight, hidden, target, bias)
    reference, _ = _reference(hidden, weight, bias, ce_weight, target, softcap=4.0, reduction="sum",
                              label_smoothing=0.1)
    _close(loss, reference, torch.float32)
    assert flag_gems.fused_linear_cross_entropy is flag_gems.ops.fused_linear_cross_entropy


def _composed(hidden, weight, target, ce_weight=None, **kwargs):
    """The unfused composition in the operands' own dtypes: its errors are PyTorch's."""
    return F.cross_entropy(F.linear(hidden, weight).float(), target, ce_weight, **kwargs)


# name: (hidden, weight, target, keyword arguments) from the float32 ones
UNTAKEN = {
    "3-d hidden": lambda h, w, t: (h.view(2, N // 2, H), w, t, {}),
    "mixed dtypes": lambda h, w, t: (h, w.half(), t, {}),
    "bad reduction": lambda h, w, t: (h, w, t, dict(reduction="avg")),
    "target out of range": lambda h, w, t: (h, w, t.index_fill(0, torch.tensor([1], device=DEVICE), V), {}),
    "short target": lambda h, w, t: (h, w, t[1:], {}),
    "class weights of the input dtype": lambda h, w, t: (h.half(), w.half(), t, dict(
        ce_weight=torch.ones(V, device=DEVICE, dtype=torch.float16))),
    "fp64": lambda h, w, t: (h.double(), w.double(), t, {}),
}


@pytest.mark.parametrize("case", UNTAKEN)
def test_calls_the_kernels_do_not_take(case):
    """They raise what the unfused composition raises, or compute as it does."""
    hidden, weight, _, _, target = _operands(torch.float32)
    hidden, weight, target, kwargs = UNTAKEN[case](hidden.detach(), weight.detach(), target)
    error = error_of(lambda: _composed(hidden, weight, target, **kwargs))
    assert error_of(lambda: flag_gems.fused_linear_cross_entropy(hidden, weight, target, **kwargs)) is error
    if error is None:
        reference, _ = _reference(hidden, weight, None, kwargs.get("ce_weight"), target)
        _close(flag_gems.fused_linear_cross_entropy(hidden, weight, target, **kwargs), reference, torch.float32)


def test_negative_softcap_composes():
    """softcap * tanh(x / softcap) is the same for -softcap: the composition computes it."""
    hidden, weight, _, _, target = _operands(torch.float32)
    reference, _ = _reference(hidden, weight, None, None, target, softcap=3.0)
    with torch.no_grad():
        _close(flag_gems.fused_linear_cross_entropy(hidden, weight, target, softcap=-3), reference, torch.float32)
