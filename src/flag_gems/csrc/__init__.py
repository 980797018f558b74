"""Building and loading the C++ wrappers (see ``flag_gems.c_operators``)."""

import glob
import hashlib
import importlib.util
import os
import pathlib
from functools import lru_cache

import torch

from ..runtime import cache_dir

NAME = "flag_gems_c_operators"


class Served:
    """Calls the C++ wrappers have launched, so the record log can say "c++"."""

    count = 0
_HERE = os.path.dirname(__file__)
SOURCES = [os.path.join(_HERE, name) for name in ("pointwise_fast.cpp", "kernel_backward.cpp")]
HEADERS = [os.path.join(_HERE, "cuda_launch.h")]


def _build_directory():
    sources = b"".join(pathlib.Path(path).read_bytes() for path in SOURCES + HEADERS)
    digest = hashlib.sha256(sources).hexdigest()[:12]
    return cache_dir("c_operators", f"torch-{torch.__version__}-{digest}")


def load(build):
    """The extension module; built first when ``build``. None where it cannot be
    had: no CUDA build of torch (ROCm has no cuLaunchKernel), or not built yet."""
    if torch.version.cuda is None or torch.version.hip is not None:
        return None
    directory = _build_directory()
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


# ---- C++ backward nodes (kernel_backward.cpp)

_SLOT, _INTEGER, _FLOAT32, _SKIP = 0, 1, 2, 3  # kernel_backward.cpp's ParamKind
_python_backwards = {}  # spec -> the Python backward for the calls the spec does not cover


def _python_backward(spec, grad, *saved):
    return _python_backwards[spec](grad, *saved)


def register_backward(compiled, grid, args, slots, grad, python_backward, skip_at=None):
    """Hand a backward kernel that just ran, ``compiled`` on ``grid`` with ``args``, to a
    C++ autograd node: the spec's index for ``attach_backward``, or None where the
    wrappers are not built or cannot launch it. ``slots[i]`` numbers the tensor at
    ``args[i]``: the saved tensors from 0, then the gradient, then the result.
    ``args[skip_at]``, where given, is the float the node sets per launch (1 into a
    speculated result, else NaN; see kernel_backward.cpp).
    ``python_backward(grad, *saved)`` serves the calls the spec was not compiled for:
    a gradient of another dtype, shape or alignment, or a graph-building backward."""
    # Imported here: the router imports csrc, and codegen must not fix the vendor that early.
    from ..codegen.direct_launch import kinds as param_kinds, servable

    extension = prebuilt()
    metadata = getattr(compiled, "metadata", None)
    if extension is None or metadata is None or not servable(compiled):
        return None
    kinds = param_kinds(compiled.src.signature.values(), len(args))
    if kinds is None:
        return None
    params = []
    for position, (arg, kind) in enumerate(zip(args, kinds.decode())):
        if kind == "-":  # a constexpr parameter, or an int Triton specialized (1)
            continue
        if position == skip_at and kind == "f":
            params.append((_SKIP, 0, 0.0))
        elif kind == "p" and isinstance(arg, torch.Tensor) and position < len(slots):
            params.append((_SLOT, slots[position], 0.0))
        elif kind == "i" and type(arg) is int:
            params.append((_INTEGER, arg, 0.0))
        elif kind == "f" and isinstance(arg, (int, float)):
            params.append((_FLOAT32, 0, float(arg)))
        else:
            return None
    spec = extension.register_backward(compiled.function, list((*grid, 1, 1)[:3]), metadata.num_warps * 32,
                                       metadata.shared, params, grad.dtype, grad.data_ptr() % 16 == 0)
    if spec < 0:
        return None
    if not _python_backwards:
        extension.set_backward_fallback(_python_backward)
    _python_backwards[spec] = python_backward
    return spec
