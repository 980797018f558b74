"""Pre-tuning: fill the tuning cache with the shapes a deployment runs, once, so that
no process ever tunes on a first call.

    python -m flag_gems.pretune --shapes shapes.yaml        (= python examples/pretune.py ...)
    python -m flag_gems.pretune --capture shapes.yaml -- examples/demo.py [its arguments]

``--shapes`` runs every listed call (see ``flag_gems.pretune.shapes`` for the format)
on random inputs with tuning forced to ``full``, then prints what each tunable kernel
chose. An unknown op, a malformed shape or an unsupported dtype stops it before any
work, with exit status 2, and so does a call whose tensors exceed the device's
memory; a call that fails while running, or tuned configs that could not be
stored in the cache file, give exit status 1.
``--capture`` runs a script with flag_gems enabled and writes the shapes file of
every call it routed.
"""

import argparse
import os
import runpy
import sys
import time

import torch

from .. import runtime, tuning
from ..api import use_gems
from . import shapes as _shapes
from .collector import capture

_BAR = 24


def _progress(done, total, label, stream):
    filled = _BAR * done // total
    stream.write(f"\r[{'#' * filled}{'.' * (_BAR - filled)}] {done}/{total} {label[:60]:<60}")
    stream.flush()


def _config_text(config):
    if isinstance(config, dict):
        return " ".join(f"{k}={v}" for k, v in config.items())
    return str(config)


def _synchronize(device):
    module = getattr(torch, device, None)
    if module is not None and hasattr(module, "synchronize"):
        module.synchronize()


def _run(job, device, mode):
    """Run one call with tuning forced to ``mode`` (full or quick); summary rows for it."""
    op = _shapes.aten_overload(job.op)
    args, kwargs = job.inputs(device)
    tuning.decisions(clear=True)
    with tuning.forced(mode), use_gems(include=[job.op]):
        op(*args, **kwargs)  # tunes what it has to
        _synchronize(device)
        start = time.perf_counter()
        op(*args, **kwargs)  # runs what was chosen
        _synchronize(device)
    wall_ms = (time.perf_counter() - start) * 1e3
    head = (job.op, _shapes.dtype_name(job.dtype), job.shape_text())
    chosen = tuning.decisions(clear=True)
    if not chosen:
        return [head + ("- (no tunable kernel)", f"{wall_ms:.4g}")]
    rows = []
    for decision in chosen:
        config = decision["config"]
        text = f"{decision['kernel']}: {_config_text(config)} ({decision['origin']})"
        if config == tuning.NATIVE and decision["time_ms"] is not None:
            text += f", ours {decision['time_ms']:.4g} ms"
        time_ms = decision["native_ms"] if config == tuning.NATIVE else decision["time_ms"]
        rows.append(head + (text, f"{time_ms if time_ms is not None else wall_ms:.4g}"))
    return rows


def _table(rows, stream):
    rows = [("op", "dtype", "shape", "chosen config", "time ms")] + rows
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(), file=stream)


def pretune(path, out=None, err=None, mode="full"):
    """Tune every call of the shapes file ``path``; the exit status."""
    import yaml

    out, err = out or sys.stdout, err or sys.stderr

    def fail(message):
        print(f"pretune: error: {message}", file=err)
        return 2

    try:
        with open(path) as f:
            document = yaml.safe_load(f)
    except OSError as error:
        return fail(f"cannot read {path}: {error}")
    except yaml.YAMLError as error:
        return fail(f"{path} is not valid YAML: {error}")
    device = runtime.selected_vendor().device
    memory = device_memory(device)
    try:
        jobs = _shapes.parse(document, runtime.supported_dtypes())
        for job in jobs:
            needed = _shapes.check_on_meta(job)
            if memory is not None and needed > memory:
                return fail(f"{path}: {job.op} {_shapes.dtype_name(job.dtype)} {job.shape_text()} needs "
                            f"{_gib(needed)} for its tensors, more than the {_gib(memory)} of {device} memory")
    except _shapes.ShapesError as error:
        return fail(f"{path}: {error}")

    rows, failed = [], 0
    for done, job in enumerate(jobs):
        _progress(done, len(jobs), f"{job.op} {_shapes.dtype_name(job.dtype)} {job.shape_text()}", err)
        try:
            rows += _run(job, device, mode)
        except Exception as error:  # noqa: BLE001 - reported per call, the others still run
            failed += 1
            rows.append((job.op, _shapes.dtype_name(job.dtype), job.shape_text(),
                         f"error: {type(error).__name__}: {error}".splitlines()[0], "-"))
    _progress(len(jobs), len(jobs), "done", err)
    err.write("\n")
    _table(rows, out)
    print(f"tuning cache: {tuning.cache_path()}", file=out)
    cache = tuning.store()
    cache.verify()
    problems = list(cache.problems)
    if not cache.persistent:
        problems.append(f"tuning cache {cache.path} cannot be written ({cache.unusable or 'read-only'}): "
                        "the tuned configs were not stored")
    for problem in problems:
        print(f"pretune: error: {problem}", file=err)
    if failed:
        print(f"pretune: error: {failed} of {len(jobs)} calls failed (see the table)", file=err)
    return 1 if failed or problems else 0


def device_memory(device):
    """Bytes of memory the device has (RAM for the CPU, free memory for an accelerator); None if unknown."""
    if device == "cpu":
        try:
            return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    module = getattr(torch, device, None)
    return module.mem_get_info()[0] if hasattr(module, "mem_get_info") else None


def _gib(size):
    return f"{size / 2**30:.3g} GiB"


def capture_script(path, command, out=None):
    """Run ``command`` ([script, *arguments]) with flag_gems enabled and write the shapes
    file of every call it routed; the script's exit status."""
    script = command[0]
    saved = sys.argv, list(sys.path)
    sys.argv = list(command)
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    status = 0

    def run():
        nonlocal status
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as done:
            status = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)

    try:
        collector = capture(run, path)
    finally:
        sys.argv, sys.path[:] = saved
    calls = sum(len(calls) for *_, calls in collector.entries())
    print(f"captured {calls} distinct calls of {len(collector.entries())} (op, dtype) entries into {path}"
          + (f"; {collector.skipped} calls with tensor lists or other unwritable arguments left out"
             if collector.skipped else ""), file=out or sys.stdout)
    return status


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    command = []
    if "--" in argv:
        split = argv.index("--")
        argv, command = argv[:split], argv[split + 1:]
    parser = argparse.ArgumentParser(prog="python -m flag_gems.pretune",
                                     description="Fill the tuning cache for the shapes in a YAML file, or "
                                                 "capture those shapes from a script.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--shapes", metavar="FILE", help="tune every call listed in FILE")
    group.add_argument("--capture", metavar="FILE",
                       help="run the script after -- with flag_gems enabled and write its shapes to FILE")
    parser.add_argument("--mode", choices=("full", "quick"), default="full",
                        help="full: time every config that fits (default); quick: at most GEMS_TUNE_MAX_CONFIGS "
                             "configs and GEMS_TUNE_SECONDS per call")
    args = parser.parse_args(argv)
    if args.capture:
        if not command:
            parser.error("--capture needs a script: --capture shapes.yaml -- script.py [arguments]")
        return capture_script(args.capture, command)
    if command:
        parser.error("arguments after -- belong to --capture")
    return pretune(args.shapes, mode=args.mode)
