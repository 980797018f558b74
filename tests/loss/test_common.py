"""The single-sample mean rule (common.py), shared by nll_loss and cross_entropy_loss."""

import pytest
import torch

import flag_gems
from flag_gems.ops.loss import cross_entropy, nll

from conftest import DEVICE, make


@pytest.mark.parametrize("weight_value", [None, 0.0, 0.7])
@pytest.mark.parametrize("ignored", [False, True])
def test_one_sample_mean_follows_cuda(monkeypatch, weight_value, ignored):
    """aten's CUDA rule for the mean of input [C], forced on any device: the unweighted
    loss, 0 when ignored, NaN at a zero weight; total_weight the target's weight."""
    def cuda_rule(input, reduction):
        return input.dim() == 1 and reduction == 1

    # in each module that applies the rule; its launch plans were made under the device's own
    for module, plans in ((nll, "_nll_plans"), (cross_entropy, "_ce_plans")):
        monkeypatch.setattr(module, "one_sample_mean_rule", cuda_rule)
        monkeypatch.setattr(module, plans, {})
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
