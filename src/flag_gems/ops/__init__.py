"""Operator families. Each module declares its aten rows (``ATEN``) next to
its kernels and lists its explicit-call functions in ``__all__``.

``flag_gems.ops.<name>(...)`` calls our implementation directly, without
``enable()`` and without the dispatcher; inputs our kernels do not take go to
the native aten operator instead, exactly as a routed call would.
"""

import importlib
from functools import lru_cache

import torch

from .. import runtime
from ..dispatch import Row

FAMILIES = ("arith_ops", "unary_ops", "compare_ops", "activation_ops", "copy_ops", "reduction_ops",
            "softmax_ops", "norm_ops", "group_norm_ops", "matmul_ops", "loss_ops", "scan_ops")


@lru_cache(maxsize=None)
def _families():
    vendor = runtime.selected_vendor()  # sets up the interpreter before any kernel is defined
    if not vendor.interpreted:
        from ..codegen import direct_launch
        from ..codegen.cache import triton_warm_up

        # what the first compile needs, built while the families are imported (see triton_warm_up)
        triton_warm_up.start()
        direct_launch.start()
    return tuple(importlib.import_module(f"{__name__}.{family}") for family in FAMILIES)


@lru_cache(maxsize=None)
def _rows_with_origin():
    overrides = runtime.selected_vendor().op_overrides
    collected = []
    for module in _families():
        for row in module.ATEN:
            origin = row.impl
            if row.name in overrides:
                impl, unsupported = overrides[row.name]
                row = Row(row.name, impl, unsupported, kind=row.kind)
            collected.append((origin, row))
    return tuple(collected)


def collect_rows():
    """Every row of every family, with the vendor's overrides applied."""
    return tuple(row for _, row in _rows_with_origin())


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


def __getattr__(name):
    for module in _families():
        if name in getattr(module, "__all__", ()):
            origin = getattr(module, name)
            row = next((row for o, row in _rows_with_origin() if o is origin), None)
            function = origin if row is None else _explicit(row)
            globals()[name] = function
            return function
    raise AttributeError(f"module 'flag_gems.ops' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {n for m in _families() for n in getattr(m, "__all__", ())})
