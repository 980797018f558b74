"""Benchmark flag_gems against native PyTorch, one row per case.

    python benchmarks/run.py                      # every case, full (GPU) shapes
    python benchmarks/run.py --quick              # tiny shapes: a smoke test, CPU included
    python benchmarks/run.py --only mm softmax_dim0_fp32
    python benchmarks/run.py --markdown BENCHMARKS.md
    python benchmarks/run.py --only mm --no-first-call
    python benchmarks/run.py --only models         # the model section alone (--quick: tiny models)

Torch is timed for every case first, before flag_gems registers anything
with the dispatcher, so its numbers are PyTorch's alone. Then each case runs
the same torch call under ``flag_gems.use_gems()``: first call (compilation
included), correctness against torch, which kernels ran, then latency and
wall clock. Last, when mm is selected (on the GPU, or with --quick), the
"first call vs pre-tuning" section (first_call.py) times mm's first call in
fresh processes before and after pretune; on the GPU, or when asked, the model section
(models.py) runs Hugging Face models natively and under enable(). benchmarks/README.md
explains the columns.
"""

import argparse
import datetime
import fnmatch
import importlib
import math
import os
import shlex
import shutil
import sys
import tempfile

import first_call
import models

# Every cases_*.py beside this file, in name order.
CASE_MODULES = tuple(sorted(name[:-3] for name in os.listdir(os.path.dirname(os.path.abspath(__file__)))
                          if name.startswith("cases_") and name.endswith(".py")))

COLUMNS = ("case", "shape", "dtype", "torch ms", "ours ms", "speedup", "torch perf", "ours perf",
           "torch kernel ms", "ours kernel ms", "kernel speedup", "ours kernel perf",
           "torch wall us", "ours wall us", "torch peak MiB", "ours peak MiB", "ours 1st call ms", "check")
TEXT_COLUMNS = {"case", "shape", "dtype", "check"}
MODELS = "models"  # --only's name for the model section


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Benchmark flag_gems against native PyTorch.")
    parser.add_argument("--quick", action="store_true",
                        help="tiny shapes and short timing: a smoke test that the CPU interpreter finishes")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="run only these cases: a case name, a family (add, sum, softmax, mm, ...), a glob, or "
                             "'models' for the model section")
    parser.add_argument("--markdown", metavar="PATH", help="also write the results as a markdown file")
    parser.add_argument("--cold-cache", action="store_true",
                        help="start from empty Triton and flag_gems caches (a temporary directory), so that "
                             "the first-call column includes full compilation")
    parser.add_argument("--no-first-call", action="store_true",
                        help="skip the first call vs pre-tuning section (fresh processes timing mm's first call)")
    parser.add_argument("--no-models", action="store_true", help="skip the model section")
    parser.add_argument("--list", action="store_true", help="list the selected cases and exit")
    return parser.parse_args(argv)


def load_cases():
    cases = [case for module in CASE_MODULES for case in importlib.import_module(module).CASES]
    names = [case.name for case in cases]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SystemExit(f"duplicate case names: {', '.join(duplicates)}")
    return cases


def select(cases, patterns):
    if not patterns:
        return cases
    patterns = [p for p in patterns if p != MODELS]
    chosen = set()
    for pattern in patterns:
        hits = {c.name for c in cases if pattern in (c.name, c.family) or fnmatch.fnmatchcase(c.name, pattern)}
        if not hits:
            raise SystemExit(f"--only {pattern!r} matches no case; cases: {', '.join(c.name for c in cases)}")
        chosen |= hits
    return [case for case in cases if case.name in chosen]


# ---------------------------------------------------------------- formatting

