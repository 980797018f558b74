"""Work a process's first compile waits for, started early on background threads.

Before its first compile Triton hashes its own install (libtriton is ~500 MB) to key
its on-disk cache; ``triton_warm_up`` keeps that digest in flag_gems' cache and makes
Triton's driver, on a thread started at an operator's first use.
"""

import contextlib
import hashlib
import os
import sys
import threading

from . import cache_dir, write_atomically

_TRITON_HASHED = ("compiler", "backends", "language", "_C", os.path.join("runtime", "cache.py"))


def _stored_triton_key():
    """``triton.runtime.cache.triton_key()``, read from flag_gems' cache where an earlier
    process left it, else computed and left there; None where Triton's function is not
    the one this was written for.

    Triton keys its on-disk compile cache by that digest of its sources and of libtriton
    (~500 MB), computed once per process before the first compile or cache lookup: ~0.4 s
    on the H100 host. The file is named after the size, mtime and inode of every file the
    digest reads, so any change to the install names another file and computes it again.
    """
    import triton
    import triton.runtime.cache as triton_cache

    original = getattr(triton_cache, "triton_key", None)
    if getattr(original, "cache_info", None) is None:
        return None
    root = os.path.dirname(os.path.abspath(triton.__file__))
    fingerprint = hashlib.sha256(f"{triton.__version__}\0{root}".encode())
    for hashed in _TRITON_HASHED:
        top = os.path.join(root, hashed)
        walked = [(root, [], [hashed])] if os.path.isfile(top) else sorted(os.walk(top))
        for folder, _, files in walked:
            for name in sorted(files):
                path = os.path.join(folder, name)
                try:
                    info = os.stat(path)
                except OSError:
                    continue
                fingerprint.update(f"{path}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_ino}\n".encode())
    try:
        path = os.path.join(cache_dir("triton_key"), fingerprint.hexdigest()[:32])
    except OSError:  # no usable cache: the digest is computed, not kept
        return original()
    try:
        with open(path) as f:
            key = f.read()
    except OSError:
        key = ""
    if not key.startswith(triton.__version__):
        key = original()
        with contextlib.suppress(OSError):  # kept where the cache takes it
            write_atomically(path, key)
    return key


class InBackground:
    """``work()`` run once, on a daemon thread that the first ``start()`` starts;
    ``result()`` waits for it (starting it if need be) and returns what it returned."""

    def __init__(self, work, name):
        self._work, self._name = work, name
        self._lock = threading.Lock()
        self._thread = None
        self._result = None

    def start(self):
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def _run(self):
        self._result = self._work()

    def result(self):
        self.start()
        self._thread.join()
        return self._result


def _prepare_triton():
    """Triton's install digest (``_stored_triton_key``, None where it cannot be had),
    after making Triton's driver."""
    import triton

    try:
        key = _stored_triton_key()
    except Exception:  # noqa: BLE001 - Triton then computes its digest itself
        key = None
    try:
        triton.runtime.driver.active.utils  # noqa: B018 - the driver, made once per process
    except Exception:  # noqa: BLE001 - the first compile meets the same error and reports it
        pass
    return key


class _TritonWarmUp(InBackground):
    """What a process's first compile waits for, prepared on a background thread from
    the first use of an operator: Triton's install digest (``_stored_triton_key``) and
    its driver (which, on a cold Triton cache, builds a C module with the system
    compiler, ~0.4 s). Both run mostly outside the GIL (hashing, file reads, a
    compiler process), so they overlap the caller's Python: importing the operator
    families, planning the first call."""

    def __init__(self):
        super().__init__(_prepare_triton, "flag_gems-triton-warm-up")
        self._installed = False

    def wait(self):
        """Wait for the work (starting it if need be), then hand Triton the digest the way
        Triton's own compile workers get it: ``triton_key`` replaced by a function
        returning it, in every Triton module that holds it."""
        key = self.result()
        with self._lock:
            if self._installed:
                return
            self._installed = True
        import triton.runtime.cache as triton_cache

        original = triton_cache.triton_key
        if key is None or getattr(original, "cache_info", None) is None or original.cache_info().currsize:
            return  # nothing stored, or this process already paid

        def triton_key():
            return key

        for module in [m for name, m in sys.modules.items() if name.startswith("triton.") and m is not None]:
            if getattr(module, "triton_key", None) is original:
                module.triton_key = triton_key


triton_warm_up = _TritonWarmUp()
