"""Train a small Llama-architecture model with DistributedDataParallel and flag_gems.

One process per device, `flag_gems.enable()` in every rank:

    torchrun --nproc_per_node=2 examples/ddp_train.py --check            # 2 GPUs, NCCL
    torchrun --nproc_per_node=1 examples/ddp_train.py --check            # 1 GPU, or the CPU (gloo)

The model is written here in plain torch (random weights, no downloads) so its
operators reach flag_gems' rows: `F.rms_norm` -> `_fused_rms_norm` (on CUDA;
the CPU decomposes it), projections -> `mm`, attention -> `_softmax` (the batched
`q @ k^T` is `bmm`, which stays native), `F.cross_entropy` -> `_log_softmax`.

`--check` also trains without flag_gems (same seed, same data) and asserts:
- the loss curve and final parameters match native: tightly in fp32; in bf16
  within a small multiple of the native-bf16 vs fp32 difference;
- every rank tuned `mm` keys (GEMS_TUNE=quick) into one shared GEMS_CACHE_DIR at
  once without a warning, and all ranks chose the same config for every key;
- every rank's record log (its own file) is non-empty.
"""

import argparse
import gc
import logging
import math
import os
import tempfile
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import flag_gems

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
BF16_SLACK = 4.0  # ours-vs-native may be this many times native-bf16-vs-fp32


@dataclass
class LlamaConfig:
    vocab: int = 256
    hidden: int = 128
    heads: int = 4
    layers: int = 2
    intermediate: int = 344
    seq: int = 64
    rope_theta: float = 10000.0
    eps: float = 1e-6


class RMSNorm(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(config.hidden))
        self.eps = config.eps

    def forward(self, x):
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def rotate(x, cos, sin):
    """Rotary position embedding, rotate-half form."""
    first, second = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-second, first), dim=-1) * sin


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.heads = config.heads
        self.attn_norm, self.mlp_norm = RMSNorm(config), RMSNorm(config)
        self.qkv = nn.Linear(config.hidden, 3 * config.hidden, bias=False)
        self.out = nn.Linear(config.hidden, config.hidden, bias=False)
        self.gate_up = nn.Linear(config.hidden, 2 * config.intermediate, bias=False)
        self.down = nn.Linear(config.intermediate, config.hidden, bias=False)

    def forward(self, x, cos, sin, causal_mask):
        batch, seq, hidden = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).view(batch, seq, 3, self.heads, -1).transpose(1, 3).unbind(2)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        attended = torch.softmax(scores.masked_fill(causal_mask, float("-inf")), dim=-1) @ v
        x = x + self.out(attended.transpose(1, 2).reshape(batch, seq, hidden))
        gate, up = self.gate_up(self.mlp_norm(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(gate) * up)


class TinyLlama(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.embed = nn.Embedding(config.vocab, config.hidden)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.norm = RMSNorm(config)
        self.lm_head = nn.Linear(config.hidden, config.vocab, bias=False)
        head_dim = config.hidden // config.heads
        inverse_freq = config.rope_theta ** (-torch.arange(0, head_dim, 2).float() / head_dim)
        angles = torch.outer(torch.arange(config.seq).float(), inverse_freq).repeat(1, 2)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)
        causal = torch.ones(config.seq, config.seq, dtype=torch.bool).triu(1)
        self.register_buffer("causal_mask", causal, persistent=False)

    def forward(self, tokens, targets):
        seq = tokens.shape[1]
        cos, sin = self.cos[:seq].to(self.embed.weight.dtype), self.sin[:seq].to(self.embed.weight.dtype)
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, cos, sin, self.causal_mask[:seq, :seq])
        logits = self.lm_head(self.norm(x))
        return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())


def batches(args, config, rank, device):
    """Each rank's own token batches, the same on every run: [steps, batch, seq + 1]."""
    generator = torch.Generator().manual_seed(args.seed * 1000 + rank)
    tokens = torch.randint(0, config.vocab, (args.steps, args.batch, config.seq + 1), generator=generator)
    return tokens.to(device)


