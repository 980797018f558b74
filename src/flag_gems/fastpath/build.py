"""Building and loading the C++ wrappers (csrc/: the pointwise kernel table and routes,
the backward nodes); ``flag_gems.c_operators`` builds them on request."""

import glob
import hashlib
import importlib.util
import os
import pathlib
from functools import lru_cache

import torch

from ..runtime import cache_dir, writable_cache_dir

NAME = "flag_gems_c_operators"


class Served:
    """Calls the C++ wrappers have launched, so the record log can say "c++"."""

    count = 0
_HERE = os.path.join(os.path.dirname(__file__), "csrc")
SOURCES = [os.path.join(_HERE, name) for name in ("pointwise_fast.cpp", "routes.cpp", "kernel_backward.cpp")]
HEADERS = [os.path.join(_HERE, name) for name in ("cuda_launch.h", "routes.h")]


def _build_directory(build):
    """Where the extension is built: in flag_gems' cache, or (``build`` only) in this
    process's temporary cache where that is unusable. Raises OSError for an unusable
    cache when not ``build``."""
    sources = b"".join(pathlib.Path(path).read_bytes() for path in SOURCES + HEADERS)
    digest = hashlib.sha256(sources).hexdigest()[:12]
    return (writable_cache_dir if build else cache_dir)("c_operators", f"torch-{torch.__version__}-{digest}")


def load(build):
    """The extension module; built first when ``build``. None where it cannot be
    had: no CUDA build of torch (ROCm has no cuLaunchKernel), or not built yet."""
    if torch.version.cuda is None or torch.version.hip is not None:
        return None
    try:
        directory = _build_directory(build)
    except OSError:  # no usable cache, so nothing built before
        return None
    built = glob.glob(os.path.join(directory, f"{NAME}*.so"))
    if not build:
        # Imported directly: cpp_extension.load would first ask ninja whether the build
        # is current, which costs a user's first call about a second.
        return _import(built[0]) if built else None
    from torch.utils import cpp_extension

    return cpp_extension.load(NAME, SOURCES, build_directory=directory, extra_cflags=["-O3"],
                              with_cuda=True, verbose=False)


def _import(path):
    spec = importlib.util.spec_from_file_location(NAME, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@lru_cache(maxsize=None)
def prebuilt():
    """The extension if it was built before (never builds: no surprise compile
    inside a user's first call), else None."""
    try:
        return load(build=False)
    except Exception:  # noqa: BLE001 - a broken build must never break an operator
        return None


def build():
    """Build the extension (or load it where built before) and let operators use it from
    now on; its module, or None without a CUDA build of torch. Raises on a failed build."""
    extension = load(build=True)
    prebuilt.cache_clear()
    return extension
