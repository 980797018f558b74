"""The record log: one line per routed call saying which implementation ran."""

import os
import threading

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
    """Appends ``aten::<overload>  <impl>  <args>`` lines to a file."""

    def __init__(self, path=None, once=False):
        self.path = os.path.abspath(os.path.expanduser(path or default_path()))
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.once = once
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
            if not self._file.closed:
                self._file.write(line)

    def close(self):
        with self._lock:
            self._file.close()


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
