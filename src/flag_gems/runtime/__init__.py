"""Which vendor this process runs on, chosen once, lazily, and what it offers.

``flag_gems.runtime.device`` carries the capability flags FlagGems users
read (``support_fp64``, ``support_bf16``, ``support_int64``).
"""

import atexit
import contextlib
import errno
import logging
import os
import shutil
import sys
import tempfile
import threading
from functools import lru_cache

import torch

from ..utils.dtypes import FLOAT_DTYPES
from . import vendors
from .vendors import Vendor

logger = logging.getLogger("flag_gems")


class VendorError(RuntimeError):
    pass


class DeviceInfo:
    """The selected vendor as FlagGems users see it."""

    def __init__(self, vendor: Vendor):
        self.vendor = vendor
        self.vendor_name = vendor.name
        self.name = vendor.device
        self.dispatch_key = vendor.dispatch_key
        self.support_fp64 = vendor.support_fp64
        self.support_bf16 = vendor.support_bf16
        self.support_int64 = vendor.support_int64

    def __repr__(self):
        return f"DeviceInfo(vendor={self.vendor_name!r}, device={self.name!r}, key={self.dispatch_key!r})"


def _describe_detection():
    found = [name for name in vendors.detection_order() if vendors.get(name).detect()]
    return f"known vendors: {', '.join(sorted(vendors.known()))}; detected: {', '.join(found)}"


@lru_cache(maxsize=None)
def selected_vendor() -> Vendor:
    """The vendor of this process: GEMS_VENDOR if set, else the first detected."""
    forced = os.environ.get("GEMS_VENDOR")
    if forced:
        vendor = vendors.get(forced)
        if vendor is None:
            raise VendorError(f"GEMS_VENDOR={forced!r} is not a known vendor ({_describe_detection()})")
        if not vendor.detect():
            raise VendorError(f"GEMS_VENDOR={forced!r}: its device is absent ({_describe_detection()})")
    else:
        vendor = next(vendors.get(n) for n in vendors.detection_order() if vendors.get(n).detect())
        if vendor.interpreted:
            logger.warning("flag_gems: no accelerator found; vendor %r runs Triton kernels on the CPU "
                           "interpreter", vendor.name)
    if vendor.interpreted:
        if _triton_library_compiled():
            logger.warning("flag_gems: Triton was imported before TRITON_INTERPRET=1 was set, so its own "
                           "@jit library (tl.zeros, tl.sum, ...) fails under the CPU interpreter. Set "
                           "TRITON_INTERPRET=1 before importing triton (or torch.testing, which imports it).")
        # Must be set before any @triton.jit is applied, i.e. before ops are imported.
        os.environ["TRITON_INTERPRET"] = "1"
    return vendor


def _triton_library_compiled():
    """Whether Triton defined its @jit library functions for compilation, not interpretation."""
    standard = sys.modules.get("triton.language.standard")
    return type(getattr(standard, "zeros", None)).__name__ == "JITFunction"


def _interpreter_only():
    """A torch built for no accelerator, with no other vendor forced: only the CPU
    interpreter can run kernels (a detail of the build, so detecting it is free)."""
    return os.environ.get("GEMS_VENDOR") in (None, "", "cpu") and torch.version.cuda is None and \
        torch.version.hip is None


# Triton reads TRITON_INTERPRET when it defines its own @jit library, on import: decide
# now if the build already decides, so that a later `import triton` anywhere is safe.
if _interpreter_only():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@lru_cache(maxsize=None)
def device_info() -> DeviceInfo:
    return DeviceInfo(selected_vendor())


