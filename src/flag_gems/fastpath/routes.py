"""C++ routes (csrc/routes.cpp): a boxed kernel registered on the CUDA key in front of
each row's Python router. A call whose layout the router planned before replays the plan
(its launches, or the native kernel) with no Python at all; a contiguous elementwise call
whose kernel the C++ table holds launches it; anything else goes to the router, which
plans it when the route asks (plans.py)."""

import threading
from typing import NamedTuple, Optional

import torch

from ..runtime import nesting
from .build import prebuilt


class CppRoute(NamedTuple):
    """What a row declares for its C++ route: the ``Pointwise`` whose kernels it
    launches; ``alpha`` the int its kernel takes after the tensors (add/sub); ``floats``
    whether a float operand may be passed as given (not where the Python path rounds
    it first, as comparisons of halves do)."""

    pointwise: object
    alpha: Optional[int] = None
    floats: bool = True


_routed = []  # rows with a C++ route, in the order the extension numbered them
_lock = threading.Lock()
_recording = False


def _encode_default(value):
    if isinstance(value, bool):
        return f"b:{int(value)}"
    if isinstance(value, int):
        return f"i:{value}"
    if isinstance(value, str):
        return f"s:{value}"
    return None if value is not None else "n:"


def _pointwise(row):
    """The arguments of install_route that describe the elementwise kernel table's share
    of a row's calls: where its schema allows one, leading operands without defaults (one
    tensor, or a tensor and a tensor or float), then only arguments with plain defaults,
    which the route requires."""
    none = (-1, 0, [], None, True)
    cpp_id = row.cpp.pointwise.cpp.id if row.cpp is not None and row.cpp.pointwise.cpp is not None else None
    if cpp_id is None:
        return none
    base, _, overload = row.name.partition(".")
    arguments = torch._C._get_schema(f"aten::{base}", overload).arguments
    operands = next((i for i, a in enumerate(arguments) if a.has_default_value()), len(arguments))
    defaults = [_encode_default(a.default_value) for a in arguments[operands:] if a.has_default_value()]
    if operands not in (1, 2) or None in defaults or len(defaults) != len(arguments) - operands:
        return none
    return cpp_id, operands, defaults, row.cpp.alpha, row.cpp.floats


def _install(row, extension):
    """A C++ route in front of ``row``'s router: it replays the plans the router makes
    (see plans.py) and launches the elementwise kernel table's kernels."""
    if row.native is None or row in _routed:
        return
    extension.install_route(row.name, row.native, *_pointwise(row))
    _routed.append(row)


def install_routes(rows):
    """Routes for every registered row of ``rows`` (CUDA only; nothing before the C++
    wrappers are built)."""
    extension = prebuilt()
    if extension is None:
        return
    global _requested
    nesting.native_hooks = (extension.enter_native, extension.exit_native)
    _requested = extension.plan_requested
    with _lock:
        for row in rows:
            _install(row, extension)
    sync_routes()


def sync_routes(recording=None):
    """Tell the C++ routes which rows are on; while a recorder (or a shape capture) is
    installed they launch nothing, so every call reaches the Python router and is logged."""
    global _recording
    if recording is not None:
        _recording = recording
    if _routed:
        prebuilt().set_routes([row.active and not _recording for row in _routed])


def plan_requested():
    """Whether this call's route asks the Python router to plan it."""
    return _requested()


def _never():
    return False


_requested = _never


def plan_call(name, impl, args, kwargs):
    """``impl(*args, **kwargs)`` for the route that asked, planned (see plans.py)."""
    from .plans import plan_call

    return plan_call(prebuilt(), name, impl, args, kwargs)


def plan_native():
    """The route that asked runs the native kernel for this call's layout from now on."""
    prebuilt().plan_native()


def plan_router():
    """The route that asked leaves this call's layout to the Python router."""
    prebuilt().plan_python(False)


def forget_plans():
    """Every plan made so far is dropped (the tuners forgot the choices they hold)."""
    extension = prebuilt() if _routed else None
    if extension is not None:
        extension.clear_plans()
