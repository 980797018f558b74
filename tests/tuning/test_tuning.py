"""The tuner, its SQLite cache (multi-process, corruption), the cache CLI, pretune
and shape capture. Tuning runs under the interpreter with the CPU vendor's tiny mm
space and tiny shapes; fake kernels (sleeps) where only the machinery matters."""

import json
import logging
import math
import multiprocessing
import os
import random
import sqlite3
import subprocess
import sys
import time

import pytest
import torch
import yaml

import flag_gems
from flag_gems import pretune, runtime, tuning
from flag_gems.codegen import pointwise, reduction
from flag_gems.ops.matmul import gemm
from flag_gems.ops.matmul import mm as matmul_ops
from flag_gems.testing import assert_close
from flag_gems.tuning import __main__ as cache_cli
from flag_gems.pretune import shapes
from flag_gems.tuning import tuner

from conftest import DEVICE, ON_GPU, make

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "src")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Every test: its own GEMS_CACHE_DIR, the default mode, no tuning variables."""
    monkeypatch.setenv("GEMS_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("GEMS_TUNE", "GEMS_TUNE_MAX_CONFIGS", "GEMS_TUNE_SECONDS", "GEMS_TUNE_NATIVE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tuner, "_measure_ms", _fake_clock)
    before = tuning.tuning_mode()
    tuning.set_tuning_mode("cache")
    tuning.store()  # the store of this test's folder
    tuning.stats(reset=True)
    yield
    tuning.store().close()
    tuning.set_tuning_mode(before)


def _fake_clock(run, config):
    """Timing without noise: config (n, ...) takes n ms, native 0.5 ms."""
    run(config)
    return 0.5 if config == tuning.NATIVE else float(config[0])


def _sleeper(name, space=((1,), (2,), (3,)), heuristic=(2,), native=False):
    """A tuner of a fake kernel: under the fake clock config (1,) always wins."""
    return tuning.Tuner(name, heuristic=lambda size: heuristic, space=space,
                        key=lambda size: (tuning.next_power_of_2(size),), sources=[f"kernel {name}"],
                        fields=("ms",), native=native)


def _sleep(config):
    pass  # the fake kernel's launch


# -- modes and the tuner ------------------------------------------------------------------------


def test_modes():
    fake = _sleeper("t_modes")
    assert tuning.tuning_mode() == "cache"
    assert fake.choose((5,), _sleep) == (2,)  # cache, nothing stored: the heuristic, nothing timed
    assert tuning.stats()["timed"] == 0

    tuning.set_tuning_mode("quick")
    assert fake.choose((5,), _sleep) == (1,)
    assert tuning.stats()["tuned"] == 1
    assert fake.choose((7,), _sleep) == (1,)  # 7 falls in 5's bucket (8): answered by the cache
    assert tuning.stats()["tuned"] == 1 and tuning.stats()["from_cache"] == 1

    tuning.set_tuning_mode("off")  # heuristic only, even with an entry
    assert fake.choose((5,), _sleep) == (2,)
    tuning.set_tuning_mode("cache")
    assert fake.choose((5,), _sleep) == (1,)

    with pytest.raises(ValueError, match="off, cache, quick, full"):
        flag_gems.set_tuning_mode("fast")
    flag_gems.set_tuning_mode("full")
    assert tuning.tuning_mode() == "full"


def test_no_timing_while_a_graph_is_captured(monkeypatch):
    """A capture (torch.cuda.graph) forbids the synchronizing timing runs: a new key then takes
    the cache or heuristic, unremembered, and is tuned on the next call outside the capture."""
    fake = _sleeper("t_capture")
    tuning.set_tuning_mode("quick")
    monkeypatch.setattr(runtime, "capturing", lambda: True)
    assert fake.choose((5,), _sleep) == (2,)
    assert tuning.stats()["timed"] == 0 and fake.cached((5,)) is None
    monkeypatch.setattr(runtime, "capturing", lambda: False)
    assert fake.choose((5,), _sleep) == (1,)
    assert tuning.stats()["tuned"] == 1


def test_mode_from_environment(monkeypatch):
    monkeypatch.setattr(tuner, "_mode", None)
    monkeypatch.setenv("GEMS_TUNE", "quick")
    assert tuning.tuning_mode() == "quick"


def test_quick_is_bounded_and_full_takes_over(monkeypatch):
    fake = _sleeper("t_bounds", space=tuple((n,) for n in range(1, 7)), heuristic=(6,))
    monkeypatch.setenv("GEMS_TUNE_MAX_CONFIGS", "2")
    tuning.set_tuning_mode("quick")
    assert fake.choose((3,), _sleep) == (1,)  # heuristic (6,), then the space's first
    assert tuning.stats()["timed"] == 2

    monkeypatch.setenv("GEMS_TUNE_MAX_CONFIGS", "8")
    monkeypatch.setenv("GEMS_TUNE_SECONDS", "0")
    assert fake.choose((100,), _sleep) == (6,)  # out of time after the first candidate
    assert tuning.stats()["timed"] == 3

    tuning.set_tuning_mode("full")  # a quick entry is tuned again over the whole space
    assert fake.choose((100,), _sleep) == (1,)
    assert tuning.stats()["timed"] == 3 + 6
    [row] = [r for r in tuning.store().rows("t_bounds") if r["key"] == "[128]"]
    assert row["mode"] == "full" and row["tried"] == 6


def test_repeated_key_is_a_dict_lookup():
    fake = _sleeper("t_hot")
    tuning.set_tuning_mode("quick")
    fake.choose((5,), _sleep)
    queries = tuning.stats()["db_queries"]
    for _ in range(100):
        assert fake.choose((5,), _sleep) == (1,)
    assert tuning.stats()["db_queries"] == queries
    calls = 100_000
    start = time.perf_counter()
    for _ in range(calls):
        fake.cached((5,))
    assert (time.perf_counter() - start) / calls < 1e-6


def test_edited_kernel_does_not_read_stale_configs():
    tuning.set_tuning_mode("quick")
    _sleeper("t_edit").choose((5,), _sleep)
    edited = tuning.Tuner("t_edit", heuristic=lambda size: (3,), space=((1,), (2,), (3,)),
                          key=lambda size: (tuning.next_power_of_2(size),), sources=["kernel t_edit, edited"])
    tuning.set_tuning_mode("cache")
    assert edited.choose((5,), _sleep) == (3,)  # another source hash: its own, empty, entries


def test_failing_config_loses():
    def run(config):
        if config == (1,):
            raise RuntimeError("out of resources")
        _sleep(config)

    tuning.set_tuning_mode("full")
    assert _sleeper("t_fail").choose((5,), run) == (2,)


def test_native_candidate(monkeypatch):
    fake = _sleeper("t_native", native=True)
    tuning.set_tuning_mode("full")
    monkeypatch.setenv("GEMS_TUNE_NATIVE", "1")
    assert fake.choose((5,), _sleep) is tuning.NATIVE  # 0.5 ms beats 1 ms
    monkeypatch.setenv("GEMS_TUNE_NATIVE", "0")
    assert fake.choose((100,), _sleep) == (1,)


def test_mm_native_candidate_is_logged(tmp_path, monkeypatch):
    """Native wins (the fake clock gives it 0.5 ms): the record log says so, results stay right."""
    monkeypatch.setenv("GEMS_TUNE_NATIVE", "1")
    tuning.set_tuning_mode("full")
    a, b = make((5, 8), torch.float32), make((8, 6), torch.float32)
    log = tmp_path / "record.log"
    with flag_gems.use_gems(include=["mm"], record=True, path=str(log)):
        first, again = torch.mm(a, b), torch.mm(a, b)
    torch.testing.assert_close(first, a @ b)
    torch.testing.assert_close(again, a @ b)
    lines = [line.split("\t")[1] for line in log.read_text().splitlines() if line.startswith("aten::mm\t")]
    assert lines == ["native (tuned: native faster)"] * 2


def _mm_log(tmp_path, a, b):
    log = tmp_path / "record.log"
    log.unlink(missing_ok=True)
    with flag_gems.use_gems(include=["mm"], record=True, path=str(log)):
        result = torch.mm(a, b)
    torch.testing.assert_close(result, a @ b)
    return [line.split("\t")[1] for line in log.read_text().splitlines() if line.startswith("aten::mm\t")]


def test_mm_runs_native_unless_a_tuned_entry_wins(tmp_path, monkeypatch):
    """Default mode, native a candidate (as on GPUs): an untuned bucket runs PyTorch's mm and
    the record log says why; once tuning stored our kernel's win, the bucket runs it."""
    monkeypatch.setenv("GEMS_TUNE_NATIVE", "1")
    tuning.forget_choices()
    a, b = make((5, 8), torch.float32), make((8, 6), torch.float32)
    assert _mm_log(tmp_path, a, b) == ["native (no tuned entry wins here)"]
    assert tuning.decisions()[-1]["origin"] == "untuned"
    with tuning.forced("quick"):  # native off as a candidate: our kernel's config is stored
        monkeypatch.setenv("GEMS_TUNE_NATIVE", "0")
        torch.testing.assert_close(flag_gems.ops.mm(a, b), a @ b)
    monkeypatch.setenv("GEMS_TUNE_NATIVE", "1")
    assert _mm_log(tmp_path, a, b) == ["triton"]
    # the interpreter, GEMS_TUNE_NATIVE=0 and mode off run the heuristic where nothing is tuned
    c = make((40, 8), torch.float32)
    monkeypatch.setenv("GEMS_TUNE_NATIVE", "0")
    tuning.forget_choices()
    assert _mm_log(tmp_path, c, b) == ["triton"]


