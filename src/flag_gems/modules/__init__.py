"""nn.Modules on flag_gems' fused functions, under the names FlagGems users know:
normalization (GemsRMSNorm), activation (GemsSiluAndMul), rotary_embedding (GemsRope,
GemsDeepseekYarnRoPE). ``flag_gems.modules`` is imported on first use (torch.nn with it)."""

from .activation import GemsSiluAndMul
from .normalization import GemsRMSNorm
from .rotary_embedding import GemsDeepseekYarnRoPE, GemsRope

__all__ = ["GemsRMSNorm", "GemsSiluAndMul", "GemsRope", "GemsDeepseekYarnRoPE"]
