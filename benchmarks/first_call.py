"""First call of torch.mm before and after pre-tuning, each step in a fresh process.

Per shape, in a temporary directory, so no cache of an earlier run helps:

(a) first call in the default mode (``cache``): the heuristic config, no tuning;
(b) first call with ``GEMS_TUNE=quick``: tunes on the first call;
(c) ``python -m flag_gems.pretune --shapes FILE`` for that one shape, timed;
(d) first call in the default mode reading (c)'s tuning cache, with an empty
    Triton cache, as on a machine that received only the tuning cache.

Each of (a), (b) and (d) is one subprocess (``python first_call.py --worker``)
with its own GEMS_CACHE_DIR and TRITON_CACHE_DIR; it prints one JSON line.
run.py calls ``measure`` and prints ``text_table`` / ``markdown``.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

# (dtype, M, K, N): torch.mm of an (M, K) and a (K, N) matrix.
SHAPES = (("bf16", 4096, 4096, 4096), ("bf16", 16, 4096, 4096), ("fp16", 1024, 1024, 1024))
QUICK_SHAPES = (("bf16", 64, 64, 64), ("bf16", 16, 64, 64))

COLUMNS = ("shape", "dtype", "default 1st ms", "quick-tune 1st ms", "pretune s", "pretuned 1st ms",
           "pretuned tuning", "heuristic ms", "tuned ms", "tuned config")
TEXT_COLUMNS = {"shape", "dtype", "pretuned tuning", "tuned config"}
MEANINGS = (
    ("shape, dtype", "torch.mm of an M x K by a K x N matrix, shown as MxKxN"),
    ("default 1st ms", "first call in a fresh process, default mode (`cache`), empty caches, "
                       "`GEMS_TUNE_NATIVE=0` (else an untuned shape runs PyTorch's mm on a GPU): compiles the "
                       "heuristic config, times nothing"),
    ("quick-tune 1st ms", "the same with `GEMS_TUNE=quick`: the first call tunes (at most 8 configs, 10 s)"),
    ("pretune s", "wall clock of `python -m flag_gems.pretune --shapes FILE --mode quick` for this one "
                  "shape (at most 8 configs; process start included)"),
    ("pretuned 1st ms", "first call in a new process, default mode, reading pretune's tuning cache with an "
                        "empty Triton cache: compiles the tuned config only"),
    ("pretuned tuning", "`flag_gems.tuning.stats()` after that call: keys tuned and configs timed (both 0 "
                        "when nothing was tuned), keys read from the cache"),
    ("heuristic ms, tuned ms", "steady-state latency (measured as `ours ms` above) with the heuristic config "
                               "(default-mode process) and with pretune's choice (pre-tuned process)"),
    ("tuned config", "what pretune chose: BLOCK_M/N/K, GROUP_M, warps, stages, or `native` when "
                     "PyTorch's kernel won"),
)


def _dtype(name):
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


# ---------------------------------------------------------------- the subprocess side

def worker(dtype_name, m, k, n):
    """Time the first torch.mm under use_gems(), then its steady-state latency; print JSON."""
    import torch

    import flag_gems
    import harness
    from flag_gems import tuning

    timer = harness.Timer(flag_gems.device)
    torch.manual_seed(0)
    a = torch.randn(m, k, dtype=_dtype(dtype_name), device=flag_gems.device)
    b = torch.randn(k, n, dtype=_dtype(dtype_name), device=flag_gems.device)
    tuning.stats(reset=True)
    with flag_gems.use_gems(include=["mm"]):  # entered before timing: registration is not a first-call cost
        _, first_ms = timer.first_call(lambda: torch.mm(a, b))
        counts = tuning.stats()
        chosen = [d["config"] for d in tuning.decisions() if d["kernel"] == "mm"]
        latency_ms = timer.latency_ms(lambda: torch.mm(a, b))
    print(json.dumps(dict(first_ms=first_ms, latency_ms=latency_ms, stats=counts,
                          config=chosen[-1] if chosen else None)))


# ---------------------------------------------------------------- the runner side

def _environment(gems_dir, triton_dir, mode):
    import flag_gems

    env = dict(os.environ, GEMS_CACHE_DIR=gems_dir, TRITON_CACHE_DIR=triton_dir, GEMS_TUNE=mode)
    source = os.path.dirname(os.path.dirname(os.path.abspath(flag_gems.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p)
    return env


def _subprocess(command, env):
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-1:])
        raise RuntimeError(f"{' '.join(command[1:3])} exited with {done.returncode}: {tail[:300]}")
    return done.stdout


def _first_call(folder, step, mode, shape, gems_dir=None, native=True):
    env = _environment(gems_dir or os.path.join(folder, step, "gems"), os.path.join(folder, step, "triton"), mode)
    if not native:
        env["GEMS_TUNE_NATIVE"] = "0"  # an untuned shape runs our kernel, not PyTorch's
    out = _subprocess([sys.executable, os.path.abspath(__file__), "--worker", *map(str, shape)], env)
    return json.loads(out.strip().splitlines()[-1])


def _pretune_seconds(folder, shape):
    import yaml

    dtype, m, k, n = shape
    path = os.path.join(folder, "shapes.yaml")
    with open(path, "w") as f:
        yaml.safe_dump([{"op": "mm", "dtype": dtype, "shapes": [[[m, k], [k, n]]]}], f)
    env = _environment(os.path.join(folder, "pretune", "gems"), os.path.join(folder, "pretune", "triton"), "cache")
    start = time.perf_counter()
    # Quick pre-tuning keeps the section to seconds per shape; a deployment would use full.
    _subprocess([sys.executable, "-m", "flag_gems.pretune", "--shapes", path, "--mode", "quick"], env)
    return time.perf_counter() - start


def measure_shape(shape):
    """One row: the four steps of the module docstring for ``shape``."""
    dtype, m, k, n = shape
    row = dict(shape=f"{m}x{k}x{n}", dtype=dtype, error=None)
    try:
        with tempfile.TemporaryDirectory(prefix="flag_gems_first_call_") as folder:
            default = _first_call(folder, "default", "cache", shape, native=False)
            quick = _first_call(folder, "quick", "quick", shape)
            row["pretune_s"] = _pretune_seconds(folder, shape)
            pretuned = _first_call(folder, "pretuned", "cache", shape, gems_dir=os.path.join(folder, "pretune", "gems"))
    except Exception as error:  # noqa: BLE001 - one failed shape is reported, the others still run
        row["error"] = f"{type(error).__name__}: {error}"
        return row
    row.update(default_ms=default["first_ms"], quick_ms=quick["first_ms"], pretuned_ms=pretuned["first_ms"],
               pretuned_stats=pretuned["stats"], heuristic_ms=default["latency_ms"],
               tuned_ms=pretuned["latency_ms"], config=pretuned["config"])
    return row


def measure(quick):
    rows = []
    for shape in QUICK_SHAPES if quick else SHAPES:
        print(f"first call vs pre-tuning: mm {shape}", file=sys.stderr, flush=True)
        rows.append(measure_shape(shape))
    return rows


def _config_text(config):
    if isinstance(config, dict):
        return "/".join(str(v) for v in config.values())
    return str(config) if config is not None else "-"


def cells(row, number):
    if row["error"]:
        return (row["shape"], row["dtype"]) + ("-",) * (len(COLUMNS) - 3) + ("ERROR",)
    counts = row["pretuned_stats"]
    tuning = f"tuned {counts['tuned']}, timed {counts['timed']}, cached {counts['from_cache']}"
    return (row["shape"], row["dtype"], number(row["default_ms"]), number(row["quick_ms"]),
            number(row["pretune_s"]), number(row["pretuned_ms"]), tuning, number(row["heuristic_ms"]),
            number(row["tuned_ms"]), _config_text(row["config"]))


def problems(rows):
    return [f"first call mm {r['dtype']} {r['shape']}: {r['error']}" for r in rows if r["error"]]


def text_table(rows, number):
    table = [COLUMNS] + [cells(r, number) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]

    def line(values):
        return "  ".join(v.ljust(w) if c in TEXT_COLUMNS else v.rjust(w)
                         for c, v, w in zip(COLUMNS, values, widths)).rstrip()

    return "\n".join([line(COLUMNS), "  ".join("-" * w for w in widths)] + [line(v) for v in table[1:]])


def markdown(rows, number):
    lines = ["## First call vs pre-tuning", "",
             "torch.mm's first call in fresh processes with empty caches, before and after "
             "`python -m flag_gems.pretune` (benchmarks/first_call.py).", "",
             "| " + " | ".join(COLUMNS) + " |",
             "| " + " | ".join("---" if c in TEXT_COLUMNS else "---:" for c in COLUMNS) + " |"]
    lines += ["| " + " | ".join(cells(r, number)) + " |" for r in rows]
    lines += [""] + [f"- {name}: {meaning}" for name, meaning in MEANINGS]
    return "\n".join(lines) + "\n"


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    worker(sys.argv[2], *map(int, sys.argv[3:6]))
