"""Run a small attention + MLP block forward and backward with flag_gems on,
then print which implementation ran each aten operator and how the results
compare with PyTorch native.

    python examples/demo.py

On a machine without a GPU it runs on the CPU through Triton's interpreter.
"""

import collections
import os
import tempfile

import torch

import flag_gems


def block(x, params):
    """Single-head attention then a gated MLP, written with plain torch ops."""
    wq, wk, wv, w1, w2 = params
    q, k, v = x @ wq, x @ wk, x @ wv
    scores = (q @ k.t()) / (q.shape[1] ** 0.5)
    attended = torch.softmax(scores, dim=-1) @ v
    h = x + attended
    gate = (h @ w1) * torch.sigmoid(h @ w1)  # SiLU written out: sigmoid and mul run our kernels too
    out = h + gate @ w2
    return out, (out * out).sum() / out.numel()


def run(x, params):
    params = [p.detach().clone().requires_grad_() for p in params]
    out, loss = block(x, params)
    loss.backward()
    return out.detach(), loss.detach(), [p.grad for p in params]


def main():
    device = flag_gems.device
    tokens, width = (64, 128) if device == "cpu" else (1024, 1024)
    torch.manual_seed(0)
    x = torch.randn(tokens, width, device=device)
    params = [torch.randn(width, width, device=device) / width**0.5 for _ in range(5)]

    native = run(x, params)
    log = os.path.join(tempfile.mkdtemp(prefix="flag_gems_demo_"), "record.log")
    with flag_gems.use_gems(record=True, path=log):
        ours = run(x, params)

    print(f"flag_gems {flag_gems.__version__} on vendor {flag_gems.vendor_name!r} (device {device!r}), "
          f"torch {torch.__version__}")
    print(f"block: {tokens} tokens x {width} features, fp32, forward + backward\n")
    counts = collections.Counter()
    with open(log) as f:
        for line in f:
            op, impl, _ = line.rstrip("\n").split("\t")
            counts[(op, impl)] += 1
    print(f"{'aten operator':34} {'implementation':48} calls")
    for (op, impl), n in sorted(counts.items()):
        print(f"{op:34} {impl:48} {n:5}")

    print("\nagreement with PyTorch native (max |ours - native| / max |native|):")
    names = ["output", "loss"] + [f"grad {n}" for n in ("wq", "wk", "wv", "w1", "w2")]
    worst = 0.0
    for name, mine, theirs in zip(names, [ours[0], ours[1], *ours[2]], [native[0], native[1], *native[2]]):
        error = ((mine - theirs).abs().max() / theirs.abs().max().clamp_min(1e-30)).item()
        worst = max(worst, error)
        print(f"  {name:8} {error:.2e}")
    assert worst < 1e-3, f"results differ from native by {worst:.2e}"
    print("\nOK: flag_gems matches PyTorch native")


if __name__ == "__main__":
    main()