def train(args, config, dtype, device, data):
    """Train from the seeded init; returns (losses, final parameters) on the CPU in fp32."""
    torch.manual_seed(args.seed)
    model = TinyLlama(config).to(device=device, dtype=dtype)
    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=args.lr, momentum=0.9)
    losses = []
    for step_tokens in data:
        loss = ddp(step_tokens[:, :-1], step_tokens[:, 1:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach().float())
    parameters = {name: p.detach().float().cpu() for name, p in model.named_parameters()}
    return torch.stack(losses).cpu(), parameters


def relative_difference(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def largest_difference(run, reference):
    """Max relative difference of the loss curve, and of any parameter tensor."""
    losses = relative_difference(run[0], reference[0])
    parameters = max(relative_difference(run[1][n], reference[1][n]) for n in reference[1])
    return losses, parameters


def check_against_native(ours, native, fp32_native, dtype):
    if dtype == torch.float32:
        torch.testing.assert_close(ours[0], native[0], rtol=1e-4, atol=1e-5)
        for name in native[1]:
            torch.testing.assert_close(ours[1][name], native[1][name], rtol=1e-4, atol=1e-5, msg=name)
        return "fp32: losses and parameters within rtol 1e-4 / atol 1e-5 of native"
    noise = largest_difference(native, fp32_native)  # what bf16 itself costs, natively
    error = largest_difference(ours, native)
    # A few bf16 ulps are allowed even when native's own difference is smaller: the CPU
    # interpreter truncates bf16 stores where a GPU rounds them.
    ulp = torch.finfo(torch.bfloat16).eps
    for what, mine, measured in zip(("loss", "parameter"), error, noise):
        assert mine <= BF16_SLACK * max(measured, ulp), (
            f"{what}: relative |ours - native| = {mine:.3g} > {BF16_SLACK} x max(|native bf16 - fp32| = "
            f"{measured:.3g}, bf16 eps)")
    return (f"bf16: relative |ours - native| loss {error[0]:.3g}, parameters {error[1]:.3g}; "
            f"native bf16 vs fp32: {noise[0]:.3g}, {noise[1]:.3g}")


class WarningCounter(logging.Handler):
    """Counts flag_gems' warnings (the tuning cache warns on any file or lock error)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def check_shared_tuning(world, warnings):
    """Every rank used the same cache file without a warning and chose the same mm configs."""
    chosen = {(d["kernel"], str(d["key"])): d["config"] for d in flag_gems.tuning.decisions()}
    mine = (flag_gems.tuning.cache_path(), chosen, warnings.messages, flag_gems.tuning.stats())
    everyone = [None] * world
    dist.all_gather_object(everyone, mine)
    paths = {path for path, *_ in everyone}
    assert len(paths) == 1, f"ranks used different tuning caches: {paths}"
    for rank, (_, _, messages, _) in enumerate(everyone):
        assert not messages, f"rank {rank} warned: {messages}"
    agreed = {}
    for rank, (_, configs, _, _) in enumerate(everyone):
        for key, config in configs.items():
            first = agreed.setdefault(key, config)
            assert first == config, f"rank {rank} chose {config} for {key}, another rank {first}"
    assert any(kernel == "mm" for kernel, _ in agreed), "no mm key reached the tuner"
    tuned = sum(stats["tuned"] for *_, stats in everyone)
    return f"tuning: {len(agreed)} keys, {tuned} tuned, same configs on {world} ranks, cache {paths.pop()}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=None, help="default: 512 on a GPU, 32 on the CPU")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seq", type=int, default=None, help="default: 256 on a GPU, 16 on the CPU")
    parser.add_argument("--vocab", type=int, default=None, help="default: 1024 on a GPU, 64 on the CPU")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=None, help="default: 8 on a GPU, 2 on the CPU")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=DTYPES, default=None, help="default: bfloat16 on a GPU, float32 on the CPU")
    parser.add_argument("--check", action="store_true", help="compare with native training and check tuning/logs")
    parser.add_argument("--tune", choices=flag_gems.tuning.MODES, default=None,
                        help="GEMS_TUNE for this run (default: quick with --check, else the environment's)")
    parser.add_argument("--out-dir", default=os.path.join(tempfile.gettempdir(), "flag_gems_ddp"),
                        help="record logs (rank<N>.log) and, unless GEMS_CACHE_DIR is set, the shared cache")
    args = parser.parse_args()

    # One cache folder for all ranks, so they share (and race on) one tuning file.
    os.environ.setdefault("GEMS_CACHE_DIR", os.path.join(args.out_dir, "cache"))
    on_gpu = flag_gems.device != "cpu"
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device(flag_gems.device, local_rank) if on_gpu else torch.device("cpu")
    if on_gpu:
        torch.cuda.set_device(device)
    # NVLink multicast off (NCCL and PyTorch): on the shared GPU hosts this runs on, a
    # program using it can take the GPUs out of service.
    os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
    os.environ.setdefault("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1")
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()

    def default(value, gpu, cpu):
        return value if value is not None else (gpu if on_gpu else cpu)

    hidden = default(args.hidden, 512, 32)
    config = LlamaConfig(vocab=default(args.vocab, 1024, 64), hidden=hidden, heads=args.heads, layers=args.layers,
                         intermediate=hidden * 8 // 3, seq=default(args.seq, 256, 16))
    args.steps = default(args.steps, 8, 2)
    dtype = DTYPES[default(args.dtype, "bfloat16", "float32")]
    data = batches(args, config, rank, device)

    if args.check:  # the native runs come first, before flag_gems routes anything
        native = train(args, config, dtype, device, data)
        fp32_native = train(args, config, torch.float32, device, data) if dtype != torch.float32 else native
    tune = args.tune or ("quick" if args.check else None)
    if tune:
        flag_gems.set_tuning_mode(tune)
    warnings = WarningCounter()
    logging.getLogger("flag_gems").addHandler(warnings)
    log_path = os.path.join(args.out_dir, f"rank{rank}.log")
    if os.path.exists(log_path):
        os.remove(log_path)  # the recorder appends: start each run's log afresh
    flag_gems.enable(record=True, path=log_path)
    ours = train(args, config, dtype, device, data)
    flag_gems.disable()  # closes the record log

    losses = " ".join(f"{x:.4f}" for x in ours[0].tolist())
    print(f"rank {rank}/{world} on {device} ({flag_gems.vendor_name}), {str(dtype)[6:]}, "
          f"{config.layers} layers x {config.hidden}, losses {losses}", flush=True)
    if args.check:
        report = [check_against_native(ours, native, fp32_native, dtype), check_shared_tuning(world, warnings)]
        size = os.path.getsize(log_path)
        assert size > 0, f"rank {rank}: record log {log_path} is empty"
        report.append(f"record log {log_path}: {size} bytes")
        print(f"rank {rank} check OK: " + "; ".join(report), flush=True)
    # The DDP wrappers sit in reference cycles: collect them (and their reducers) while the
    # process group lives. A reducer left for interpreter exit can abort the process in
    # torch's teardown (seen with gloo on torch 2.13, about one run in six).
    gc.collect()
    # Rank 0 hosts the rendezvous store: leaving before the others are done aborts them.
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
