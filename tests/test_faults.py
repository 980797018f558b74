"""Faults around the routing: a record log that cannot be written or opened, use_gems
blocks left out of order across threads, several threads launching kernels at once."""

import errno
import io
import os
import threading
import warnings

import pytest
import torch

import flag_gems
from flag_gems.dispatch import state

from conftest import make


class _FullDisk(io.StringIO):
    """A log file on a full disk: every write fails."""

    def write(self, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _FailsOnClose(io.StringIO):
    """A log file whose last flush fails."""

    def close(self):
        super().close()
        raise OSError(errno.EIO, os.strerror(errno.EIO))


def _log_lines(path, prefix="aten::add.Tensor"):
    return [line for line in path.read_text().splitlines() if line.startswith(prefix)]


def _with_one_warning_at_most(fn):
    """``fn()``'s result and the warnings it gave (asserted to be at most one)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    caught = [w for w in caught if "record log" in str(w.message)]
    assert len(caught) <= 1, [str(w.message) for w in caught]
    return result, [str(w.message) for w in caught]


def _add_mul_under_record(path, broken_file=None):
    a = make((3, 4), torch.float32)

    def run():
        flag_gems.enable(record=True, path=str(path))
        if broken_file is not None:
            state.recorder._file = broken_file
        results = (torch.add(a, a), torch.mul(a, a), torch.add(a, 1.0))
        recording_after = state.recorder
        flag_gems.disable()  # never raises for the log
        return results, recording_after

    (results, recording_after), messages = _with_one_warning_at_most(run)
    for result, reference in zip(results, (a + a, a * a, a + 1.0)):
        torch.testing.assert_close(result, reference)
    return recording_after, messages


def test_a_full_disk_turns_recording_off_with_one_warning(tmp_path):
    path = tmp_path / "gems.log"
    recording_after, messages = _add_mul_under_record(path, _FullDisk())
    assert recording_after is None  # recording is off: later calls do not try again
    assert len(messages) == 1 and str(path) in messages[0] and "No space left" in messages[0]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_dev_full_computes_every_result():
    recording_after, messages = _add_mul_under_record("/dev/full")
    assert recording_after is None
    assert len(messages) == 1 and "/dev/full" in messages[0]


def test_a_failing_close_never_raises_from_disable(tmp_path):
    path = tmp_path / "gems.log"
    recording_after, messages = _add_mul_under_record(path, _FailsOnClose())
    assert recording_after is not None  # the writes went through; only the close failed
    assert len(messages) == 1 and str(path) in messages[0]


def _bad_paths(tmp_path):
    regular = tmp_path / "regular"
    regular.write_text("")
    return (tmp_path / "missing" / "gems.log",  # an explicit path's directory must exist
            regular / "gems.log",  # a path under a regular file
            tmp_path)  # a directory


def test_a_failed_enable_leaves_everything_as_it_was(tmp_path):
    good = tmp_path / "good.log"
    a = make((3, 4), torch.float32)
    expected = a + a  # native: before only_enable
    flag_gems.only_enable(include=["add"], record=True, path=str(good))
    routed, recorder = flag_gems.all_registered_ops(), state.recorder
    for bad in _bad_paths(tmp_path):
        with pytest.raises(OSError):
            flag_gems.enable(record=True, path=str(bad))
        with pytest.raises(OSError):
            flag_gems.only_enable(include=["mul"], record=True, path=str(bad))
        with pytest.raises(OSError):
            with flag_gems.use_gems(include=["mm"], record=True, path=str(bad)):
                pass
        assert flag_gems.all_registered_ops() == routed and state.recorder is recorder
    torch.testing.assert_close(torch.add(a, a), expected)
    flag_gems.disable()
    assert not (tmp_path / "missing").exists()
    assert len(_log_lines(good)) == 1  # the old log still receives lines


def _rows_of(*bases):
    return {row.name for row in flag_gems.ops.collect_rows() if row.base in bases}


def _in_threads(*bodies):
    """Run each body on its own thread; re-raise the first failure here."""
    errors = []

    def guarded(body):
        try:
            body()
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    if errors:
        raise errors[0]


def test_use_gems_blocks_leaving_out_of_order_across_threads():
    flag_gems.enable(unused=["sum"])
    base = set(flag_gems.all_registered_ops())
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    a, b = make((4, 4), torch.float32), make((4, 4), torch.float32)
    seen = {}

    def first():
        with flag_gems.use_gems(include=["add"]):
            seen["first"] = set(flag_gems.all_registered_ops())
            torch.testing.assert_close(torch.add(a, b), a.double().add(b.double()).float())
            first_in.set()
            assert second_in.wait(60)
            seen["first, second open"] = set(flag_gems.all_registered_ops())
        first_out.set()  # leaves first: the second block is still open

    def second():
        assert first_in.wait(60)
        with flag_gems.use_gems(include=["mm"]):
            second_in.set()
            assert first_out.wait(60)
            seen["second after first left"] = set(flag_gems.all_registered_ops())
            torch.testing.assert_close(torch.mm(a, b), (a.double() @ b.double()).float())

    _with_one_warning_at_most(lambda: _in_threads(first, second))
    assert seen["first"] == _rows_of("add", "add_")
    assert seen["first, second open"] == _rows_of("mm")
    assert seen["second after first left"] == _rows_of("mm")
    assert set(flag_gems.all_registered_ops()) == base  # what enable() set


def test_four_threads_of_mixed_ops_match_native():
    ops = (lambda x: torch.add(x, x), lambda x: torch.mul(x, 3.0), lambda x: torch.sum(x, 1),
           lambda x: torch.softmax(x, 1))
    inputs = [make((2, 8 + t), torch.float32) for t in range(4)]
    expected = [[op(x) for op in ops] for x in inputs]  # native: before enable()
    calls = 40

    def worker(t):
        def body():
            for i in range(calls):
                k = (i + t) % len(ops)
                torch.testing.assert_close(ops[k](inputs[t]), expected[t][k])
        return body

    flag_gems.enable()
    _with_one_warning_at_most(lambda: _in_threads(*(worker(t) for t in range(4))))


@pytest.mark.skipif(flag_gems.device != "cpu", reason="the interpreter's host copies exist on the CPU backend only")
def test_a_launch_too_large_for_memory_raises_the_allocators_error(monkeypatch):
    """Triton's interpreter copies a kernel's tensors into host memory: where they would not fit,
    the call raises what PyTorch's CPU allocator raises instead of being killed for memory."""
    from flag_gems.codegen import launch

    monkeypatch.setattr(launch, "_available_memory", lambda: 1 << 30)  # as if 1 GiB were free
    a, b = torch.empty(16384, 16384), torch.empty(16384, 16384)  # 1 GiB each, never touched
    with pytest.raises(RuntimeError) as ours:
        with flag_gems.use_gems():
            torch.add(a, b)
    with pytest.raises(RuntimeError) as native:
        torch.empty(1 << 62, dtype=torch.uint8)
    assert all("DefaultCPUAllocator: can't allocate memory" in str(e.value) for e in (ours, native))
    with flag_gems.use_gems():
        torch.testing.assert_close(torch.add(torch.ones(2, 2), 1.0), torch.full((2, 2), 2.0))