def test_shipped_entries_serve_an_empty_cache(tmp_path, monkeypatch):
    """An export in tuning/shipped made on this device answers keys the local cache lacks."""
    a, b = make((5, 8), torch.float32), make((8, 6), torch.float32)
    monkeypatch.setenv("GEMS_TUNE_NATIVE", "0")  # our kernel's config is stored (the fake clock favours native)
    with tuning.forced("quick"):
        flag_gems.ops.mm(a, b)
    exported = tmp_path / "shipped"
    exported.mkdir()
    cache_cli.export(str(exported / "this_device.json"))
    document = json.loads((exported / "this_device.json").read_text())
    assert [e["kernel"] for e in document["entries"]] == ["mm"]
    document["triton"] = "0.0"  # any Triton version serves
    (exported / "this_device.json").write_text(json.dumps(document))
    tuning.store().clear()
    monkeypatch.setattr(tuning.shipped, "FOLDER", str(exported))
    tuning.shipped._entries.cache_clear()
    monkeypatch.setenv("GEMS_TUNE_NATIVE", "1")
    tuning.forget_choices()
    try:
        assert _mm_log(tmp_path, a, b) == ["triton"]
        assert tuning.decisions()[-1]["origin"] == "shipped"
        other = dict(document, device="another device")
        (exported / "this_device.json").write_text(json.dumps(other))
        tuning.shipped._entries.cache_clear()
        tuning.forget_choices()
        assert _mm_log(tmp_path, a, b) == ["native (no tuned entry wins here)"]
    finally:
        tuning.shipped._entries.cache_clear()


