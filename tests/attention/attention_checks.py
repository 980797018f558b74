"""What the attention tests share: the reference attention in fp64, the flash-attention
accuracy rule, and operands in the layouts models use."""

import math

import torch

from conftest import DEVICE, make

# Beyond twice PyTorch's own error against fp64, per result dtype.
ATOL = {torch.float16: 2e-3, torch.bfloat16: 1.5e-2, torch.float32: 2e-5}


def reference(q, k, v, mask=None, causal=0, scale=None):
    """Attention in fp64 by its definition: [B, H, L, D] (or [H, L, D]) operands, key heads
    repeated for grouped queries; ``causal`` 1 top-left, 2 bottom-right; a row that sees no
    key gets 0."""
    q, k, v = q.double(), k.double(), v.double()
    group = q.shape[-3] // k.shape[-3]
    k, v = k.repeat_interleave(group, -3), v.repeat_interleave(group, -3)
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ k.transpose(-1, -2) * scale
    keep = torch.ones(s.shape[-2:], dtype=torch.bool, device=q.device)
    if causal:
        Lq, Lk = s.shape[-2:]
        keep = keep.tril(0 if causal == 1 else Lk - Lq)
    if mask is not None:
        if mask.dtype == torch.bool:
            keep = keep & mask
        else:
            s = s + mask.double()
    s = s.masked_fill(~keep, -math.inf)
    p = torch.softmax(s, -1).nan_to_num(0.0)
    return p @ v


def operands(B, H, Hk, Lq, Lk, D, dtype, DV=None, layout="bhld", grad=False):
    """q [B, H, Lq, D], k [B, Hk, Lk, D], v [B, Hk, Lk, DV]: contiguous ("bhld") or views
    of [B, L, H, D] storage ("blhd", as models make them)."""
    DV = D if DV is None else DV

    def one(h, L, d):
        t = make((B, L, h, d), dtype).transpose(1, 2) if layout == "blhd" else make((B, h, L, d), dtype)
        return t.requires_grad_(grad)

    return one(H, Lq, D), one(Hk, Lk, D), one(Hk, Lk, DV)


def error(result, exact):
    return (result.double() - exact.double()).abs().max().item() if result.numel() else 0.0


def close(ours, torch_low, exact):
    """The flash-attention rule: our error against the fp64 result at most twice PyTorch's
    own (its low-precision result's), plus a small atol."""
    assert ours.shape == exact.shape and ours.dtype == torch_low.dtype, (ours.shape, exact.shape, ours.dtype)
    bound = 2 * error(torch_low, exact) + ATOL[ours.dtype]
    assert error(ours, exact) <= bound, f"error {error(ours, exact)} > {bound} (PyTorch's: {error(torch_low, exact)})"


def grads(out, inputs, grad_out):
    return torch.autograd.grad(out, inputs, grad_out)


def random_mask(shape, kind):
    """An additive float mask (with some -inf) or a boolean one, keeping every row's first key."""
    if kind == "bool":
        mask = torch.rand(shape, device=DEVICE) > 0.3
        mask[..., 0] = True
        return mask
    mask = torch.randn(shape, device=DEVICE)
    mask = mask.masked_fill(torch.rand(shape, device=DEVICE) < 0.2, -math.inf)
    mask[..., 0] = 0.0
    return mask
