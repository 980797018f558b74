"""The record log: one line per routed call saying which implementation ran."""

import os
import threading
import warnings

import torch


def default_path():
    return os.path.join(os.path.expanduser("~"), ".flag_gems", "record.log")

_DTYPE_SHORT = {
    torch.float16: "f16", torch.bfloat16: "bf16", torch.float32: "f32", torch.float64: "f64",
    torch.int8: "i8", torch.uint8: "u8", torch.int16: "i16", torch.int32: "i32", torch.int64: "i64",
    torch.bool: "b8", torch.complex64: "c64", torch.complex128: "c128",
}


def describe(value) -> str:
    if isinstance(value, torch.Tensor):
        dtype = _DTYPE_SHORT.get(value.dtype, str(value.dtype).replace("torch.", ""))
        return f"{dtype}[{', '.join(map(str, value.shape))}]"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(describe(v) for v in value) + "]"
    return repr(value)


class Recorder:
    """Appends ``aten::<overload>  <impl>  <args>`` lines to a file.

    Opening raises (the caller keeps its state). A failed write, flush or close never
    reaches the call being logged: it turns this log off with one warning and calls
    ``on_failure(self)`` (outside the log's lock)."""

    def __init__(self, path=None, once=False, on_failure=None):
        if path is None:
            path = default_path()
            os.makedirs(os.path.dirname(path), exist_ok=True)
        self.path = os.path.abspath(os.path.expanduser(path))
        self.once = once
        self.failed = False
        self.on_failure = on_failure
        self._seen = set()
        self._lock = threading.Lock()
        # Line-buffered so the log is readable while the program runs.
        self._file = open(self.path, "a", buffering=1)

    def log(self, name, impl, args, kwargs):
        if self.once:
            if name in self._seen:
                return
            self._seen.add(name)
        parts = [describe(a) for a in args] + [f"{k}={describe(v)}" for k, v in kwargs.items()]
        line = f"aten::{name}\t{impl}\t({', '.join(parts)})\n"
        with self._lock:
            if self.failed or self._file.closed:
                return
            try:
                self._file.write(line)
                return
            except OSError as error:
                self._fail(error, "writing")
        if self.on_failure is not None:
            self.on_failure(self)

    def close(self):
        with self._lock:
            if not self._file.closed:
                try:
                    self._file.close()
                except OSError as error:
                    self._fail(error, "closing")

    def _fail(self, error, doing):
        """Under the lock: warn once, turn the log off; the file is closed, quietly."""
        if not self.failed:
            self.failed = True
            warnings.warn(f"flag_gems: {doing} the record log {self.path} failed ({error}); "
                          "recording is off", RuntimeWarning, stacklevel=4)
        try:
            self._file.close()  # a failed close still closes the descriptor
        except OSError:
            pass


class Tee:
    """Hands every call to two recorders: a shape capture beside a record log."""

    def __init__(self, capture, recorder):
        self.capture = capture
        self.recorder = recorder

    def log(self, name, impl, args, kwargs):
        self.capture.log(name, impl, args, kwargs)
        self.recorder.log(name, impl, args, kwargs)

    def close(self):
        self.recorder.close()