def test_shipped_files_are_current():
    """Every shipped export parses and names the current source of its kernels: an edited
    kernel must be tuned again before it ships."""
    from flag_gems import ops

    ops.collect_rows()
    hashes = {name: t.source_hash for name, t in tuning.tuners().items()}
    for path, document in tuning.shipped.documents():
        for row in tuning.shipped.rows_of(document, path):
            assert row["source"] == hashes.get(row["kernel"]), f"{path}: stale {row['kernel']} entry {row['key']}"
        assert document["vendor"] and document["device"]


# -- mm's key and space -------------------------------------------------------------------------


def test_mm_key_buckets():
    row = (1, 1), (1, 1)
    assert gemm.bucket(5, 17, 3, torch.float16, *row, False) == (8, 32, 4, "float16", "n", "n", False)
    assert gemm.bucket(1, 4096, 4096, torch.bfloat16, *row, False)[:3] == (1, 4096, 4096)
    assert gemm.bucket(12, 4000, 4097, torch.bfloat16, *row, False)[:3] == (16, 4096, 8192)
    assert gemm.bucket(4, 4, 4, torch.float32, (1, 4), (8, 2), True)[4:] == ("t", "s", True)
    a = make((6, 9), torch.float32)
    b = make((9, 5), torch.float32)
    same_bucket = make((7, 9), torch.float32), make((9, 8), torch.float32)
    tuning.set_tuning_mode("quick")
    flag_gems.ops.mm(a, b)
    flag_gems.ops.mm(*same_bucket)
    assert tuning.stats()["tuned"] == 1 and tuning.stats()["from_cache"] == 1
    flag_gems.ops.mm(a, make((5, 9), torch.float32).t())  # transposed B: another key
    assert tuning.stats()["tuned"] == 2
    assert len(tuning.store().rows("mm")) == 2


def test_mm_pruning(monkeypatch):
    space = gemm.default_space()
    big = (4096, 4096, 4096, "bfloat16", "n", "n", False)
    monkeypatch.setattr(tuning, "max_shared_memory", lambda device_index=0: None)
    fits = [c for c in space if gemm.fits(big, c)]
    assert (128, 256, 64, 8, 8, 3, 1) in fits and (128, 256, 64, 8, 4, 3, 1) not in fits  # 256 accumulators a thread
    assert all(c[0] > 16 for c in fits)  # no decode tiles for a large M
    decode = (16, 4096, 4096, "bfloat16", "n", "n", False)
    assert all(c[0] == 16 for c in space if gemm.fits(decode, c))
    small = (64, 64, 64, "float16", "n", "n", False)
    assert all(c[0] <= 64 and c[1] <= 64 and c[2] <= 64 for c in space if gemm.fits(small, c))

    monkeypatch.setattr(tuning, "max_shared_memory", lambda device_index=0: 100 * 1024)
    fits = [c for c in space if gemm.fits(big, c)]
    assert (64, 128, 64, 8, 4, 4, 1) in fits  # (64*64 + 64*128) * 2 bytes * 4 stages = 96 KiB
    assert (128, 128, 64, 8, 4, 4, 1) not in fits  # 128 KiB
    fp32 = (4096, 4096, 4096, "float32", "n", "n", True)
    assert (64, 128, 64, 8, 4, 4, 1) not in [c for c in space if gemm.fits(fp32, c)]  # 4-byte tiles: 192 KiB
    assert not any(c[6] > 1 for c in fits)  # K is split for few tiles only
    assert any(c[6] > 1 for c in space if gemm.fits(decode, c))
    short = (16, 4096, 256, "bfloat16", "n", "n", False)
    splits = [c for c in space if gemm.fits(short, c) and c[6] > 1]
    assert splits and all(c[2] * c[6] * 2 <= 256 for c in splits)  # every split two K blocks deep at least


def test_mm_tuned_results_are_right():
    tuning.set_tuning_mode("full")
    for m, k, n in ((3, 5, 7), (20, 33, 18)):
        a, b = make((m, k), torch.float16), make((k, n), torch.float16)
        with flag_gems.use_gems():
            ours = torch.mm(a, b)
        torch.testing.assert_close(ours.double(), a.double() @ b.double(), rtol=2e-3, atol=5e-3 * k**0.5)
    assert tuning.stats()["tuned"] == 2


# -- the pointwise generator's kernels ----------------------------------------------------------

BIG = 70000  # elements: above pointwise.SMALL_TENSOR, so tunable; its flat bucket is 131072


def _stored_keys(kernel):
    return sorted(json.loads(row["key"]) for row in tuning.store().rows(kernel))