def cache_root():
    """flag_gems' cache folder: GEMS_CACHE_DIR, default ~/.flag_gems/cache."""
    return os.environ.get("GEMS_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".flag_gems", "cache")


def cache_dir(*parts):
    """A folder under flag_gems' cache (GEMS_CACHE_DIR, default ~/.flag_gems/cache), made
    if absent. Raises OSError where it cannot be made (a read-only file system, a path
    under a regular file); ``writable_cache_dir`` falls back instead."""
    path = os.path.join(cache_root(), *parts)
    os.makedirs(path, exist_ok=True)
    return path


_temporary = {}  # "pid", "root": this process's temporary cache, made on first need
_temporary_lock = threading.Lock()
_writable = {}  # (cache root, parts) -> the folder writable_cache_dir resolved


def temporary_cache_dir(*parts, reason):
    """``parts`` under this process's temporary cache, which replaces flag_gems' cache where
    that is unusable (``reason``): made once per process, on first need, with one warning,
    and removed at exit (Triton reads kernel sources from real files)."""
    made = None
    with _temporary_lock:
        if _temporary.get("pid") != os.getpid():  # a forked child makes its own
            made = tempfile.mkdtemp(prefix="flag_gems_")
            _temporary.update(pid=os.getpid(), root=made)
            atexit.register(_remove_temporary, os.getpid(), made)
    if made is not None:
        warn_unusable_cache(f"{reason}; generated kernels go to {made}")
    path = os.path.join(_temporary["root"], *parts)
    os.makedirs(path, exist_ok=True)
    return path


_unusable_roots = set()  # cache folders this process has said it cannot use


def warn_unusable_cache(reason):
    """Say once per process and cache folder that flag_gems' cache cannot be used: generated
    kernels then go to a temporary folder and tuned configs stay in memory."""
    root = cache_root()
    with _temporary_lock:
        if root in _unusable_roots:
            return
        _unusable_roots.add(root)
    logger.warning("flag_gems: the cache directory %s is unusable (%s); this process keeps generated kernels "
                   "in a temporary folder and tuned configs in memory", root, reason)


def _remove_temporary(pid, root):
    if os.getpid() == pid:
        shutil.rmtree(root, ignore_errors=True)


def writable_cache_dir(*parts):
    """``cache_dir(*parts)`` where it can be made and written to, else the same folder under
    this process's temporary cache (``temporary_cache_dir``). Resolved once per folder (and
    GEMS_CACHE_DIR); never raises for flag_gems' cache."""
    key = (cache_root(), parts)
    path = _writable.get(key)
    if path is None:
        try:
            path = cache_dir(*parts)
            if not os.access(path, os.W_OK | os.X_OK):
                raise PermissionError(errno.EACCES, "not writable", path)
        except OSError as error:
            path = temporary_cache_dir(*parts, reason=error)
        _writable[key] = path
    return path


def write_atomically(path, data):
    """Write ``data`` (str or bytes) to ``path`` through a temporary file in its folder, so
    that processes writing it at once never show a reader half a file. Raises OSError."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


@lru_cache(maxsize=None)
def compile_options(flush_denormals=False):
    """The selected vendor's Triton compile options for a kernel (see Vendor.compile_options)."""
    return selected_vendor().compile_options(flush_denormals)


def config(kernel: str, default):
    """The selected vendor's config for ``kernel``, or ``default``."""
    return selected_vendor().configs.get(kernel, default)


def __getattr__(name):
    if name == "device":
        return device_info()
    raise AttributeError(f"module 'flag_gems.runtime' has no attribute {name!r}")


@lru_cache(maxsize=None)
def supported_dtypes():
    """The real dtypes our kernels take on this vendor."""
    vendor = selected_vendor()
    dtypes = {torch.float16, torch.float32, torch.int8, torch.uint8, torch.int16, torch.int32, torch.bool}
    if vendor.support_bf16:
        dtypes.add(torch.bfloat16)
    if vendor.support_fp64:
        dtypes.add(torch.float64)
    if vendor.support_int64:
        dtypes.add(torch.int64)
    return frozenset(dtypes)


@lru_cache(maxsize=None)
def multiprocessor_count(device_index=0):
    """Multiprocessors of the device; a handful under the interpreter, where
    every program runs in Python, so that kernels still split their work."""
    if selected_vendor().interpreted:
        return 4
    return torch.cuda.get_device_properties(device_index).multi_processor_count


@lru_cache(maxsize=None)
def supported_float_dtypes():
    """The floating dtypes our kernels take on this vendor."""
    return FLOAT_DTYPES & supported_dtypes()
