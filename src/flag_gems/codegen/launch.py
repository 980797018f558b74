"""Launching compiled Triton kernels with a few microseconds of host work.

``JITFunction.run`` re-binds and re-specializes every argument on each call
(~20 us on an H100 host). ``Launcher`` keys its own cache on exactly the
properties Triton specializes on (dtypes, 16-byte alignment of pointers,
integer divisibility by 16, value 1, int32 range, constexprs), compiles once
through Triton's normal path, then calls the compiled kernel's launcher
directly.
"""

import contextlib
import functools
import os

import numpy
import torch
import triton

from ..runtime import compile_options

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
# The C entry points behind torch.cuda.current_stream / current_device, without
# their Python wrappers: this is the per-call hot path.
_raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)
_current_device = getattr(torch._C, "_cuda_getDevice", None)


# Host-side helpers. triton.cdiv / triton.next_power_of_2 are constexpr functions in
# Triton >= 3.5: ~1.5 us per call from Python, several times per operator call.
def cdiv(a, b):
    return -(-a // b)


def next_power_of_2(n):
    """As triton.next_power_of_2 (0 stays 0)."""
    return 1 << (n - 1).bit_length() if n > 0 else 0


def fp32_exact(value):
    """Whether a Python number reaches a kernel unchanged: Triton passes floats as fp32."""
    return float(numpy.float32(value)) == value


def _launch_hooks_set():
    """Whether a profiler hooked Triton's launches (then the normal path runs,
    so hooks see every launch). Triton >= 3.5 holds hooks in a HookChain."""
    hook = triton.knobs.runtime.launch_enter_hook
    return hook is not None and bool(getattr(hook, "calls", True))


def _key(device, args, constexprs):
    return device, tuple(map(_arg_key, args)), tuple(constexprs.items())


def _arg_key(arg):
    if isinstance(arg, torch.Tensor):
        return (arg.dtype, arg.data_ptr() % 16 == 0)
    if isinstance(arg, bool) or arg is None:
        return arg
    if isinstance(arg, int):
        return (arg == 1, arg % 16 == 0, -(2**31) <= arg < 2**31)
    return type(arg)


class Launcher:
    """``launcher(grid, *args, **constexprs)``: every non-constexpr parameter
    positionally, every constexpr by name; ``grid`` is a tuple. Returns the
    compiled kernel that ran (None under the interpreter)."""

    def __init__(self, kernel, flush_denormals=False):
        self.kernel = kernel
        self.flush_denormals = flush_denormals  # see runtime.compile_options
        self._compiled = {}

    def __call__(self, grid, *args, **constexprs):
        if INTERPRETED:
            # Masked-off lanes hold placeholder values; numpy need not warn about them.
            with numpy.errstate(all="ignore"):
                self.kernel[grid](*args, **constexprs)
            return
        device = next(a for a in args if isinstance(a, torch.Tensor)).get_device()
        key = _key(device, args, constexprs)
        entry = self._compiled.get(key)
        if entry is None or _launch_hooks_set():
            with torch.cuda.device(device):
                compiled = self.kernel[grid](*args, **constexprs, **compile_options(self.flush_denormals))
            names = self.kernel.arg_names[len(args):]
            # compiled.run loads the module first, which sets compiled.function.
            self._compiled[key] = (compiled.run, compiled.function, compiled.packed_metadata,
                                   tuple(constexprs[name] for name in names), compiled)
            return compiled
        run, function, metadata, constexpr_values, compiled = entry
        grid_0, grid_1, grid_2 = (*grid, 1, 1)[:3]
        with contextlib.nullcontext() if device == _current_device() else torch.cuda.device(device):
            run(grid_0, grid_1, grid_2, _raw_stream(device), function, metadata, None, None, None, *args,
                *constexpr_values)
        return compiled

    def _entry(self, args, constexprs):
        """(device, what __call__ keeps for launches like this one, or None)."""
        device = next(a for a in args if isinstance(a, torch.Tensor)).get_device()
        return device, self._compiled.get(_key(device, args, constexprs))

    def compiled_for(self, args, constexprs):
        """The compiled kernel that launches with ``args`` and ``constexprs`` ran, or None."""
        entry = None if INTERPRETED else self._entry(args, constexprs)[1]
        return None if entry is None else entry[4]

    def bind(self, grid, args, constexprs):
        """``go(*args)``: this kernel on ``grid`` with ``constexprs``, with no key to
        compute per call. ``args`` were launched through ``self`` before; every later
        ``go`` call must pass arguments Triton specializes alike (same dtypes, 16-byte
        alignment, int classes), which the caller's own cache key guarantees."""
        if INTERPRETED:
            return functools.partial(self, grid, **constexprs)
        device, entry = self._entry(args, constexprs)
        if entry is None:
            return functools.partial(self, grid, **constexprs)
        run, function, metadata, constexpr_values, _ = entry
        grid_0, grid_1, grid_2 = (*grid, 1, 1)[:3]

        def go(*args):
            if device != _current_device() or _launch_hooks_set():
                return self(grid, *args, **constexprs)
            return run(grid_0, grid_1, grid_2, _raw_stream(device), function, metadata, None, None, None, *args,
                       *constexpr_values)

        return go


PLANS_KEPT = 512  # launch plans one cache keeps; more (dynamic shapes) start it over


def layout_key(tensor):
    """What a launch plan keys a tensor operand on (None stays None): Triton specializes
    on its dtype and 16-byte alignment; its shape and strides fix the int arguments."""
    return None if tensor is None else (tensor.shape, tensor.stride(), tensor.dtype, tensor.data_ptr() % 16 == 0)


def planned(plans, key, make):
    """``plans[key]``, made by ``make()`` on a miss: a caller's launch plan for one call
    layout (see ``Replay``)."""
    plan = plans.get(key)
    if plan is None:
        if len(plans) >= PLANS_KEPT:
            plans.clear()
        plan = plans[key] = make()
    return plan


class Replay:
    """One launch decided once (kernel, grid, constexprs) and made again with fresh
    arguments: the first call goes through the launcher (compiling if need be),
    later calls skip its key. The caller keys its replays on everything Triton
    specializes on (dtypes, alignment, the int arguments' classes)."""

    __slots__ = ("launcher", "grid", "constexprs", "go")

    def __init__(self, launcher, grid, constexprs):
        self.launcher, self.grid, self.constexprs = launcher, grid, constexprs
        self.go = None

    def __call__(self, *args):
        if self.go is not None:
            return self.go(*args)
        self.launcher(self.grid, *args, **self.constexprs)
        self.go = self.launcher.bind(self.grid, args, self.constexprs)
