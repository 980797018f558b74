"""Rotary embedding modules: GemsRope (the original frequencies) and GemsDeepseekYarnRoPE
(DeepSeek's YaRN context extension), each holding its cos/sin table and applying
``apply_rotary_pos_emb`` (FlagGems' layout: q/k [..., heads, head_dim])."""

import math

import torch

from .. import ops

__all__ = ["GemsRope", "GemsDeepseekYarnRoPE"]


class GemsRope(torch.nn.Module):
    """Rotary position embedding with FlagGems' constructor: ``forward(query, key,
    position_ids=None, inplace=False)`` returns (query, key) rotated (see
    ``flag_gems.apply_rotary_pos_emb``).

    The cos/sin table (buffers ``cos_cached`` / ``sin_cached``, [positions, rotary_dim // 2],
    in ``dtype``) covers ``max_position_embeddings`` positions from construction on and grows,
    at least doubling, when a call reaches past it. Finding how far a call reaches reads the
    largest of ``position_ids`` (a device synchronization where they live on a device);
    without them it is the sequence length, dim -3 of ``query``."""

    def __init__(self, rotary_dim, max_position_embeddings=2048, base=10000, rotary_interleaved=False,
                 dtype=torch.float32, device=None):
        super().__init__()
        self.rotary_dim = rotary_dim
        self.max_position_embeddings = max_position_embeddings
        self.base = base
        self.rotary_interleaved = rotary_interleaved
        self._set_cos_sin_cache(max_position_embeddings, device, dtype)

    def _inv_freq(self, device):
        """The angle per position of each pair: base ** (-2i / rotary_dim), in fp32 as the models compute it."""
        exponents = torch.arange(0, self.rotary_dim, 2, dtype=torch.float32, device=device) / self.rotary_dim
        return 1.0 / self.base ** exponents

    def _table_scale(self):
        """A factor on cos and sin (YaRN's attention temperature); 1 here."""
        return 1.0

    def _set_cos_sin_cache(self, positions, device, dtype):
        angles = torch.outer(torch.arange(positions, dtype=torch.float32, device=device), self._inv_freq(device))
        scale = self._table_scale()
        self.register_buffer("cos_cached", (angles.cos() * scale).to(dtype), persistent=False)
        self.register_buffer("sin_cached", (angles.sin() * scale).to(dtype), persistent=False)

    def _positions_needed(self, query, position_ids):
        if position_ids is None:
            return query.shape[-3] if query.dim() >= 3 else 0
        return int(position_ids.max()) + 1 if position_ids.numel() else 0

    def forward(self, query, key, position_ids=None, inplace=False):
        cached = self.cos_cached.shape[0]
        needed = self._positions_needed(query, position_ids)
        if needed > cached:
            self._set_cos_sin_cache(max(needed, 2 * cached), self.cos_cached.device, self.cos_cached.dtype)
        return ops.apply_rotary_pos_emb(query, key, self.cos_cached, self.sin_cached, position_ids,
                                        self.rotary_interleaved, inplace)


def _yarn_correction_dim(rotations, rotary_dim, base, original_max_positions):
    """The (fractional) dim whose pair turns ``rotations`` times over the original context:
    solving original_max_positions * base ** (-d / rotary_dim) = 2 pi * rotations for d."""
    return rotary_dim * math.log(original_max_positions / (2 * math.pi * rotations)) / (2 * math.log(base))


def _yarn_mscale(scale, mscale):
    """YaRN's attention temperature: 1 + 0.1 * mscale * ln(scale) for a context extended ``scale`` times."""
    return 1.0 if scale <= 1 else 1.0 + 0.1 * mscale * math.log(scale)


class GemsDeepseekYarnRoPE(GemsRope):
    """DeepSeek's YaRN rotary embedding. Pairs that turn more than ``beta_fast`` times over the
    original context keep their frequency, pairs turning fewer than ``beta_slow`` times are
    interpolated (frequency / ``scaling_factor``), a linear ramp in between; cos and sin are
    scaled by mscale(scaling_factor, mscale) / mscale(scaling_factor, mscale_all_dim)."""

    def __init__(self, rotary_dim, max_position_embeddings=2048, base=10000, rotary_interleaved=False,
                 dtype=torch.float32, device=None, scaling_factor=1.0, original_max_position_embeddings=4096,
                 beta_fast=32.0, beta_slow=1.0, mscale=1.0, mscale_all_dim=0.0):
        # The table is built by GemsRope's constructor: the YaRN parameters must be set first.
        self.scaling_factor, self.original_max_position_embeddings = scaling_factor, original_max_position_embeddings
        self.beta_fast, self.beta_slow = beta_fast, beta_slow
        self.mscale, self.mscale_all_dim = mscale, mscale_all_dim
        super().__init__(rotary_dim, max_position_embeddings, base, rotary_interleaved, dtype, device)

    def _inv_freq(self, device):
        extrapolated = super()._inv_freq(device)
        interpolated = extrapolated / self.scaling_factor
        low = max(math.floor(_yarn_correction_dim(self.beta_fast, self.rotary_dim, self.base,
                                                  self.original_max_position_embeddings)), 0)
        high = min(math.ceil(_yarn_correction_dim(self.beta_slow, self.rotary_dim, self.base,
                                                  self.original_max_position_embeddings)), self.rotary_dim - 1)
        width = high - low if high != low else 0.001  # no division by zero
        pair = torch.arange(self.rotary_dim // 2, dtype=torch.float32, device=device)
        ramp = ((pair - low) / width).clamp(0, 1)  # 0: keeps its frequency, 1: interpolated
        return interpolated * ramp + extrapolated * (1 - ramp)

    def _table_scale(self):
        return _yarn_mscale(self.scaling_factor, self.mscale) / _yarn_mscale(self.scaling_factor, self.mscale_all_dim)
