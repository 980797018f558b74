"""Activation modules: GemsSiluAndMul."""

import torch

from .. import ops

__all__ = ["GemsSiluAndMul"]


class GemsSiluAndMul(torch.nn.Module):
    """silu(x) * y in one kernel (``silu_and_mul``), differentiable: FlagGems' two-input form."""

    def forward(self, x, y):
        return ops.silu_and_mul(x, y)
