"""C++ routes (csrc/pointwise_fast.cpp): a boxed kernel registered on the CUDA key in
front of a row's Python router. A call of the covered form whose kernel the C++ table
holds launches with no Python at all; anything else goes to the router unchanged."""

import threading
from typing import NamedTuple, Optional

import torch

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


def _install(row, extension):
    """A C++ route in front of ``row``'s router, where its schema allows one: leading
    operands without defaults (one tensor, or a tensor and a tensor or float), then
    only arguments with plain defaults, which the route requires."""
    if row.cpp is None or row.native is None or row in _routed:
        return
    base, _, overload = row.name.partition(".")
    arguments = torch._C._get_schema(f"aten::{base}", overload).arguments
    operands = next((i for i, a in enumerate(arguments) if a.has_default_value()), len(arguments))
    defaults = [_encode_default(a.default_value) for a in arguments[operands:] if a.has_default_value()]
    cpp_id = row.cpp.pointwise.cpp.id if row.cpp.pointwise.cpp is not None else None
    if cpp_id is None or operands not in (1, 2) or None in defaults or len(defaults) != len(arguments) - operands:
        return
    extension.install_route(row.name, cpp_id, operands, defaults, row.cpp.alpha, row.cpp.floats)
    _routed.append(row)


def install_routes(rows):
    """Routes for every registered row of ``rows`` that declares one (CUDA only; nothing
    before the C++ wrappers are built)."""
    extension = prebuilt()
    if extension is None:
        return
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
