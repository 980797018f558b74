"""What the rotary test modules share: cos/sin tables and the rotation written out in fp64."""

import torch

from conftest import DEVICE


def table(positions, half, dtype=torch.float32, base=10000.0):
    """cos/sin [positions, half] of the usual frequencies base ** (-i / half)."""
    angles = torch.outer(torch.arange(positions, dtype=torch.float64),
                         base ** (-torch.arange(half, dtype=torch.float64) / half))
    return angles.cos().to(DEVICE, dtype), angles.sin().to(DEVICE, dtype)


def reference(x, cos, sin, positions=None, interleaved=False):
    """x [..., T, heads, D] in fp64 with its first 2 * half elements rotated pairwise by the angle of
    its token's table row: (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin); differentiable."""
    x, cos, sin = x.double(), cos.double(), sin.double()
    rows = torch.arange(x.shape[-3], device=x.device) if positions is None else positions
    c, s = cos[rows].unsqueeze(-2), sin[rows].unsqueeze(-2)
    half = cos.shape[-1]
    first = torch.arange(half, device=x.device) * 2 if interleaved else torch.arange(half, device=x.device)
    second = first + 1 if interleaved else first + half
    x1, x2 = x[..., first], x[..., second]
    out = x.clone()
    out[..., first] = x1 * c - x2 * s
    out[..., second] = x2 * c + x1 * s
    return out
