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


def _switch(active_indices, recorder):
    """Make exactly these rows active and install ``recorder``; return the previous state."""
    rows = _rows()
    previous = (tuple(row.active for row in rows), state.recorder)
    for i, row in enumerate(rows):
        want = i in active_indices
        row.active = want and ensure_registered(row)
    state.recorder = _beside_capture(recorder)
    _sync_cpp_routes()
    return previous


def _sync_cpp_routes():
    fastpath.sync_routes(recording=state.recorder is not None)


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
        previous = (state.capture, state.recorder)
        state.capture = collector
        state.recorder = _beside_capture(state.recorder)
        _sync_cpp_routes()  # the C++ routes see no calls for the collector: step aside
    try:
        yield
    finally:
        with _lock:
            state.capture, state.recorder = previous
            _sync_cpp_routes()


def _restore(previous):
    flags, recorder = previous
    for row, flag in zip(_rows(), flags):
        row.active = flag
    state.recorder = recorder
    _sync_cpp_routes()


def _replace_recorder(record, path, once):
    if state.recorder is not None:
        state.recorder.close()
    return Recorder(path, once) if record else None


def enable(unused=None, record=False, path=None, once=False):
    """Route every operator flag_gems implements, except those in ``unused``."""
    with _lock:
        excluded = _resolve(_as_tuple(unused), False)
        wanted = frozenset(range(len(_rows()))) - excluded
        _switch(wanted, _replace_recorder(record, path, once))


def only_enable(include, record=False, path=None, once=False):
    """Route only the operators in ``include``."""
    with _lock:
        wanted = _resolve(_as_tuple(include), True)
        _switch(wanted, _replace_recorder(record, path, once))


def disable():
    """Give every operator back to PyTorch's native kernels and stop recording."""
    with _lock:
        _switch(frozenset(), _replace_recorder(False, None, False))


@contextlib.contextmanager
def use_gems(include=None, exclude=None, record=False, path=None):
    """Route ``include`` (default: all) minus ``exclude`` inside the block;
    the state before it comes back on exit, exceptions included."""
    with _lock:
        wanted = _resolve(_as_tuple(include), True) if include is not None else frozenset(range(len(_rows())))
        wanted -= _resolve(_as_tuple(exclude), False)
        recorder = Recorder(path) if record else state.recorder
        previous = _switch(wanted, recorder)
    try:
        yield
    finally:
        with _lock:
            _restore(previous)
            if record:
                recorder.close()


def all_registered_ops():
    """The aten overload names currently routed to flag_gems."""
    return [row.name for row in _rows() if row.active]


def rows_named(name):
    """The rows ``name`` selects, as ``only_enable`` reads it; ValueError for a name
    flag_gems does not implement."""
    rows = _rows()
    return [rows[i] for i in sorted(_resolve((name,), True))]
