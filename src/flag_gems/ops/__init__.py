"""Operator families: one package per family (``pointwise/``, ``reduction/``, ``norm/``,
``loss/``, ``matmul/``, ``movement/``, ``creation/``), one module per operator group. A module declares
its aten rows (``ATEN``) next to its kernels and lists its explicit-call functions in
``__all__``; every module under this package is discovered, none is listed by hand.

``flag_gems.ops.<name>(...)`` calls our implementation directly, without
``enable()`` and without the dispatcher; inputs our kernels do not take go to
the native aten operator instead, exactly as a routed call would.
"""

import importlib
import pkgutil
from functools import lru_cache

import torch

from .. import runtime
from ..dispatch import Row

def module_names():
    """Every operator module under this package, in a stable order (no import needed)."""
    return tuple(sorted(info.name for info in pkgutil.walk_packages(__path__, f"{__name__}.")
                        if not info.ispkg))


@lru_cache(maxsize=None)
def _families():
    vendor = runtime.selected_vendor()  # sets up the interpreter before any kernel is defined
    if not vendor.interpreted:
        from ..fastpath import direct_launch
        from ..runtime.warm_up import triton_warm_up

        # what the first compile needs, built while the families are imported (see triton_warm_up)
        triton_warm_up.start()
        direct_launch.start()
    return tuple(importlib.import_module(name) for name in module_names())


@lru_cache(maxsize=None)
def _rows_with_origin():
    """(module name, the implementation a family declared, the row as routed) per row."""
    overrides = runtime.selected_vendor().op_overrides
    collected = []
    for module in _families():
        for row in getattr(module, "ATEN", ()):
            origin = row.impl
            if row.name in overrides:
                impl, unsupported = overrides[row.name]
                row = Row(row.name, impl, unsupported, kind=row.kind)
            collected.append((module.__name__, origin, row))
    return tuple(collected)


def collect_rows():
    """Every row of every family, with the vendor's overrides applied."""
    return tuple(row for _, _, row in _rows_with_origin())


def rows_by_module():
    """{operator module name: its rows}, for every module that declares rows."""
    grouped = {}
    for module, _, row in _rows_with_origin():
        grouped.setdefault(module, []).append(row)
    return {module: tuple(rows) for module, rows in grouped.items()}


def _explicit(row):
    impl, unsupported = row.impl, row.unsupported
    if unsupported is None:
        return impl
    base, _, overload = row.name.partition(".")
    aten = getattr(getattr(torch.ops.aten, base), overload or "default")

    def call(*args, **kwargs):
        if unsupported(*args, **kwargs) is not None:
            return aten(*args, **kwargs)
        return impl(*args, **kwargs)

    call.__name__ = call.__qualname__ = impl.__name__
    call.__doc__ = impl.__doc__
    return call


@lru_cache(maxsize=None)
def explicit_names():
    """Every explicit-call function's name (what the families list in ``__all__``), sorted."""
    return tuple(sorted({n for m in _families() for n in getattr(m, "__all__", ())}))


@lru_cache(maxsize=None)
def explicit(name):
    """The explicit-call function ``name`` (``flag_gems.ops.<name>``), whatever else this
    package holds under that name (``norm`` is also the family package); AttributeError
    for a name no family lists."""
    for module in _families():
        if name in getattr(module, "__all__", ()):
            origin = getattr(module, name)
            row = next((row for _, o, row in _rows_with_origin() if o is origin), None)
            return origin if row is None else _explicit(row)
    raise AttributeError(f"module 'flag_gems.ops' has no attribute {name!r}")


def __getattr__(name):
    function = explicit(name)
    globals()[name] = function
    return function


def __dir__():
    return sorted(set(globals()) | set(explicit_names()))
