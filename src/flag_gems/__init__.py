"""flag_gems: PyTorch operators in Triton, routed through the ATen dispatcher.

    import flag_gems
    flag_gems.enable()            # every operator we implement, process-wide
    with flag_gems.use_gems(): ...  # or only inside a block
    flag_gems.ops.mm(a, b)        # or an explicit call, no enable needed
    flag_gems.mm(a, b)            # the same: every explicit operator resolves at top level too
    flag_gems.set_tuning_mode("quick")  # off | cache (default) | quick | full
    flag_gems.patch_model(model)  # a Hugging Face model's layers on our fused functions
    flag_gems.GraphDecoder(model, batch, max_length).generate(ids, n)  # greedy decode from a CUDA graph

Importing does no work beyond defining names: the vendor is detected on first
use of ``flag_gems.vendor_name`` / ``flag_gems.device`` or on ``enable()``
(a torch built for no accelerator sets TRITON_INTERPRET=1 at import: see runtime).
"""

import importlib
import pkgutil
from functools import lru_cache

from . import ops, runtime, testing  # noqa: F401
from .api import all_registered_ops, disable, enable, only_enable, use_gems  # noqa: F401

__version__ = "0.1.0"

# Fused functions (and the loss module of one) users call at top level, e.g. flag_gems.silu_and_mul(x, y).
_FUSED = ("silu_and_mul", "gelu_and_mul", "swiglu", "geglu", "reglu", "rms_norm", "fused_add_rms_norm", "add_rms_norm",
          "skip_layer_norm", "instance_norm", "cross_entropy_loss", "fused_linear_cross_entropy",
          "FusedLinearCrossEntropyLoss", "apply_rotary_pos_emb", "hf_apply_rotary_pos_emb")

__all__ = [
    "enable", "only_enable", "use_gems", "disable", "all_registered_ops",
    "ops", "runtime", "testing", "tuning", "set_tuning_mode", "modules", "patch_model", "GraphDecoder",
    "generate_with_graphs", "vendor_name", "device",
    "__version__",
    *_FUSED,
]


@lru_cache(maxsize=None)
def _submodules():
    return frozenset(info.name for info in pkgutil.iter_modules(__path__))


def __getattr__(name):
    if name == "vendor_name":
        return runtime.selected_vendor().name
    if name == "device":
        return runtime.selected_vendor().device
    if name in ("tuning", "set_tuning_mode"):
        tuning = importlib.import_module(f"{__name__}.tuning")  # sqlite and the tuner: loaded on first use
        return tuning if name == "tuning" else tuning.set_tuning_mode
    if name == "modules":  # nn.Modules on our fused functions; torch.nn is imported only when asked for
        return importlib.import_module(f"{__name__}.modules")
    if name == "patch_model":  # Hugging Face models on our fused functions
        return importlib.import_module(f"{__name__}.patching").patch_model
    if name in ("GraphDecoder", "generate_with_graphs"):  # greedy decode replaying a captured CUDA graph
        return getattr(importlib.import_module(f"{__name__}.patching.graph_decode"), name)
    # Every explicit operator of flag_gems.ops, e.g. flag_gems.mm, flag_gems.sum_dim: defining
    # kernels is not import-time work, so resolve on first use. Dunders (probed by copy, pickle,
    # inspect, ...) and our own submodules (`from flag_gems import pretune` asks first) never
    # import the kernels.
    if not (name.startswith("__") and name.endswith("__")) and name not in _submodules():
        try:
            function = ops.explicit(name)
        except AttributeError:
            pass
        else:
            globals()[name] = function
            return function
    raise AttributeError(f"module 'flag_gems' has no attribute {name!r}")


def __dir__():
    """Our names and every explicit operator (listing those imports the kernels)."""
    return sorted(set(globals()) | set(__all__) | set(ops.explicit_names()))
