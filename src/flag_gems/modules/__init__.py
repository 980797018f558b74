"""nn.Modules on flag_gems' fused functions, under the names FlagGems users know."""

import torch

from .. import ops

__all__ = ["GemsRMSNorm", "FusedLinearCrossEntropyLoss"]


def __getattr__(name):
    # Modules the operator families define themselves: found (kernels imported) on first use.
    if name == "FusedLinearCrossEntropyLoss":
        return ops.explicit(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class GemsRMSNorm(torch.nn.RMSNorm):
    """``torch.nn.RMSNorm`` on our kernel. ``forward(x, residual)`` is FlagGems' fused residual add
    and RMS norm: in place, it returns (normed, x + residual)."""

    def __init__(self, normalized_shape, eps=1e-6, elementwise_affine=True, device=None, dtype=None):
        super().__init__(normalized_shape, eps, elementwise_affine, device, dtype)

    def forward(self, x, residual=None):
        if residual is None:
            return ops.rms_norm(x, self.normalized_shape, self.weight, self.eps)
        return ops.fused_add_rms_norm(x, residual, self.normalized_shape, self.weight, self.eps)