def test_pointwise_keys_and_heuristics():
    f16, f32 = torch.float16, torch.float32
    assert pointwise._flat_key(131072, "TTS", f16, f16) == (131072, 2, 2)
    assert pointwise._flat_key(131072, "TT", torch.bool, f32) == (131072, 4, 2)  # a comparison: its input is widest
    assert pointwise._strided_key(256, 512, True, f32, f16) == (256, 512, True, 4)
    # The heuristics are the rules the kernels had before they were tunable.
    for size, block in ((128, 128), (512, 512), (1024, 1024), (2048, 2048), (1 << 24, 2048)):
        assert pointwise.flat_config(size, 4, 1) == (block, 4)
    assert pointwise.strided_config(1024, 4096, False, 2) == (4, 1024, 4)
    assert pointwise.strided_config(1024, 4096, True, 2) == (64, 64, 4)  # transposed: square tiles
    assert pointwise.strided_config(2, 8, False, 2) == (2, 8, 4)
    assert [c for c in pointwise.flat_space() if pointwise._flat_fits((2048, 2, 1), c)] == \
        [(2048, 8), (1024, 4), (2048, 16), (1024, 8), (2048, 4)]
    assert all(c[0] <= 8 and c[1] <= 4096 for c in pointwise.strided_space()
               if pointwise._strided_fits((8, 4096, False, 4), c))


def test_pointwise_quick_tunes_a_bucket_once(monkeypatch):
    monkeypatch.setenv("GEMS_TUNE_MAX_CONFIGS", "2")
    tuning.set_tuning_mode("quick")
    x, y = make((BIG,), torch.float32), make((100000,), torch.float32)  # one bucket
    small = x[:1000]  # never tuned: the heuristic, whatever the mode
    with flag_gems.use_gems():
        results = [torch.exp(x), torch.exp(y), torch.exp(small), torch.exp(x)]
    for source, result in zip((x, y, small, x), results):
        assert_close(result, torch.exp(source.double()), torch.float32)
    counts = tuning.stats()
    assert counts["tuned"] == 1 and counts["timed"] == 2 and counts["heuristic"] == 1
    assert _stored_keys("pointwise_flat") == [[131072, 4, 1]]
    assert pointwise.FLAT_TUNER.cached((131072, "T", torch.float32, torch.float32)) is not None

    tuning.set_tuning_mode("cache")  # memos (and the C++ wrappers' kernels) are forgotten
    assert pointwise.FLAT_TUNER.cached((131072, "T", torch.float32, torch.float32)) is None
    with flag_gems.use_gems():
        again = torch.exp(y)
    assert_close(again, torch.exp(y.double()), torch.float32)
    assert tuning.stats()["from_cache"] == 1 and tuning.stats()["tuned"] == 1


def test_pointwise_results_with_other_configs(monkeypatch):
    """A vendor's configs instead of the heuristic's: flat, strided (transposed, broadcast), in place."""
    configs = runtime.selected_vendor().configs
    monkeypatch.setitem(configs, "pointwise_flat", lambda size, itemsize, tensors: (128, 4))  # many programs
    monkeypatch.setitem(configs, "pointwise_strided", lambda rows, last, transposed, itemsize: (2, 16, 4))
    tuning.forget_choices()
    tuning.decisions(clear=True)
    a, c = make((37, 50), torch.float16), make((50, 37), torch.float16)
    expected = [a.double() * 2, a.double() + c.t().double(), a.double() * a[0].double(), a.double() - c.t().double()]
    with flag_gems.use_gems():
        flat = a * 2.0
        transposed = a + c.t()
        broadcast = a * a[0]
        in_place = a.clone()
        in_place.sub_(c.t())
    for result, reference in zip((flat, transposed, broadcast, in_place), expected):
        assert_close(result, reference, torch.float16)
    chosen = {(d["kernel"], json.dumps(d["config"])) for d in tuning.decisions()}
    assert chosen == {("pointwise_flat", '{"BLOCK": 128, "num_warps": 4}'),
                      ("pointwise_strided", '{"BLOCK_R": 2, "BLOCK_C": 16, "num_warps": 4}')}


def test_pointwise_tuning_never_writes_the_callers_tensor(monkeypatch):
    """In place (the output is an input) and strided (a transposed operand): candidates run
    into scratch, so the caller's tensor changes once, by the chosen config's launch."""
    monkeypatch.setenv("GEMS_TUNE_MAX_CONFIGS", "3")
    tuning.set_tuning_mode("quick")
    x = make((300, 400), torch.float32)
    other = make((400, 300), torch.float32).t()
    start = x.clone()
    untouched = []

    def clock(run, config):
        before = x.clone()
        run(config)
        untouched.append(torch.equal(x, before))
        return float(config[0])

    monkeypatch.setattr(tuner, "_measure_ms", clock)
    tuning.decisions(clear=True)
    with flag_gems.use_gems():
        x.mul_(3.0)  # flat
        x.add_(other)  # strided, transposed
        y = x - other  # the strided key again: no tuning
    assert_close(x, start.double() * 3 + other.double(), torch.float32)
    assert_close(y, x.double() - other.double(), torch.float32)
    assert untouched and all(untouched) and len(untouched) == tuning.stats()["timed"]
    assert tuning.stats()["tuned"] == 2
    assert {d["kernel"] for d in tuning.decisions() if d["origin"] == "tuned"} == \
        {"pointwise_flat", "pointwise_strided"}
    assert _stored_keys("pointwise_strided") == [[512, 512, True, 4]]
def test_mm_asks_the_tuner_once_per_call(monkeypatch):
    asked = []
    choice = matmul_ops._MM.tuner.choice
    monkeypatch.setattr(matmul_ops._MM.tuner, "choice", lambda raw, runner: asked.append(1) or choice(raw, runner))
    a, b = make((5, 8), torch.float32), make((8, 6), torch.float32)
    with flag_gems.use_gems(include=["mm"]):
        torch.mm(a, b)
        assert len(asked) == 1
        torch.mm(a, b, out=torch.empty(5, 6, device=a.device))
    assert len(asked) == 2
    torch.testing.assert_close(flag_gems.ops.mm(a, b), a @ b)
    assert len(asked) == 3
    torch.testing.assert_close(matmul_ops.mm(a, b), a @ b)  # the bare implementation asks for itself
    assert len(asked) == 4


