"""flag_gems' cache folder (GEMS_CACHE_DIR): its subfolders, and the per-process temporary
folder that replaces it, with one warning, where it cannot be used."""

import atexit
import contextlib
import errno
import logging
import os
import shutil
import tempfile
import threading

logger = logging.getLogger("flag_gems")


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
