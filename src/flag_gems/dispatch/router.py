"""Routing aten overloads to our kernels, with per-call fallback to native.

Every overload is registered once per process, the first time it is switched
on, on the vendor's dispatch key. The registered function (the *router*) reads
a flag on its row to decide, per call, between our implementation and the
native kernel captured before we registered. ``enable``/``use_gems``/
``disable`` only flip those flags.
"""

import inspect
import threading
import warnings

import torch

from .. import fastpath, runtime
from ..runtime.nesting import nesting
from ..utils.dtypes import NUMBER_CATEGORY, WIDEST_OF_CATEGORY, category, number_as_tensor


class Row:
    """One aten overload routed to one implementation.

    ``unsupported(*args, **kwargs)`` returns None when ``impl`` takes the call,
    else the reason it goes to the native kernel. Invalid input counts as
    unsupported, so native raises the error PyTorch users expect.
    """

    __slots__ = ("name", "impl", "unsupported", "kind", "active", "native", "fallback", "cpp", "instead_of_native")

    def __init__(self, name, impl, unsupported=None, kind="triton", cpp=None, instead_of_native=None):
        self.name = name
        self.impl = impl
        self.unsupported = unsupported
        self.kind = kind
        # A CppRoute: once the C++ wrappers are built, a C++ route in front of the router
        # launches kernels that earlier calls of this operator, accepted by ``unsupported``,
        # taught them, for exactly the dtypes and layouts they were taught with.
        self.cpp = cpp
        # callable(*args, **kwargs): what runs instead of the native kernel where that kernel
        # cannot run under our router (its result, or NotImplemented to run native after all).
        self.instead_of_native = instead_of_native
        self.active = False
        self.native = None  # the native kernel, once registered
        self.fallback = None  # callable(keyset, args, kwargs) -> native result

    @property
    def base(self):
        return self.name.split(".", 1)[0]

    def __repr__(self):
        return f"Row({self.name!r}, {self.impl.__name__})"


def aten_rows(name, impl, unsupported, overloads, inplace=None, inplace_unsupported=None):
    """A row of ``impl`` for each ``name.<overload>`` ("" for the default overload) and, with
    ``inplace``, a row of it for ``name_.<overload>`` of each overload without "out"."""
    rows = []
    for overload in overloads:
        suffix = f".{overload}" if overload else ""
        rows.append(Row(f"{name}{suffix}", impl, unsupported))
        if inplace is not None and "out" not in overload:
            rows.append(Row(f"{name}_{suffix}", inplace, inplace_unsupported))
    return rows


class _State:
    recorder = None  # a record.Recorder while recording
    capture = None  # a shape collector: api keeps it recording beside any record log


state = _State()

_library = None
_registration_lock = threading.Lock()
_ALLOWS_OVERRIDE = "allow_override" in inspect.signature(torch.library.Library.impl).parameters


def _tensor_positions(name):
    base, _, overload = name.partition(".")
    schema = torch._C._get_schema(f"aten::{base}", overload)
    return tuple(
        i for i, arg in enumerate(schema.arguments)
        if not arg.kwarg_only and str(arg.type) in ("Tensor", "Tensor?")
    )


def _rewrap(args, positions):
    """Turn Python numbers that the dispatcher unwrapped from wrapped-number
    tensors back into 0-d CPU tensors that promote exactly as the originals.

    A wrapped number only changes the result dtype when its kind (bool < int <
    float < complex) is above every tensor's. A plain 0-d tensor behaves alike
    beside dimensioned tensors of its kind or above; among 0-d tensors only, it
    must carry the dtype those tensors promote to.
    """
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    dimensioned = [t for t in tensors if t.dim() > 0]
    top = max((category(t.dtype) for t in tensors), default=-1)
    args = list(args)
    for i in positions:
        value = args[i] if i < len(args) else None
        if value is None or isinstance(value, torch.Tensor):
            continue
        kind = NUMBER_CATEGORY[type(value)]
        if kind > top:
            dtype = torch.result_type(_FALSE, value)  # the number decides: its default dtype
        elif any(category(t.dtype) >= kind for t in dimensioned):
            dtype = WIDEST_OF_CATEGORY[kind]  # cannot change the result: keep full precision
        else:
            dtype = tensors[0].dtype
            for t in tensors[1:]:
                dtype = torch.promote_types(dtype, t.dtype)
        args[i] = number_as_tensor(value, dtype)
    return args


_FALSE = torch.tensor(False)


def _make_fallback(row, native):
    positions = _tensor_positions(row.name)
    call = native.call_boxed
    instead = row.instead_of_native

    def fallback(keyset, args, kwargs):
        if instead is not None:
            result = instead(*args, **kwargs)
            if result is not NotImplemented:
                return result
        if positions and any(i < len(args) and not isinstance(args[i], torch.Tensor) for i in positions):
            args = _rewrap(args, positions)
        return call(keyset, *args, **kwargs)

    return fallback


def _make_router(row):
    impl, unsupported, fallback = row.impl, row.unsupported, row.fallback
    name, kind, instead = row.name, row.kind, row.instead_of_native
    plan_requested = fastpath.plan_requested
    # PyTorch's internals may pass a wrapped number as a Tensor-typed self; the
    # dispatcher hands it over as a Python number: such calls stay native.
    self_is_tensor = 0 in _tensor_positions(name)

    def route(keyset, *args, **kwargs):
        if row.active and not nesting.inside:
            if self_is_tensor and args and not isinstance(args[0], torch.Tensor):
                reason = "a number where self is a tensor"
            else:
                reason = None if unsupported is None else unsupported(*args, **kwargs)
            if reason is None:
                served = fastpath.Served.count
                nesting.inside = True
                try:
                    if plan_requested():  # our C++ route meets this call's layout for the first time
                        result = fastpath.plan_call(name, impl, args, kwargs)
                    else:
                        result = impl(*args, **kwargs)
                finally:
                    nesting.inside = False
                recorder = state.recorder  # read once: another thread may switch it off
                if recorder is not None:
                    recorder.log(name, "c++" if fastpath.Served.count != served else kind, args, kwargs)
                return result
            if plan_requested():  # this layout goes native: so may the C++ route, unless native is replaced
                if instead is None:
                    fastpath.plan_native()
                else:
                    fastpath.plan_router()
            recorder = state.recorder
            if recorder is not None:
                recorder.log(name, f"native ({reason})", args, kwargs)
        # Calls made from inside our implementations are theirs, not the program's: not logged.
        return fallback(keyset, args, kwargs)

    return route


def ensure_registered(row) -> bool:
    """Register ``row`` on the vendor's key unless done already; False if the
    overload has no kernel on that key to fall back to."""
    global _library
    if row.native is not None:
        return True
    with _registration_lock:
        if row.native is not None:
            return True
        key = runtime.selected_vendor().dispatch_key
        try:
            native = torch.library.get_kernel(f"aten::{row.name}", key)
        except RuntimeError:
            return False
        if _library is None:
            _library = torch.library.Library("aten", "IMPL")
        row.fallback = _make_fallback(row, native)
        extra = {"allow_override": True} if _ALLOWS_OVERRIDE else {}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="(?s).*Overriding a previously registered kernel")
            _library.impl(row.name, _make_router(row), key, with_keyset=True, **extra)
        row.native = native
        if key == "CUDA":
            fastpath.install_routes((row,))
        return True