# -- reductions: the rows and cols tuners -------------------------------------------------------


@pytest.fixture
def small_reductions_tune(monkeypatch):
    """Reductions of 128 elements and more are tuned (by default 64K: smaller ones are one launch)."""
    monkeypatch.setattr(reduction, "TUNED_FROM", 128)
    monkeypatch.setenv("GEMS_TUNE_MAX_CONFIGS", "3")


def _reductions(x):
    """Row reductions (K == 1) of sum, amax and argmax, and a dim-0 (cols) sum."""
    return {"sum": torch.sum(x, 1), "amax": torch.amax(x, 1), "argmax": torch.argmax(x, 1), "sum0": torch.sum(x, 0)}


def test_reduction_quick_tunes_each_key_once(small_reductions_tune):
    tuning.set_tuning_mode("quick")
    x = make((12, 40), torch.float32)
    native = _reductions(x)
    with flag_gems.use_gems():
        ours = _reductions(x)
    for name in native:
        torch.testing.assert_close(ours[name], native[name], rtol=1e-6, atol=1e-5)
    assert tuning.stats()["tuned"] == 4 and tuning.stats()["timed"] >= 4
    rows = {json.loads(r["key"])[0]: json.loads(r["config"]) for r in tuning.store().rows("reduce_rows")}
    assert set(rows) == {"sum", "amax", "argmax"}  # one entry per reduction: their configs differ
    # The fake clock times a config at its first item (BLOCK_A): the heuristic's 16 rows lose.
    assert rows["sum"] == {"BLOCK_A": 4, "BLOCK_N": 64, "num_warps": 4, "programs_per_sm": 8} or ON_GPU
    [cols] = tuning.store().rows("reduce_cols")
    assert json.loads(cols["key"])[:5] == ["sum", 1, 1, 16, 64]  # A, N, K of a dim-0 sum

    timed = tuning.stats()["timed"]
    with flag_gems.use_gems():
        again = _reductions(x)  # the memo answers
        _reductions(make((13, 33), torch.float32))  # new raw keys in the same buckets: the cache answers
    assert tuning.stats()["timed"] == timed and tuning.stats()["from_cache"] == 4
    for name in native:
        assert torch.equal(again[name], ours[name])

    tuning.forget_choices()
    with flag_gems.use_gems():
        _reductions(x)
    assert tuning.stats()["timed"] == timed and tuning.stats()["from_cache"] == 8


def test_small_reductions_stay_on_the_heuristic():
    tuning.set_tuning_mode("full")
    tuning.decisions(clear=True)
    x = make((12, 40), torch.float32)
    with flag_gems.use_gems():
        total = torch.sum(x, 1)
    torch.testing.assert_close(total, x.sum(1))
    assert tuning.stats()["tuned"] == 0 and tuning.stats()["heuristic"] == 1
    [decision] = tuning.decisions()
    assert decision["key"][2:4] == (0, 0)  # every small problem falls in one bucket
    assert decision["config"] == dict(zip(reduction.ROWS_FIELDS, reduction.rows_config(12, 40, 1, 4, 1, False)))


def test_reduction_timing_never_writes_the_callers_out(small_reductions_tune, monkeypatch):
    x = make((12, 40), torch.float32)
    out = torch.full((12,), math.nan, device=DEVICE)
    kept = torch.full((12, 1), math.nan, device=DEVICE)

    def clock(run, config):
        run(config)
        assert out.isnan().all() and kept.isnan().all()  # candidates write scratch results
        return float(config[0])

    monkeypatch.setattr(tuner, "_measure_ms", clock)
    tuning.set_tuning_mode("full")
    with flag_gems.use_gems():
        torch.sum(x, 1, out=out)
        torch.amax(x, 1, keepdim=True, out=kept)
        keepdim = torch.argmax(x, 1, keepdim=True)
        transposed_out = torch.empty(40, 3, device=DEVICE).t()[:1].squeeze(0)  # a strided out
        torch.sum(x, 0, out=transposed_out)
    assert tuning.stats()["tuned"] == 4
    torch.testing.assert_close(out, x.sum(1))
    torch.testing.assert_close(kept, x.amax(1, keepdim=True))
    assert torch.equal(keepdim, x.argmax(1, keepdim=True))
    torch.testing.assert_close(transposed_out, x.sum(0))


def _unique_configs(configs, fields):
    """Configs that launch differently under the interpreter (num_warps does not matter there);
    on a GPU every sixteenth config, each of which compiles."""
    if ON_GPU:
        return list(configs)[::16]
    seen = {}
    for config in configs:
        seen.setdefault(tuple(v for f, v in zip(fields, config) if f != "num_warps"), config)
    return list(seen.values())


