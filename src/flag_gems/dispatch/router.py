"""Routing aten overloads to our kernels, with per-call fallback to native.

Every overload is registered once per process, the first time it is switched
on, on the vendor's dispatch key. The registered function (the *router*) reads
a flag on its row to decide, per call, between our implementation and the
native kernel captured before we registered. ``enable``/``use_gems``/
``disable`` only flip those flags.
"""

import contextlib
import inspect
import threading
import warnings
from typing import NamedTuple, Optional

import torch

from .. import runtime
from ..csrc import Served, prebuilt


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


class CppRoute(NamedTuple):
    """How a row's C++ route calls its Pointwise: ``alpha`` is the int its kernel takes
    after the tensors (add/sub), ``floats`` whether a float operand may be passed as
    given (not where the Python path rounds it first, as comparisons of halves do)."""

    pointwise: object
    alpha: Optional[int] = None
    floats: bool = True


class _State:
    recorder = None  # a record.Recorder while recording
    capture = None  # a shape collector: api keeps it recording beside any record log


state = _State()


class _Nesting(threading.local):
    inside = False  # True while this thread runs one of our implementations


_nesting = _Nesting()


@contextlib.contextmanager
def native_calls():
    """Inside the block this thread's torch calls run the native kernels, as they do
    from inside our implementations (the tuner times native candidates this way)."""
    previous = _nesting.inside
    _nesting.inside = True
    try:
        yield
    finally:
        _nesting.inside = previous

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


_CATEGORY = {bool: 0, int: 1, float: 2, complex: 3}
_WIDEST = (torch.bool, torch.int64, torch.float64, torch.complex128)


def _category(dtype):
    if dtype.is_complex:
        return 3
    if dtype.is_floating_point:
        return 2
    return 0 if dtype == torch.bool else 1


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
    top = max((_category(t.dtype) for t in tensors), default=-1)
    args = list(args)
    for i in positions:
        value = args[i] if i < len(args) else None
        if value is None or isinstance(value, torch.Tensor):
            continue
        kind = _CATEGORY[type(value)]
        if kind > top:
            dtype = torch.result_type(_FALSE, value)  # the number decides: its default dtype
        elif any(_category(t.dtype) >= kind for t in dimensioned):
            dtype = _WIDEST[kind]  # cannot change the result: keep full precision
        else:
            dtype = tensors[0].dtype
            for t in tensors[1:]:
                dtype = torch.promote_types(dtype, t.dtype)
        args[i] = number_as_tensor(value, dtype)
    return args


def number_as_tensor(value, dtype):
    """A 0-d CPU tensor of ``dtype`` holding the Python number ``value``, made through the
    widest type of its kind, then cast: an out-of-range number wraps as aten's cast does."""
    return torch.tensor(value, dtype=_WIDEST[_CATEGORY[type(value)]]).to(dtype)


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
    name, kind = row.name, row.kind
    # PyTorch's internals may pass a wrapped number as a Tensor-typed self; the
    # dispatcher hands it over as a Python number: such calls stay native.
    self_is_tensor = 0 in _tensor_positions(name)

    def route(keyset, *args, **kwargs):
        if row.active and not _nesting.inside:
            if self_is_tensor and args and not isinstance(args[0], torch.Tensor):
                reason = "a number where self is a tensor"
            else:
                reason = None if unsupported is None else unsupported(*args, **kwargs)
            if reason is None:
                served = Served.count
                _nesting.inside = True
                try:
                    result = impl(*args, **kwargs)
                finally:
                    _nesting.inside = False
                if state.recorder is not None:
                    state.recorder.log(name, "c++" if Served.count != served else kind, args, kwargs)
                return result
            if state.recorder is not None:
                state.recorder.log(name, f"native ({reason})", args, kwargs)
        elif row.active and state.recorder is not None:
            state.recorder.log(name, "native (called from inside flag_gems)", args, kwargs)
        return fallback(keyset, args, kwargs)

    return route


# Rows with a C++ route (csrc/pointwise_fast.cpp), in the order the extension numbered them.
_cpp_routes = []


def _encode_default(value):
    if isinstance(value, bool):
        return f"b:{int(value)}"
    if isinstance(value, int):
        return f"i:{value}"
    if isinstance(value, str):
        return f"s:{value}"
    return None if value is not None else "n:"


def install_cpp_route(row, extension):
    """Put a C++ route in front of ``row``'s Python router, where its schema allows
    one: leading operands without defaults (one tensor, or a tensor and a tensor or
    float), then only arguments with plain defaults, which the route requires."""
    if row.cpp is None or row.native is None or row in _cpp_routes:
        return
    base, _, overload = row.name.partition(".")
    arguments = torch._C._get_schema(f"aten::{base}", overload).arguments
    operands = next((i for i, a in enumerate(arguments) if a.has_default_value()), len(arguments))
    defaults = [_encode_default(a.default_value) for a in arguments[operands:] if a.has_default_value()]
    if row.cpp.pointwise.cpp_id is None or operands not in (1, 2) or None in defaults or \
            len(defaults) != len(arguments) - operands:
        return
    extension.install_route(row.name, row.cpp.pointwise.cpp_id, operands, defaults, row.cpp.alpha,
                            row.cpp.floats)
    _cpp_routes.append(row)
    sync_cpp_routes()


def install_cpp_routes(rows):
    """Routes for every registered row that takes one (after the C++ wrappers are built)."""
    extension = prebuilt()
    if extension is not None:
        with _registration_lock:
            for row in rows:
                install_cpp_route(row, extension)


def sync_cpp_routes():
    """Tell the C++ routes which rows are on; they launch nothing while recording."""
    if _cpp_routes:
        recording = state.recorder is not None
        prebuilt().set_routes([row.active and not recording for row in _cpp_routes])


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
        if row.cpp is not None and key == "CUDA":
            extension = prebuilt()
            if extension is not None:
                install_cpp_route(row, extension)
        return True
