"""Launching compiled Triton kernels with a few microseconds of host work.

``JITFunction.run`` re-binds and re-specializes every argument on each call
(~20 us on an H100 host). ``Launcher`` keys its own cache on exactly the
properties Triton specializes on (dtypes, 16-byte alignment of pointers,
integer divisibility by 16, value 1, int32 range, constexprs), compiles once
through Triton's normal path, then launches through ``direct_launch`` (or the
compiled kernel's own launcher where that cannot serve).
"""

import contextlib
import functools
import os
import threading

import numpy
import torch
import triton

from ..fastpath import direct_launch
from ..runtime import compile_options
from ..runtime.nesting import native_calls
from ..runtime.warm_up import triton_warm_up
from . import interpreter_casts
from ..utils.layout import next_power_of_2

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
_INTERPRETER_LOCK = threading.RLock()  # only taken under the interpreter
# Triton compiles and loads a kernel with the GIL released at times; threads that meet a new
# kernel together compile it one at a time (and once), as a first call does on its own.
_COMPILE_LOCK = threading.RLock()
# The C entry points behind torch.cuda.current_stream / current_device, without
# their Python wrappers: this is the per-call hot path.
_raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)
_current_device = getattr(torch._C, "_cuda_getDevice", None)


def fp32_exact(value):
    """Whether a Python number reaches a kernel unchanged: Triton passes floats as fp32."""
    return float(numpy.float32(value)) == value


def _launch_hooks_set():
    """Whether a profiler hooked Triton's launches (then the normal path runs,
    so hooks see every launch)."""
    return direct_launch.hook_set(triton.knobs.runtime.launch_enter_hook)


def _python_key(args, constexpr_items):
    """(device, what Triton specializes on per argument, constexpr_items): a launch's key.
    ``direct_launch``'s C module computes the same tuple, several times faster, once built."""
    device = next(a for a in args if isinstance(a, torch.Tensor)).get_device()
    return device, tuple(map(_arg_key, args)), constexpr_items


def _arg_key(arg):
    if isinstance(arg, torch.Tensor):
        return (arg.dtype, arg.data_ptr() % 16 == 0)
    if isinstance(arg, bool) or arg is None:
        return arg
    if isinstance(arg, int):
        return (arg == 1, arg % 16 == 0, -(2**31) <= arg < 2**31)
    return type(arg)


_launch_key = _python_key


_LARGE_LAUNCH = 1 << 30  # bytes of tensor arguments from which the interpreter's copies are checked


def _check_interpreter_memory(args):
    """Triton's interpreter copies every tensor argument into host memory and back: where
    those copies would not fit in the memory available, raise the error PyTorch's CPU
    allocator raises, not leave the process to the kernel's out-of-memory killer."""
    needed = sum(a.untyped_storage().nbytes() for a in args if isinstance(a, torch.Tensor))
    if needed >= _LARGE_LAUNCH and needed > _available_memory():
        raise RuntimeError(f"DefaultCPUAllocator: can't allocate memory: you tried to allocate {needed} bytes "
                           "(Triton's interpreter copies the kernel's tensors)")


def _available_memory():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


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
            interpreter_casts.fix()
            _check_interpreter_memory(args)
            # Triton's interpreter keeps its grid and patched builtins per process: one launch
            # at a time, and the torch calls it makes itself (host copies) run native, never a
            # kernel of ours launched inside this one (an explicit fused call under enable()).
            # Masked-off lanes hold placeholder values; numpy need not warn about them.
            with _INTERPRETER_LOCK, native_calls(), numpy.errstate(all="ignore"):
                self.kernel[grid](*args, **constexprs)
            return
        key = _launch_key(args, tuple(constexprs.items()))
        device = key[0]
        entry = self._compiled.get(key)
        grid_0, grid_1, grid_2 = (*grid, 1, 1)[:3]
        if entry is None:
            with _COMPILE_LOCK:  # one compile at a time: threads meeting a new kernel together wait
                entry = self._compiled.get(key)
                if entry is None:
                    entry = self._compiled[key] = self._compile(device, grid, args, constexprs)
        launch, compiled = entry
        if _launch_hooks_set():
            # Triton's path, so that a profiler's hooks see the launch.
            direct_launch.foreign_launches.count += 1
            with torch.cuda.device(device):
                self.kernel[grid](*args, **constexprs, **compile_options(self.flush_denormals))
            return compiled
        with contextlib.nullcontext() if device == _current_device() else torch.cuda.device(device):
            launch(grid_0, grid_1, grid_2, _raw_stream(device), *args)
        return compiled

    def _compile(self, device, grid, args, constexprs):
        """(launch, compiled kernel) for launches like this one: compiled without launching,
        launched through the direct launcher where it serves (see direct_launch)."""
        global _launch_key
        direct_launch.start()  # its first build overlaps this compile
        triton_warm_up.wait()
        with torch.cuda.device(device):
            compiled = self.kernel.warmup(*args, grid=grid, **constexprs, **compile_options(self.flush_denormals))
            launch = direct_launch.launcher(compiled, device, len(args))
            if launch is None:
                # compiled.run loads the module first, which sets compiled.function.
                run = compiled.run
                launch = functools.partial(_triton_launch, run, compiled.function, compiled.packed_metadata,
                                           tuple(constexprs[name] for name in self.kernel.arg_names[len(args):]))
        _launch_key = direct_launch.key_function() or _launch_key
        return launch, compiled

    def _entry(self, args, constexprs):
        """(device, what __call__ keeps for launches like this one, or None)."""
        key = _launch_key(args, tuple(constexprs.items()))
        return key[0], self._compiled.get(key)

    def compiled_for(self, args, constexprs):
        """The compiled kernel that launches with ``args`` and ``constexprs`` ran, or None."""
        entry = None if INTERPRETED else self._entry(args, constexprs)[1]
        return None if entry is None else entry[1]

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
        launch = entry[0]
        grid_0, grid_1, grid_2 = (*grid, 1, 1)[:3]

        def go(*args):
            if device != _current_device() or _launch_hooks_set():
                return self(grid, *args, **constexprs)
            return launch(grid_0, grid_1, grid_2, _raw_stream(device), *args)

        return go


def _triton_launch(run, function, metadata, constexpr_values, grid_0, grid_1, grid_2, stream, *args):
    """A launch through Triton's launcher ``run``, which takes the constexprs' values too."""
    direct_launch.foreign_launches.count += 1
    run(grid_0, grid_1, grid_2, stream, function, metadata, None, None, None, *args, *constexpr_values)


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


def rows_config(M, N, one_tile_limit):
    """(BLOCK_M, BLOCK_N, num_warps) of the row kernels (K == 1)."""
    # Measured on an H100 (bf16 16384x4096): one 4096-row per program and 8 warps move 2.9 TB/s.
    block_n = next_power_of_2(N)
    if block_n > one_tile_limit:
        block_n = 4096  # a tile at a time, with per-lane running statistics
    block_m = min(next_power_of_2(M), max(1, 4096 // block_n))
    tile = block_m * block_n
    return block_m, block_n, 4 if tile <= 2048 else 8 if tile <= 8192 else 16