@pytest.mark.parametrize("kind", ["rows", "cols"])
def test_every_reduction_config_is_exact(kind, monkeypatch):
    """Each config of the default space, forced through the vendor override of the heuristic."""
    tuning.set_tuning_mode("off")
    configs = runtime.selected_vendor().configs
    if kind == "rows":
        space, fields, name, x, dim = reduction.rows_space(), reduction.ROWS_FIELDS, "reduce_rows", \
            make((5, 40), torch.float32), 1
    else:
        space, fields, name, x, dim = reduction.cols_space(), reduction.COLS_FIELDS, "reduce_cols", \
            make((2, 60, 7), torch.float32), 1
    for config in _unique_configs(space, fields):
        monkeypatch.setitem(configs, name, lambda *raw, config=config: config)
        tuning.forget_choices()
        with flag_gems.use_gems():
            total, arg = torch.sum(x, dim), torch.argmax(x, dim)
        torch.testing.assert_close(total, x.double().sum(dim).float(), rtol=1e-5, atol=1e-4, msg=str(config))
        assert torch.equal(arg, x.argmax(dim)), config


def test_reduction_source_hash_covers_the_hooks():
    sources = reduction._tuned_sources()
    assert reduction.kernel_source in sources
    from flag_gems.ops.reduction import reduce as reduction_ops

    assert reduction_ops._argmax_combine in sources and reduction_ops._merge_moments in sources


# -- the store: several processes, corruption ---------------------------------------------------


def _tune_at_once(barrier, results, keys):
    fake = _sleeper("t_race", space=tuple((n,) for n in range(1, 5)))

    def run(config):
        time.sleep(random.random() / 1000)

    tuner._measure_ms = lambda run, config: random.random()  # processes on their own would disagree
    tuning.set_tuning_mode("full")
    barrier.wait()
    try:
        chosen = [fake.choose((size,), run) for size in keys]
        seen = {row["key"]: row["config"] for row in tuning.store().rows("t_race")}
        results.put((os.getpid(), chosen, seen))
    except BaseException as error:  # reported to the parent
        results.put((os.getpid(), repr(error), None))
        raise


def test_eight_processes_tune_the_same_keys():
    keys = [2, 3, 5, 9, 17, 33]
    tuning.store().close()  # children open their own connections
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(8), context.Queue()
    workers = [context.Process(target=_tune_at_once, args=(barrier, results, keys)) for _ in range(8)]
    for worker in workers:
        worker.start()
    answers = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    chosen = {json.dumps(list(map(list, answer[1]))) for answer in answers}
    assert len(chosen) == 1, answers  # everyone uses the first stored result
    stored = {row["key"]: json.loads(row["config"]) for row in tuning.store().rows("t_race")}
    assert len(stored) == len(keys)  # one entry per bucket: 2, 4, 8, 16, 32, 64
    assert [stored[json.dumps([tuning.next_power_of_2(k)])]["ms"] for k in keys] == \
        [c[0] for c in answers[0][1]]
    with sqlite3.connect(tuning.cache_path()) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_corrupt_cache_is_moved_aside(caplog):
    fake = _sleeper("t_corrupt")
    tuning.set_tuning_mode("quick")
    fake.choose((5,), _sleep)
    path = tuning.cache_path()
    tuning.store().close()
    tuning.store().forget()
    tuning.forget_choices()
    with open(path, "wb") as f:
        f.write(b"this is not a database" * 100)
    with caplog.at_level(logging.WARNING, logger="flag_gems"):
        assert fake.choose((5,), _sleep) == (1,)  # tuned again into a new file
        assert fake.choose((100,), _sleep) == (1,)
    warnings = [r for r in caplog.records if "tuning cache" in r.getMessage()]
    assert len(warnings) == 1 and "unreadable" in warnings[0].getMessage()
    assert any(name.startswith(os.path.basename(path) + ".corrupt-") for name in os.listdir(os.path.dirname(path)))
    assert len(tuning.store().rows("t_corrupt")) == 2


# -- python -m flag_gems.tuning -----------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_cache_cli(tmp_path, capsys, suffix):
    tuning.set_tuning_mode("quick")
    _sleeper("t_cli").choose((5,), _sleep)
    assert cache_cli.main(["show"]) == 0
    shown = capsys.readouterr().out
    assert "(1 entries)" in shown and "t_cli" in shown and "ms=1" in shown

    exported = str(tmp_path / f"tuned{suffix}")
    assert cache_cli.main(["export", exported]) == 0
    document = (yaml.safe_load if suffix == ".yaml" else json.load)(open(exported))
    assert document["entries"][0]["config"] == {"ms": 1} and document["entries"][0]["key"] == [8]

    assert cache_cli.main(["clear"]) == 0
    assert tuning.store().rows() == []
    assert cache_cli.main(["import", exported]) == 0
    [row] = tuning.store().rows()
    assert json.loads(row["config"]) == {"ms": 1}
    tuning.forget_choices()
    tuning.set_tuning_mode("cache")
    assert _sleeper("t_cli").choose((6,), _sleep) == (1,)  # the imported entry serves


def test_cache_cli_refuses_bad_imports(tmp_path, capsys):
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    assert cache_cli.main(["import", str(garbage)]) == 2
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({"flag_gems_tuning": 1, "vendor": "nvidia", "device": "B200",
                                     "triton": "9.9", "entries": []}))
    assert cache_cli.main(["import", str(other)]) == 2
    assert "--force" in capsys.readouterr().err
    assert cache_cli.main(["import", str(other), "--force"]) == 0


# -- pretune and capture ------------------------------------------------------------------------


def _write(path, document):
    path.write_text(yaml.safe_dump(document))
    return str(path)


