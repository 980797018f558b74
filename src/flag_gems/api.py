"""enable / only_enable / use_gems / disable / all_registered_ops."""

import contextlib
import difflib
import threading
from functools import lru_cache

import torch

from . import fastpath
from .dispatch import ensure_registered, state
from .dispatch.record import Recorder, Tee

_lock = threading.RLock()


@lru_cache(maxsize=None)
def _rows():
    from . import ops

    return ops.collect_rows()


@lru_cache(maxsize=None)
def _is_aten_name(name):
    base, _, overload = name.partition(".")
    try:
        torch._C._get_schema(f"aten::{base}", overload)
        return True
    except RuntimeError:
        return bool(not overload and hasattr(torch.ops.aten, base))


def _matches(name, row):
    """'div' covers every div overload and its in-place and out forms;
    'div.Tensor' (or 'aten::div.Tensor') exactly that overload."""
    if "." in name:
        return row.name == name
    return row.base in (name, name + "_") or row.name == name


@lru_cache(maxsize=None)
def _resolve(names, must_be_ours):
    """Indices of the rows named by ``names``; ValueError for unknown names."""
    rows = _rows()
    chosen = set()
    for raw in names:
        if not isinstance(raw, str):
            raise TypeError(f"operator names must be strings, got {type(raw).__name__}")
        name = raw[len("aten::"):] if raw.startswith("aten::") else raw
        hits = {i for i, row in enumerate(rows) if _matches(name, row)}
        if not hits and (must_be_ours or not _is_aten_name(name)):
            candidates = sorted({r.name for r in rows} | {r.base for r in rows})
            close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.6)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            what = "is not an operator flag_gems implements" if _is_aten_name(name) else "is not an aten operator"
            raise ValueError(f"{raw!r} {what}{hint}")
        chosen |= hits
    return frozenset(chosen)


def _as_tuple(names):
    if names is None:
        return ()
    if isinstance(names, str):
        return (names,)
    return tuple(names)


class _Scope:
    """The rows and record log wanted by enable / only_enable / disable (the base) or by one
    open use_gems block (its ``recorder`` None: the one outside it)."""

    __slots__ = ("wanted", "recorder")

    def __init__(self, wanted, recorder):
        self.wanted, self.recorder = wanted, recorder


# Routing is process-wide. The latest open block (across all threads) decides the rows, the
# latest one recording (else the base) the log; leaving a block undoes only its own part.
_base = _Scope(frozenset(), None)
_blocks = []  # open use_gems blocks, in entry order


def _apply():
    """Under _lock: set every row's flag and the recorder from the base and the open blocks."""
    wanted = (_blocks[-1] if _blocks else _base).wanted
    for i, row in enumerate(_rows()):
        row.active = i in wanted and ensure_registered(row)
    _apply_recorder()


def _apply_recorder():
    recorder = next((b.recorder for b in reversed(_blocks) if b.recorder is not None), _base.recorder)
    state.recorder = _beside_capture(None if recorder is None or recorder.failed else recorder)
    fastpath.sync_routes(recording=state.recorder is not None)


def _recorder_failed(recorder):
    """A log that failed to write is off (it warned): route calls past it from now on."""
    with _lock:
        _apply_recorder()


def _open_log(record, path, once=False):
    """A new record log, or None; raises (leaving every state as it was) when it cannot open."""
    return Recorder(path, once, on_failure=_recorder_failed) if record else None


def _beside_capture(recorder):
    """While a shape capture runs, it sees every call, whatever recorder the program sets."""
    capture = state.capture
    if capture is None or recorder is capture or isinstance(recorder, Tee):
        return recorder
    return capture if recorder is None else Tee(capture, recorder)


@contextlib.contextmanager
def capturing(collector):
    """Inside the block ``collector.log(name, impl, args, kwargs)`` sees every routed call
    (beside any record log the program opens); the pretune's shape capture uses it."""
    with _lock:
        previous = state.capture
        state.capture = collector
        _apply_recorder()  # the C++ routes see no calls for the collector: step aside
    try:
        yield
    finally:
        with _lock:
            state.capture = previous
            _apply_recorder()


def _set_base(wanted, record, path, once):
    recorder = _open_log(record, path, once)  # first: a log that cannot open changes nothing
    replaced = _base.recorder
    _base.wanted, _base.recorder = wanted, recorder
    _apply()
    if replaced is not None:
        replaced.close()


def enable(unused=None, record=False, path=None, once=False):
    """Route every operator flag_gems implements, except those in ``unused``."""
    with _lock:
        excluded = _resolve(_as_tuple(unused), False)
        _set_base(frozenset(range(len(_rows()))) - excluded, record, path, once)


def only_enable(include, record=False, path=None, once=False):
    """Route only the operators in ``include``."""
    with _lock:
        _set_base(_resolve(_as_tuple(include), True), record, path, once)


def disable():
    """Give every operator back to PyTorch's native kernels and stop recording."""
    with _lock:
        _set_base(frozenset(), False, None, False)


@contextlib.contextmanager
def use_gems(include=None, exclude=None, record=False, path=None, once=False):
    """Route ``include`` (default: all) minus ``exclude`` inside the block; on exit, exceptions
    included, exactly this block's change is undone, whichever blocks (of any thread) left
    before it. Routing is process-wide: other threads' calls see the block too. ``record``,
    ``path`` and ``once`` are enable's: the block's own log (each operator once with ``once``)."""
    with _lock:
        wanted = _resolve(_as_tuple(include), True) if include is not None else frozenset(range(len(_rows())))
        block = _Scope(wanted - _resolve(_as_tuple(exclude), False), _open_log(record, path, once))
        _blocks.append(block)
        _apply()
    try:
        yield
    finally:
        with _lock:
            _blocks.remove(block)
            _apply()
        if block.recorder is not None:
            block.recorder.close()


def all_registered_ops():
    """The aten overload names currently routed to flag_gems."""
    return [row.name for row in _rows() if row.active]


def rows_named(name):
    """The rows ``name`` selects, as ``only_enable`` reads it; ValueError for a name
    flag_gems does not implement."""
    rows = _rows()
    return [rows[i] for i in sorted(_resolve((name,), True))]
