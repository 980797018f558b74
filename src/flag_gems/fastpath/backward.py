"""C++ autograd nodes (csrc/kernel_backward.cpp) that launch a fused function's
backward kernel with no Python in the autograd engine's thread.

A Python ``autograd.Function`` runs its backward in the engine's device thread, and
taking the GIL there costs more host time than the kernels. An operator hands over a
backward kernel that just ran (``register_backward``), and its later forwards attach a
node for that spec (``attach_backward``).
"""

import torch

from .build import prebuilt
from .direct_launch import kinds as param_kinds, servable

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


def attach_backward(result, input, saved, spec, name, speculated):
    """``result`` of a forward of ``input`` with a C++ node ``name`` attached that runs
    ``spec`` (from ``register_backward``) over ``saved``; ``speculated``: the gradient the
    forward already wrote for an incoming gradient of 1, or None."""
    return prebuilt().attach_backward(result, input, saved, spec, name, speculated)
