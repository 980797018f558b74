"""Faults of the tuning cache file (issue 22): whatever happens to it, calls compute the
right results with at most one warning. CPU interpreter, the CPU vendor's small spaces,
small tensors; the fixtures and the fake clock are test_tuning's."""

import logging
import os
import sqlite3

import pytest
import torch

import flag_gems
from flag_gems import pretune, tuning
from flag_gems.codegen import reduction
from flag_gems.tuning import __main__ as cache_cli
from flag_gems.tuning import tuner

from conftest import make
from test_tuning import BIG, _own_cache, _sleep, _sleeper, _write  # noqa: F401 - _own_cache: the autouse fixture


@pytest.fixture
def warnings(caplog):
    """The flag_gems warnings about the tuning cache (or the whole cache folder), as a function
    returning them."""
    caplog.set_level(logging.WARNING, logger="flag_gems")
    return lambda: [r.getMessage() for r in caplog.records
                    if "tuning cache" in r.getMessage() or "cache directory" in r.getMessage()]


def _fresh_store(monkeypatch):
    """A new process's view: no store, no memo, no copies."""
    tuning.store().close()
    monkeypatch.setattr(tuner, "_active_store", None)
    tuning.forget_choices()


def _mm_and_sums(monkeypatch):
    """mm, a row sum and a column sum, checked against PyTorch."""
    monkeypatch.setattr(reduction, "TUNED_FROM", 128)
    a, b, x = make((6, 10), torch.float32), make((10, 12), torch.float32), make((12, 40), torch.float32)
    with flag_gems.use_gems():
        got = torch.mm(a, b), torch.sum(x, 1), torch.sum(x, 0)
    for value, expected in zip(got, (torch.mm(a, b), torch.sum(x, 1), torch.sum(x, 0))):
        torch.testing.assert_close(value, expected, rtol=1e-4, atol=1e-4)


def _exp_big():
    x = make((BIG,), torch.float32)
    with flag_gems.use_gems():
        got = torch.exp(x)
    torch.testing.assert_close(got, torch.exp(x))


@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_cache_folder_cannot_be_made(tmp_path, monkeypatch, warnings, capsys, where):
    """GEMS_CACHE_DIR names a regular file (or a path under one): memory only, one warning."""
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    monkeypatch.setenv("GEMS_CACHE_DIR", str(afile if where == "file" else afile / "x"))
    _fresh_store(monkeypatch)
    for mode in ("cache", "quick"):
        tuning.set_tuning_mode(mode)
        _mm_and_sums(monkeypatch)
    assert tuning.stats()["tuned"] == 3  # quick mode tuned, into memory
    [warning] = warnings()
    assert str(afile) in warning and "tuned configs in memory" in warning
    assert cache_cli.main(["show"]) == 0
    assert "not usable" in capsys.readouterr().out
    assert len(warnings()) == 1


def test_database_cannot_be_opened(monkeypatch, warnings):
    """sqlite3.connect itself raises PermissionError: memory only, one warning."""
    _fresh_store(monkeypatch)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", args[0])

    monkeypatch.setattr(sqlite3, "connect", refuse)
    tuning.set_tuning_mode("quick")
    _mm_and_sums(monkeypatch)
    assert len(warnings()) == 1 and "Permission denied" in warnings()[0]


def test_read_only_cache_is_used(monkeypatch, warnings):
    """A populated file that cannot be written. As root file modes are ignored, so every
    connection the store opens by name gets ``PRAGMA query_only``: each write then fails
    with SQLite's own "attempt to write a readonly database", as on a read-only file. The
    store's read-only connection (a ``file:...?mode=ro`` URI) is left as it is."""
    tuning.set_tuning_mode("quick")
    _mm_and_sums(monkeypatch)
    path = tuning.cache_path()
    stored = len(tuning.store().rows())
    _fresh_store(monkeypatch)
    connect = sqlite3.connect

    def read_only(database, *args, **kwargs):
        connection = connect(database, *args, **kwargs)
        if not kwargs.get("uri"):
            connection.execute("PRAGMA query_only = ON")
        return connection

    monkeypatch.setattr(sqlite3, "connect", read_only)
    tuning.set_tuning_mode("cache")
    tuning.stats(reset=True)
    _mm_and_sums(monkeypatch)
    assert tuning.stats()["from_cache"] == 3 and tuning.stats()["heuristic"] == 0
    [warning] = warnings()
    assert "readonly" in warning and "read-only" in warning
    tuning.set_tuning_mode("quick")  # new keys: tuned, kept in memory
    a = make((40, 33), torch.float32)
    with flag_gems.use_gems():
        got = torch.sum(a, 1)
    torch.testing.assert_close(got, torch.sum(a, 1), rtol=1e-4, atol=1e-4)
    assert tuning.stats()["tuned"] == 1 and len(tuning.store().rows()) == stored + 1
    assert len(warnings()) == 1
    monkeypatch.setattr(sqlite3, "connect", connect)
    with connect(path) as db:
        assert db.execute("SELECT count(*) FROM entries").fetchone()[0] == stored


