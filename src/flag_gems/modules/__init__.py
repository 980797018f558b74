"""nn.Modules on flag_gems' fused functions, under the names FlagGems users know:
normalization (GemsRMSNorm), activation (GemsSiluAndMul), rotary_embedding (GemsRope,
GemsDeepseekYarnRoPE), and the loss module ops/loss defines (FusedLinearCrossEntropyLoss).
``flag_gems.modules`` is imported on first use (torch.nn with it)."""

from .. import ops
from .activation import GemsSiluAndMul
from .normalization import GemsRMSNorm
from .rotary_embedding import GemsDeepseekYarnRoPE, GemsRope

__all__ = ["GemsRMSNorm", "GemsSiluAndMul", "GemsRope", "GemsDeepseekYarnRoPE", "FusedLinearCrossEntropyLoss"]


def __getattr__(name):
    # Modules the operator families define themselves: found (kernels imported) on first use.
    if name == "FusedLinearCrossEntropyLoss":
        return ops.explicit(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