def number(value, digits=3):
    """``value`` to about ``digits`` significant digits, never in e-notation."""
    if value is None or not math.isfinite(value):
        return "-"
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def cells(result):
    def perf(ms):
        value = result.rate(ms)
        return f"{number(value)} {result.unit}" if value is not None else "-"

    speedup, kernel_speedup = result.speedup(), result.kernel_speedup()
    return (result.name, result.shape, result.dtype, number(result.torch_ms), number(result.ours_ms),
            f"{number(speedup)}x" if speedup else "-", perf(result.torch_ms), perf(result.ours_ms),
            number(result.torch_kernel_ms), number(result.ours_kernel_ms),
            f"{number(kernel_speedup)}x" if kernel_speedup else "-", perf(result.ours_kernel_ms),
            number(result.torch_wall_us), number(result.ours_wall_us), number(result.torch_peak_mib),
            number(result.ours_peak_mib), number(result.first_call_ms),
            result.check)


def text_row(values, widths):
    return "  ".join(v.ljust(w) if c in TEXT_COLUMNS else v.rjust(w)
                     for c, v, w in zip(COLUMNS, values, widths)).rstrip()


def text_table(results):
    rows = [COLUMNS] + [cells(r) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [text_row(COLUMNS, widths), "  ".join("-" * w for w in widths)]
    return "\n".join(lines + [text_row(row, widths) for row in rows[1:]])


def problems(results):
    return [f"{r.name}: {r.check}: {r.detail}" for r in results if r.check != "ok"]


def geomean_speedup(results, kernel=False):
    speedups = [r.kernel_speedup() if kernel else r.speedup() for r in results if r.check == "ok"]
    speedups = [s for s in speedups if s]
    if not speedups:
        return None
    return math.exp(sum(map(math.log, speedups)) / len(speedups)), len(speedups)


def command_line():
    command = shlex.join(["python", *sys.argv])
    if os.environ.get("PYTHONPATH"):
        command = f"PYTHONPATH={shlex.quote(os.environ['PYTHONPATH'])} {command}"
    return command


def markdown(results, about, quick, first_calls, model_results):
    def escape(text):
        return text.replace("|", "\\|")

    lines = [
        "# flag_gems benchmarks",
        "",
        "This file is generated by `python benchmarks/run.py --markdown BENCHMARKS.md`; do not edit it by hand. "
        "`benchmarks/README.md` explains the columns.",
        "",
        f"- Date: {about['date']}",
        f"- Device: {about['device']}",
        f"- Versions: torch {about['torch']}, triton {about['triton']}, flag_gems {about['flag_gems']}, "
        f"Python {about['python']}",
        f"- C++ wrappers (flag_gems.c_operators): {about['c_operators']}",
        f"- Command: `{command_line()}`",
        f"- Shapes: {'tiny (--quick smoke test: the timings mean nothing)' if quick else 'full'}",
    ]
    if results:
        lines += ["", "| " + " | ".join(COLUMNS) + " |",
                  "| " + " | ".join("---" if c in TEXT_COLUMNS else "---:" for c in COLUMNS) + " |"]
        lines += ["| " + " | ".join(escape(v) for v in cells(r)) + " |" for r in results]
    summary = geomean_speedup(results)
    if summary:
        lines += ["", f"Geometric mean speedup (torch ms / ours ms) over {summary[1]} passing cases: "
                      f"{number(summary[0])}x."]
    kernels = geomean_speedup(results, kernel=True)
    if kernels:
        lines += ["", f"Geometric mean kernel speedup (torch kernel ms / ours kernel ms) over {kernels[1]} "
                      f"passing cases: {number(kernels[0])}x."]
    if first_calls:
        lines += ["", first_call.markdown(first_calls, number).rstrip("\n")]
    if model_results:
        lines += ["", models.markdown(model_results, number, quick).rstrip("\n")]
    found = problems(results) + first_call.problems(first_calls) + models.problems(model_results)
    if found:
        lines += ["", "## Problems", ""] + [f"- {escape(p)}" for p in found]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- running

def wants_first_call(args, device, cases):
    """The first-call section runs when mm is selected: by default on the GPU; on the
    CPU interpreter only with --quick (tiny shapes); never with --no-first-call."""
    return not args.no_first_call and (device != "cpu" or args.quick) and any(c.family == "mm" for c in cases)


def wants_models(args, device):
    """The model section runs by default on the GPU when every case runs; --only models asks
    for it anywhere (tiny models with --quick); --no-models never. It needs transformers."""
    return not args.no_models and (MODELS in (args.only or ()) or (device != "cpu" and not args.only))


def main(argv=None):
    args = parse_args(argv)
    cold_dir = None
    if args.cold_cache:
        # Set before triton is imported, so it sees it. flag_gems' own cache keeps the
        # C++ wrappers, built ahead like a deployment would (python -m flag_gems.c_operators).
        cold_dir = tempfile.mkdtemp(prefix="flag_gems_bench_cache_")
        os.environ["TRITON_CACHE_DIR"] = os.path.join(cold_dir, "triton")
    try:
        return run(args)
    finally:
        if cold_dir:
            shutil.rmtree(cold_dir, ignore_errors=True)


def run_cases(cases, results, timer, quick):
    import flag_gems

    import harness

    # Phase 1: torch alone. flag_gems has registered nothing with the
    # dispatcher yet, so no router of ours sits in front of the native kernels.
    flag_gems.disable()
    for case, result in zip(cases, results):
        print(f"timing torch: {case.name}", file=sys.stderr, flush=True)
        harness.run_case(harness.measure_torch, case, result, timer, quick)

    # Phase 2: ours, one row printed per case as it finishes.
    widths = [max(len(column), 9) for column in COLUMNS]
    widths[0] = max([widths[0]] + [len(r.name) for r in results])
    widths[1] = max([widths[1]] + [len(r.shape) for r in results])
    print(text_row(COLUMNS, widths), flush=True)
    for case, result in zip(cases, results):
        if result.check != "ERROR":  # no torch result to compare with
            harness.run_case(harness.measure_ours, case, result, timer, quick)
        print(text_row(cells(result), widths), flush=True)
        if result.detail:
            print(f"    {result.check}: {result.detail}", flush=True)

    print("\nSummary\n")
    print(text_table(results))
    summary = geomean_speedup(results)
    if summary:
        print(f"\ngeometric mean speedup over {summary[1]} passing cases: {number(summary[0])}x")


def run(args):
    import torch

    import flag_gems

    device = flag_gems.device  # picks the vendor (and the interpreter) before any kernel is defined

    import triton

    import harness
    from flag_gems.fastpath import prebuilt

    cases = select(load_cases(), args.only)
    if args.list:
        for case in cases:
            print(f"{case.name:24} {harness.DTYPE_NAMES[case.dtype]:5} {case.shape_text(args.quick)}")
        return 0
    if device == "cpu" and not args.quick:
        print("warning: full shapes on the CPU interpreter take very long; --quick is meant for it",
              file=sys.stderr)

    timer = harness.Timer(device)
    results = [harness.Result(c.name, c.shape_text(args.quick), harness.DTYPE_NAMES[c.dtype]) for c in cases]
    about = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": torch.cuda.get_device_name() if device == "cuda" else f"{device} (Triton interpreter)",
        "torch": torch.__version__, "triton": triton.__version__, "flag_gems": flag_gems.__version__,
        "python": sys.version.split()[0],
        "c_operators": "built, in use" if prebuilt() is not None else "not built: every launch from Python",
    }
    print(f"{about['device']}; torch {about['torch']}, triton {about['triton']}; "
          f"{'tiny shapes (--quick)' if args.quick else 'full shapes'}")

    if cases:
        run_cases(cases, results, timer, args.quick)
    first_calls = []
    if wants_first_call(args, device, cases):
        first_calls = first_call.measure(args.quick)
        print("\nFirst call vs pre-tuning (mm, fresh processes, empty caches)\n")
        print(first_call.text_table(first_calls, number))
    model_results = []
    if wants_models(args, device):
        model_results = models.measure(args.quick, device)
        print("\nModels (native vs enable(), one process)\n")
        print(models.text_table(model_results, number))
    found = problems(results) + first_call.problems(first_calls) + models.problems(model_results)
    if found:
        print("\nproblems:\n" + "\n".join(f"  {p}" for p in found))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown(results, about, args.quick, first_calls, model_results))
        print(f"\nwrote {args.markdown}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