def test_pretune(tmp_path, capsys, monkeypatch):
    # Off the interpreter PyTorch's mm is a candidate too, and the fake clock's 0.5 ms
    # for it beats every config: this test is about our configs.
    monkeypatch.setenv("GEMS_TUNE_NATIVE", "0")
    file = _write(tmp_path / "shapes.yaml", [
        {"op": "mm", "dtypes": ["float32", "float16"], "shapes": [[[6, 10], [10, 12]],
                                                                 [[6, 10], {"shape": [10, 12], "stride": [1, 10]}]]},
        {"op": "_softmax", "dtype": "float32", "shapes": [[[3, 5]]], "args": {"dim": -1, "half_to_float": False}},
    ])
    assert pretune.main(["--shapes", file]) == 0
    out, err = capsys.readouterr()
    assert "5/5" in err  # the progress bar
    table = out.splitlines()
    assert table[0].split() == ["op", "dtype", "shape", "chosen", "config", "time", "ms"]
    mm_rows = [line for line in table if line.startswith("mm ")]
    assert len(mm_rows) == 4 and all("BLOCK_M=" in line and "(tuned)" in line for line in mm_rows)
    assert "no tunable kernel" in next(line for line in table if line.startswith("_softmax"))
    assert len(tuning.store().rows("mm")) == 4
    assert tuning.tuning_mode() == "cache"  # full only while pretune ran


def test_pretune_pointwise(tmp_path, capsys, monkeypatch):
    """Pretune shows the pointwise kernels' choices, and a new process reads them."""
    monkeypatch.setenv("GEMS_TUNE_MAX_CONFIGS", "2")
    file = _write(tmp_path / "shapes.yaml", [
        {"op": "exp", "dtype": "float32", "shapes": [[[BIG]], [[100]]]},
        {"op": "add.Tensor", "dtype": "float16",
         "shapes": [[[300, 400], {"shape": [300, 400], "stride": [1, 300]}]]},
    ])
    assert pretune.main(["--shapes", file, "--mode", "quick"]) == 0
    table = capsys.readouterr().out.splitlines()
    big, small = [line for line in table if line.startswith("exp ")]
    assert "pointwise_flat: BLOCK=" in big and "(tuned)" in big
    assert "pointwise_flat: BLOCK=128 num_warps=4 (heuristic)" in small  # tiny tensors are never tuned
    added = next(line for line in table if line.startswith("add.Tensor "))
    assert "pointwise_strided: BLOCK_R=" in added and "(tuned)" in added
    stats = _python(
        "import json, torch, flag_gems\n"
        "from flag_gems import tuning\n"
        f"x = torch.randn({BIG}, device=flag_gems.device)\n"
        "with flag_gems.use_gems():\n"
        "    torch.exp(x)\n"
        "print(json.dumps(tuning.stats()))\n", dict(os.environ, GEMS_TUNE="quick", PYTHONPATH=SRC))
    counts = json.loads(stats.splitlines()[-1])
    assert counts["tuned"] == 0 and counts["timed"] == 0 and counts["from_cache"] == 1