def _damage(path, kernel, config_sql):
    with sqlite3.connect(path) as db:
        db.execute(f"UPDATE entries SET config = {config_sql} WHERE kernel = ?", (kernel,))


@pytest.mark.parametrize("kernel, config_sql", [
    ("mm", "'{\"BLOCK_M\": 16,'"),  # not JSON
    ("reduce_cols", "'[16, 32]'"),  # JSON of the wrong shape
    ("reduce_rows", "'{\"BLOCK_A\": 1}'"),
    ("mm", "'\"native\"'"),  # native where the CPU tunes without it is fine: mm offers it
    ("reduce_rows", "CAST(X'FFFE7B7D' AS TEXT)"),  # not UTF-8
], ids=["not-json", "wrong-shape", "wrong-fields", "native", "not-utf8"])
def test_damaged_entries_are_dropped(monkeypatch, warnings, kernel, config_sql):
    tuning.set_tuning_mode("quick")
    _mm_and_sums(monkeypatch)
    path = tuning.cache_path()
    _damage(path, kernel, config_sql)
    _fresh_store(monkeypatch)
    tuning.set_tuning_mode("cache")
    _mm_and_sums(monkeypatch)
    if config_sql == "'\"native\"'":
        assert warnings() == []
        return
    [warning] = warnings()
    assert "dropped the invalid" in warning and kernel in warning
    with sqlite3.connect(path) as db:  # deleted: the file is writable
        assert db.execute("SELECT count(*) FROM entries WHERE kernel = ?", (kernel,)).fetchone()[0] == 0


def test_pointwise_block_one_is_dropped(monkeypatch, warnings, capsys):
    """A well-formed config the kernel never offers (BLOCK=1) is not run; show says so."""
    monkeypatch.setenv("GEMS_TUNE_MAX_CONFIGS", "2")
    tuning.set_tuning_mode("quick")
    _exp_big()
    _damage(tuning.cache_path(), "pointwise_flat", "'{\"BLOCK\": 1, \"num_warps\": 4}'")
    _fresh_store(monkeypatch)
    assert cache_cli.main(["show"]) == 0
    out = capsys.readouterr().out
    assert "(0 entries)" in out and "dropped invalid entry: pointwise_flat" in out
    tuning.set_tuning_mode("cache")
    tuning.stats(reset=True)
    _exp_big()
    assert tuning.stats()["heuristic"] == 1
    assert len(warnings()) == 1


def test_a_stored_heuristic_choice_outside_the_space_is_used(monkeypatch, warnings):
    """The heuristic competes and is stored when it wins, even where it is none of the space's
    configs: a later process reads it back as valid (no warning, nothing dropped)."""
    fake = _sleeper("t_heuristic_outside", space=((5,), (6,)), heuristic=(4,))  # 4 ms: it wins
    tuning.set_tuning_mode("quick")
    assert fake.choose((100,), _sleep) == (4,)
    _fresh_store(monkeypatch)
    tuning.set_tuning_mode("cache")
    tuning.stats(reset=True)
    assert fake.choose((100,), _sleep) == (4,)
    assert tuning.stats()["from_cache"] == 1 and warnings() == []


def test_pretune_notices_a_removed_cache(tmp_path, monkeypatch, capsys, warnings):
    """The file is deleted after the first call: the second call's store makes it again
    with both entries, and pretune exits 1 saying so."""
    file = _write(tmp_path / "shapes.yaml", [
        {"op": "mm", "dtype": "float32", "shapes": [[[6, 10], [10, 12]], [[40, 10], [10, 40]]]}])
    run = pretune._run
    calls = []

    def run_then_remove(*args):
        rows = run(*args)
        if not calls:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(tuning.cache_path() + suffix):
                    os.remove(tuning.cache_path() + suffix)
        calls.append(rows)
        return rows

    monkeypatch.setattr(pretune, "_run", run_then_remove)
    assert pretune.main(["--shapes", file, "--mode", "quick"]) == 1
    assert "was removed" in capsys.readouterr().err
    _fresh_store(monkeypatch)
    assert len(tuning.store().rows("mm")) == 2
    assert len(warnings()) == 1


def test_pretune_into_an_unusable_cache_fails(tmp_path, monkeypatch, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    monkeypatch.setenv("GEMS_CACHE_DIR", str(afile))
    _fresh_store(monkeypatch)
    file = _write(tmp_path / "shapes.yaml", [{"op": "mm", "dtype": "float32", "shapes": [[[6, 10], [10, 12]]]}])
    assert pretune.main(["--shapes", file, "--mode", "quick"]) == 1
    assert "not stored" in capsys.readouterr().err


def test_pretune_rejects_a_call_too_large_for_the_device(tmp_path, monkeypatch, capsys):
    file = _write(tmp_path / "shapes.yaml", [
        {"op": "mm", "dtype": "float32", "shapes": [[[6, 10], [10, 12]]]},
        {"op": "exp", "dtype": "float32", "shapes": [[[1 << 22, 1 << 22]]]}])
    ran = []
    monkeypatch.setattr(pretune, "_run", lambda *args: ran.append(args))
    assert pretune.main(["--shapes", file]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pretune: error: ") and "exp float32 4194304x4194304 needs" in err
    assert ran == []
