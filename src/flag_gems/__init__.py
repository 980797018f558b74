"""flag_gems: PyTorch operators in Triton, routed through the ATen dispatcher.

    import flag_gems
    flag_gems.enable()            # every operator we implement, process-wide
    with flag_gems.use_gems(): ...  # or only inside a block
    flag_gems.ops.mm(a, b)        # or an explicit call, no enable needed

Importing does no work beyond defining names: the vendor is detected on first
use of ``flag_gems.vendor_name`` / ``flag_gems.device`` or on ``enable()``.
"""

from . import ops, runtime, testing  # noqa: F401
from .api import all_registered_ops, disable, enable, only_enable, use_gems  # noqa: F401

__version__ = "0.1.0"

# Fused functions FlagGems users call at top level, e.g. flag_gems.silu_and_mul(x, y).
_FUSED = ("silu_and_mul", "gelu_and_mul", "swiglu", "geglu", "reglu", "instance_norm")

__all__ = [
    "enable", "only_enable", "use_gems", "disable", "all_registered_ops",
    "ops", "runtime", "testing", "vendor_name", "device", "__version__", *_FUSED,
]


def __getattr__(name):
    if name == "vendor_name":
        return runtime.selected_vendor().name
    if name == "device":
        return runtime.selected_vendor().device
    if name in _FUSED:
        return getattr(ops, name)  # defining kernels is not import-time work: resolve on first use
    raise AttributeError(f"module 'flag_gems' has no attribute {name!r}")
