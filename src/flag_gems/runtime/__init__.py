"""Which vendor this process runs on, chosen once, lazily, and what it offers.

``flag_gems.runtime.device`` carries the capability flags FlagGems users
read (``support_fp64``, ``support_bf16``, ``support_int64``);
``flag_gems.runtime.torch_device_fn`` is torch's module for the vendor's device
(``torch.cuda`` on NVIDIA and AMD, ``torch.cpu`` under the CPU interpreter). Both are
made on first use: importing does no vendor selection.
"""

import logging
import os
import sys
from functools import lru_cache

import torch

from ..utils.dtypes import FLOAT_DTYPES
from . import vendors
from .cache import (cache_dir, cache_root, temporary_cache_dir, warn_unusable_cache,  # noqa: F401 - offered here
                    writable_cache_dir, write_atomically)
from .vendors import Vendor

logger = logging.getLogger("flag_gems")


class VendorError(RuntimeError):
    pass


class DeviceInfo:
    """The selected vendor as FlagGems users see it."""

    def __init__(self, vendor: Vendor):
        self.vendor = vendor
        self.vendor_name = vendor.name
        self.name = vendor.device
        self.dispatch_key = vendor.dispatch_key
        self.support_fp64 = vendor.support_fp64
        self.support_bf16 = vendor.support_bf16
        self.support_int64 = vendor.support_int64

    def __repr__(self):
        return f"DeviceInfo(vendor={self.vendor_name!r}, device={self.name!r}, key={self.dispatch_key!r})"


def _describe_detection():
    found = [name for name in vendors.detection_order() if vendors.get(name).detect()]
    return f"known vendors: {', '.join(sorted(vendors.known()))}; detected: {', '.join(found)}"


@lru_cache(maxsize=None)
def selected_vendor() -> Vendor:
    """The vendor of this process: GEMS_VENDOR if set, else the first detected."""
    forced = os.environ.get("GEMS_VENDOR")
    if forced:
        vendor = vendors.get(forced)
        if vendor is None:
            raise VendorError(f"GEMS_VENDOR={forced!r} is not a known vendor ({_describe_detection()})")
        if not vendor.detect():
            raise VendorError(f"GEMS_VENDOR={forced!r}: its device is absent ({_describe_detection()})")
    else:
        vendor = next(vendors.get(n) for n in vendors.detection_order() if vendors.get(n).detect())
        if vendor.interpreted:
            logger.warning("flag_gems: no accelerator found; vendor %r runs Triton kernels on the CPU "
                           "interpreter", vendor.name)
    if vendor.interpreted:
        _interpret_from_now_on()
    return vendor


def _interpret_from_now_on():
    """Set TRITON_INTERPRET=1 before any of our @triton.jit is applied (before ops are
    imported). Triton's own @jit library (tl.zeros, tl.sum, tl.rand, ...) is defined when
    triton is imported: if something imported it first (transformers does), its functions
    were made for compilation and fail inside an interpreted kernel, so they are made again
    for the interpreter, in every triton.language module that holds them."""
    os.environ["TRITON_INTERPRET"] = "1"
    if "triton.language" not in sys.modules:
        return
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    remade = {}
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "triton.language" or name.startswith("triton.language.")):
            continue
        for attr, value in list(vars(module).items()):
            if isinstance(value, JITFunction):
                if id(value) not in remade:
                    remade[id(value)] = InterpretedFunction(value.fn)
                setattr(module, attr, remade[id(value)])


def _interpreter_only():
    """A torch built for no accelerator, with no other vendor forced: only the CPU
    interpreter can run kernels (a detail of the build, so detecting it is free)."""
    return os.environ.get("GEMS_VENDOR") in (None, "", "cpu") and torch.version.cuda is None and \
        torch.version.hip is None


# Triton reads TRITON_INTERPRET when it defines its own @jit library, on import: decide
# now if the build already decides, so that a later `import triton` anywhere is safe.
if _interpreter_only() and os.environ.get("TRITON_INTERPRET") != "1":
    _interpret_from_now_on()


@lru_cache(maxsize=None)
def device_info() -> DeviceInfo:
    return DeviceInfo(selected_vendor())


@lru_cache(maxsize=None)
def compile_options(flush_denormals=False):
    """The selected vendor's Triton compile options for a kernel (see Vendor.compile_options)."""
    return selected_vendor().compile_options(flush_denormals)


def config(kernel: str, default):
    """The selected vendor's config for ``kernel``, or ``default``."""
    return selected_vendor().configs.get(kernel, default)


@lru_cache(maxsize=None)
def device_module():
    """torch's module for the selected vendor's device type (``torch.cuda``, ``torch.cpu``, ...):
    ``synchronize()``, ``current_device()``, ``device_count()``, streams and events."""
    device = selected_vendor().device
    module = getattr(torch, device, None)
    if module is None:
        raise VendorError(f"torch has no module for device type {device!r} (is its extension imported?)")
    return module


def capturing():
    """Whether the current stream of the selected device is capturing a graph
    (``torch.cuda.graph``): then nothing may synchronize, time or read device memory."""
    is_capturing = getattr(device_module(), "is_current_stream_capturing", None)
    return bool(is_capturing is not None and is_capturing())


_LAZY = {"device": device_info, "torch_device_fn": device_module}


def __getattr__(name):
    if name in _LAZY:
        return _LAZY[name]()
    raise AttributeError(f"module 'flag_gems.runtime' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


@lru_cache(maxsize=None)
def supported_dtypes():
    """The real dtypes our kernels take on this vendor."""
    vendor = selected_vendor()
    dtypes = {torch.float16, torch.float32, torch.int8, torch.uint8, torch.int16, torch.int32, torch.bool}
    if vendor.support_bf16:
        dtypes.add(torch.bfloat16)
    if vendor.support_fp64:
        dtypes.add(torch.float64)
    if vendor.support_int64:
        dtypes.add(torch.int64)
    return frozenset(dtypes)


@lru_cache(maxsize=None)
def multiprocessor_count(device_index=0):
    """Multiprocessors of the device; a handful under the interpreter, where
    every program runs in Python, so that kernels still split their work."""
    if selected_vendor().interpreted:
        return 4
    return torch.cuda.get_device_properties(device_index).multi_processor_count


@lru_cache(maxsize=None)
def supported_float_dtypes():
    """The floating dtypes our kernels take on this vendor."""
    return FLOAT_DTYPES & supported_dtypes()