@pytest.mark.parametrize("entry, message", [
    ({"op": "matmulz", "dtype": "float32", "shapes": [[[2, 3], [3, 4]]]}, "unknown op"),
    ({"op": "mm", "dtype": "float32", "shapes": [[[2, 3], [4, 5]]]}, "malformed shape"),
    ({"op": "mm", "dtype": "float32", "shapes": [[[2, "x"], [3, 4]]]}, "malformed shape"),
    ({"op": "mm", "dtype": "float32", "shapes": [[[2, 3]]]}, "malformed shape"),
    ({"op": "mm", "dtype": "float24", "shapes": [[[2, 3], [3, 4]]]}, "unsupported dtype"),
    ({"op": "mm", "dtype": "complex64", "shapes": [[[2, 3], [3, 4]]]}, "unsupported dtype"),
], ids=["unknown-op", "shapes-mismatch", "not-a-size", "tensor-count", "dtype-name", "dtype-device"])
def test_pretune_rejects(tmp_path, capsys, entry, message):
    assert pretune.main(["--shapes", _write(tmp_path / "bad.yaml", [entry])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pretune: error: ") and message in err
    assert tuning.store().rows() == []


def test_capture(tmp_path):
    path = tmp_path / "captured.yaml"
    a, b = make((4, 6), torch.float32), make((5, 6), torch.float32)

    def program():
        with flag_gems.use_gems(record=True, path=str(tmp_path / "log")):  # a recorder of its own
            torch.mm(a, b.t())
            torch.mm(a, b.t())
        torch.softmax(a, dim=1)
        (a * 2.0).sum()

    collector = pretune.capture(program, str(path))
    document = yaml.safe_load(path.read_text())
    by_op = {entry["op"]: entry for entry in document}
    assert by_op["mm"] == {"op": "mm", "dtype": "float32",
                           "shapes": [[[4, 6], {"shape": [6, 5], "stride": [1, 6]}]]}
    assert by_op["_softmax"]["args"] == {"dim": 1, "half_to_float": False}
    assert by_op["mul.Tensor"]["args"] == {"other": 2.0}
    assert "sum" in by_op
    assert len(collector.entries()) == len(document)
    assert (tmp_path / "log").read_text().count("aten::mm") == 2  # the program's own log still written
    jobs = shapes.parse(document)
    for job in jobs:
        shapes.check_on_meta(job)
    mm_job = next(job for job in jobs if job.op == "mm")
    _, b_made = mm_job.inputs(DEVICE)[0]
    assert b_made.stride() == (1, 6)


def test_capture_cli(tmp_path):
    script = tmp_path / "program.py"
    # On the device flag_gems routes: on a GPU it does not see CPU tensors.
    script.write_text("import sys, torch\nx = torch.ones(3, int(sys.argv[1]), device=sys.argv[2])\n"
                      "torch.mm(x, x.t())\n")
    out = tmp_path / "shapes.yaml"
    assert pretune.main(["--capture", str(out), "--", str(script), "4", str(DEVICE)]) == 0
    [mm] = [entry for entry in yaml.safe_load(out.read_text()) if entry["op"] == "mm"]
    assert mm["shapes"] == [[[3, 4], {"shape": [4, 3], "stride": [1, 4]}]]


def _python(code_or_args, env):
    args = ["-c", code_or_args] if isinstance(code_or_args, str) else code_or_args
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_no_tuning_after_pretune_in_a_new_process(tmp_path):
    env = dict(os.environ, GEMS_CACHE_DIR=str(tmp_path / "shared"), PYTHONPATH=SRC)
    file = _write(tmp_path / "shapes.yaml", [{"op": "mm", "dtype": "float32", "shapes": [[[9, 12], [12, 10]]]}])
    _python(["-m", "flag_gems.pretune", "--shapes", file], env)
    stats = _python(
        "import json, torch, flag_gems\n"
        "from flag_gems import tuning\n"
        "a, b = torch.randn(9, 12, device=flag_gems.device), torch.randn(12, 10, device=flag_gems.device)\n"
        "with flag_gems.use_gems():\n"
        "    torch.mm(a, b)\n"
        "print(json.dumps(tuning.stats()))\n", dict(env, GEMS_TUNE="full"))
    counts = json.loads(stats.splitlines()[-1])
    assert counts["tuned"] == 0 and counts["timed"] == 0 and counts["from_cache"] == 1


def test_triton_key_is_hashed_once_per_install(tmp_path):
    """Triton's digest of its own install (its compile cache's key, ~0.4 s per process on
    the H100 host), which Launcher waits for before its first compile: the first process
    computes it, the next reads it; both hand Triton its own digest; a damaged file is
    computed again."""
    env = dict(os.environ, GEMS_CACHE_DIR=str(tmp_path), PYTHONPATH=SRC)
    code = ("import triton.runtime.cache as triton_cache\n"
            "original = triton_cache.triton_key\n"
            "from flag_gems.runtime.warm_up import triton_warm_up\n"
            "triton_warm_up.wait()\n"
            "print(triton_cache.triton_key() == original.__wrapped__(), original.cache_info().currsize)\n")
    assert _python(code, env).split() == ["True", "1"]
    assert _python(code, env).split() == ["True", "0"]
    [kept] = (tmp_path / "triton_key").iterdir()
    kept.write_text("damaged")
    assert _python(code, env).split() == ["True", "1"]


def test_pretune_tunes_reductions(tmp_path, capsys, small_reductions_tune):
    file = _write(tmp_path / "shapes.yaml", [
        {"op": "sum.dim_IntList", "dtype": "float32", "shapes": [[[12, 40]]], "args": {"dim": [1]}},
        {"op": "sum.dim_IntList", "dtype": "float16", "shapes": [[[12, 40]]], "args": {"dim": [0]}},
        {"op": "amax", "dtype": "float32", "shapes": [[[12, 40]]], "args": {"dim": [-1]}},
    ])
    assert pretune.main(["--shapes", file]) == 0
    table = capsys.readouterr().out.splitlines()
    rows = [line for line in table if line.startswith(("sum", "amax"))]
    assert len(rows) == 3 and all("(tuned)" in line for line in rows)
    assert "reduce_rows: BLOCK_A=" in rows[0] and "reduce_cols: BLOCK_N=" in rows[1] and "reduce_rows" in rows[2]
    assert len(tuning.store().rows("reduce_rows")) == 2 and len(tuning.store().rows("reduce_cols")) == 1


def test_tuned_reduction_is_read_in_a_new_process(tmp_path):
    env = dict(os.environ, GEMS_CACHE_DIR=str(tmp_path / "shared"), PYTHONPATH=SRC, GEMS_TUNE="full")
    code = ("import json, torch, flag_gems\n"
            "from flag_gems import tuning\n"
            "from flag_gems.codegen import reduction\n"
            "reduction.TUNED_FROM = 128\n"
            "x = torch.randn(12, 40, device=flag_gems.device)\n"
            "with flag_gems.use_gems():\n"
            "    torch.argmax(x, 1)\n"
            "print(json.dumps(tuning.stats()))\n")
    first = json.loads(_python(code, env).splitlines()[-1])
    again = json.loads(_python(code, env).splitlines()[-1])
    assert first["tuned"] == 1 and first["from_cache"] == 0
    assert again["tuned"] == 0 and again["timed"] == 0 and again["from_cache"] == 1


@pytest.mark.parametrize("name", ["llm_mm_shapes.yaml", "llm_attention_shapes.yaml"])
def test_shipped_shapes_files_are_valid(name):
    """The shapes files the shipped exports are made from parse, and every call type-checks
    on the meta device (pretune's own checks before it runs anything)."""
    from flag_gems.pretune import shapes

    path = os.path.join(os.path.dirname(tuning.__file__), "shipped", name)
    with open(path) as f:
        jobs = shapes.parse(yaml.safe_load(f))
    assert jobs
    for job in jobs:
        assert shapes.check_on_meta(job) > 0
