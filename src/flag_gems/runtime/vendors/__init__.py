"""Hardware vendors: what each one is, how it is found, and what it changes.

A vendor is one small module holding one ``Vendor``. Core code never asks
"which vendor is this?"; it asks the selected vendor for its device, dispatch
key, capabilities, tuning configs and operator overrides.
"""

from dataclasses import dataclass, field
from typing import Callable, Dict, Optional


@dataclass(frozen=True)
class Vendor:
    name: str
    device: str  # torch device type our tensors live on
    dispatch_key: str  # ATen dispatch key our kernels register under
    detect: Callable[[], bool]  # cheap: no subprocess, no device context
    support_fp64: bool = True
    support_bf16: bool = True
    support_int64: bool = True
    # Triton runs kernels through its CPU interpreter (TRITON_INTERPRET=1).
    interpreted: bool = False
    # Kernel name -> config (or callable building one) replacing the default.
    configs: Dict[str, object] = field(default_factory=dict)
    # Aten overload name -> (impl, unsupported-or-None) replacing our row's pair.
    op_overrides: Dict[str, tuple] = field(default_factory=dict)
    # (flush_denormals) -> Triton compile options, asked when a kernel compiles. A kernel asks
    # for flush_denormals=True when the vendor's math library may flush fp32 denormals
    # (faster) without changing its results.
    compile_options: Callable[[bool], dict] = lambda flush_denormals: {}


_KNOWN: Dict[str, Vendor] = {}
# Order of auto-detection; the CPU interpreter is the last resort.
_DETECTION_ORDER = []


def register(vendor: Vendor, detect_first: bool = False) -> Vendor:
    """Make a vendor known, e.g. an out-of-tree or test vendor."""
    _KNOWN[vendor.name] = vendor
    if vendor.name in _DETECTION_ORDER:
        _DETECTION_ORDER.remove(vendor.name)
    # New vendors are tried before the CPU interpreter, which always detects.
    position = 0 if detect_first else _DETECTION_ORDER.index("cpu")
    _DETECTION_ORDER.insert(position, vendor.name)
    return vendor


def known() -> Dict[str, Vendor]:
    return dict(_KNOWN)


def detection_order():
    return list(_DETECTION_ORDER)


def get(name: str) -> Optional[Vendor]:
    return _KNOWN.get(name)


def _register_builtin():
    from . import amd, cpu, nvidia

    _KNOWN.update({v.name: v for v in (nvidia.VENDOR, amd.VENDOR, cpu.VENDOR)})
    _DETECTION_ORDER.extend(["nvidia", "amd", "cpu"])


_register_builtin()
