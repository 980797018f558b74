"""An unusable GEMS_CACHE_DIR (a regular file, a path under one, a read-only file system)
never breaks an operator: generated kernel sources go to a per-process temporary
directory, with one warning naming the directory and the reason (issue 22)."""

import errno
import logging
import os
import subprocess
import sys
import uuid

import pytest

from flag_gems import runtime
from flag_gems.codegen import cache
from flag_gems.runtime import cache as cache_folder, warm_up

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")

# add, mul, sum, softmax and mm under flag_gems, each against native PyTorch, in a new process.
_OPERATORS = """
import torch, flag_gems
torch.manual_seed(0)
a, b = torch.randn(3, 5), torch.randn(3, 5)
native = [a + b, a * 3, a.sum(), a.sum(1), torch.softmax(a, -1), torch.mm(a, b.t())]
with flag_gems.use_gems():
    ours = [a + b, a * 3, a.sum(), a.sum(1), torch.softmax(a, -1), torch.mm(a, b.t())]
for x, y in zip(ours, native):
    torch.testing.assert_close(x, y)
print("ok")
"""


def _cache_warnings(stderr):
    return [line for line in stderr.splitlines() if "cache directory" in line]


@pytest.mark.parametrize("under_file", [False, True], ids=["regular_file", "path_under_regular_file"])
def test_operators_with_an_unusable_cache_dir(tmp_path, under_file):
    file = tmp_path / "not_a_folder"
    file.write_text("")
    root = file / "cache" if under_file else file
    # In the default tuning mode: the tuning cache's memory-only fallback shares the one warning.
    env = dict(os.environ, GEMS_CACHE_DIR=str(root), PYTHONPATH=SRC)
    env.pop("GEMS_TUNE", None)
    done = subprocess.run([sys.executable, "-c", _OPERATORS], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok"]
    [warning] = _cache_warnings(done.stderr)
    assert str(root) in warning and "Not a directory" in warning and "flag_gems_" in warning
    assert "tuning cache" not in done.stderr
    assert file.read_text() == ""  # left alone


@pytest.fixture
def read_only_cache(tmp_path, monkeypatch):
    """GEMS_CACHE_DIR on a "read-only file system": os.makedirs raises EROFS under it
    (we may run as root, for whom chmod does not make a folder read-only); a fresh
    per-process temporary cache, removed after the test."""
    root = str(tmp_path / "read_only")
    monkeypatch.setenv("GEMS_CACHE_DIR", root)
    makedirs = os.makedirs

    def refusing(path, *args, **kwargs):
        if os.path.abspath(path).startswith(root):
            raise PermissionError(errno.EROFS, os.strerror(errno.EROFS), path)
        return makedirs(path, *args, **kwargs)

    monkeypatch.setattr(os, "makedirs", refusing)
    monkeypatch.setattr(cache_folder, "_temporary", {})
    monkeypatch.setattr(cache_folder, "_writable", {})
    yield root
    if cache_folder._temporary:
        cache_folder._remove_temporary(os.getpid(), cache_folder._temporary["root"])


def _unique_source():
    return f"VALUE = {uuid.uuid4().int}\n"


def test_read_only_cache_dir_falls_back_once(read_only_cache, caplog):
    caplog.set_level(logging.WARNING, logger="flag_gems")
    source = _unique_source()
    module = cache.load_generated("pointwise", "probe", source)
    again = cache.load_generated("reduction", "probe", _unique_source())
    temporary = cache_folder._temporary["root"]
    assert os.path.basename(temporary).startswith("flag_gems_")
    assert module.__file__.startswith(os.path.join(temporary, "codegen", "pointwise"))
    assert again.__file__.startswith(os.path.join(temporary, "codegen", "reduction"))
    assert module.VALUE == int(source.split("=")[1])
    assert not os.path.exists(read_only_cache)
    [warning] = [r.getMessage() for r in caplog.records if "cache directory" in r.getMessage()]
    assert read_only_cache in warning and "Read-only file system" in warning and temporary in warning
    with pytest.raises(OSError):  # the contract the tuning cache relies on
        runtime.cache_dir("tuning")


def test_a_write_refused_after_the_folder_was_made(tmp_path, monkeypatch, caplog):
    """The folder exists, but writing into it fails (a full disk, a file system remounted
    read-only): the source still goes to the temporary cache."""
    monkeypatch.setenv("GEMS_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(cache_folder, "_temporary", {})
    monkeypatch.setattr(cache_folder, "_writable", {})
    folder = runtime.writable_cache_dir("codegen", "pointwise")
    assert folder == os.path.join(str(tmp_path), "codegen", "pointwise")
    mkstemp = cache_folder.tempfile.mkstemp

    def refusing(*args, dir=None, **kwargs):
        if dir == folder:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), dir)
        return mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(cache_folder.tempfile, "mkstemp", refusing)
    caplog.set_level(logging.WARNING, logger="flag_gems")
    try:
        module = cache.load_generated("pointwise", "probe", _unique_source())
        assert module.__file__.startswith(cache_folder._temporary["root"])
        assert os.listdir(folder) == []
        assert len([r for r in caplog.records if "cache directory" in r.getMessage()]) == 1
    finally:
        cache_folder._remove_temporary(os.getpid(), cache_folder._temporary["root"])


def test_triton_digest_without_a_usable_cache(read_only_cache):
    """The digest is then computed (Triton's own function), not stored; no warning, no
    temporary cache."""
    import triton.runtime.cache as triton_cache

    original = triton_cache.triton_key
    if getattr(original, "cache_info", None) is None:
        pytest.skip("this Triton's triton_key is not the one warm_up was written for")
    assert warm_up._stored_triton_key() == original()
    assert cache_folder._temporary == {}


def test_resolved_once_per_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GEMS_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(cache_folder, "_writable", {})
    first = runtime.writable_cache_dir("codegen", "pointwise")
    monkeypatch.setattr(runtime, "cache_dir", None)  # not asked again
    assert runtime.writable_cache_dir("codegen", "pointwise") == first
