"""Launching compiled kernels through one prebuilt C launcher instead of Triton's.

Triton 3.5 and 3.6 compile a C launcher for each kernel signature with the system
compiler on first use: 0.2-0.3 s each on an H100 host, as much as compiling the
kernel itself. ``direct_launch.c`` is built once per machine (an operator's first
use, or else the first compile, starts it in the background, so it overlaps), kept in
flag_gems' cache, and launches any kernel whose parameters are pointers, integers
and floats. ``launcher(compiled, device, arg_count)`` loads a compiled kernel's
binary and returns its launch function; kernels it cannot serve (scratch memory,
clusters, tensor descriptors, half-precision scalars, any backend but CUDA) keep
Triton's launcher, which is then built only for them.
"""

import hashlib
import importlib.machinery
import importlib.util
import logging
import os
import shutil
import subprocess
import sysconfig
import tempfile
from functools import partial

import torch
import triton

from ..runtime import writable_cache_dir
from ..runtime.warm_up import InBackground

_SOURCE = os.path.join(os.path.dirname(__file__), "direct_launch.c")
_MODULE_NAME = "flag_gems_direct_launch"
_log = logging.getLogger(__name__)

# Triton signature types -> direct_launch.c's parameter kinds.
_KINDS = {"constexpr": "-", "fp32": "f", "u64": "u",
          **dict.fromkeys(("i1", "i8", "i16", "i32", "i64", "u1", "u8", "u16", "u32"), "i")}


def _built_module():
    """The C module, built (or found in the cache); None where it cannot be had."""
    try:
        module = _load(_built_path())
        module.set_tensor_type(torch.Tensor)
        return module
    except Exception as error:  # noqa: BLE001 - without it, Triton's own launchers serve
        _log.debug("flag_gems: the direct launcher is unavailable (%s); Triton's launchers serve", error)
        return None


def _built_path():
    """The shared object for this source, Python and platform, compiled if absent."""
    with open(_SOURCE, "rb") as f:
        source = f.read()
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    digest = hashlib.sha256(source + suffix.encode()).hexdigest()[:16]
    path = os.path.join(writable_cache_dir("direct_launch"), f"{_MODULE_NAME}_{digest}{suffix}")
    if os.path.exists(path):
        return path
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        raise RuntimeError("no C compiler")
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=suffix)
    os.close(fd)
    try:
        subprocess.run([compiler, _SOURCE, "-O2", "-shared", "-fPIC", f"-I{sysconfig.get_paths()['include']}",
                        "-o", tmp, "-ldl"], check=True, capture_output=True)
        os.replace(tmp, path)  # atomic: processes building at once each install a whole file
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _load(path):
    loader = importlib.machinery.ExtensionFileLoader(_MODULE_NAME, path)
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


_build = InBackground(_built_module, "flag_gems-direct-launch")
start = _build.start


class _ForeignLaunches:
    """Launches made past the C launcher (Triton's own, for a profiler or a kernel it
    cannot serve): a call that made one cannot be planned from the recorded launches."""

    count = 0


foreign_launches = _ForeignLaunches()


def recorder():
    """The C module's ``record(on)`` (see direct_launch.c), or None before it is built."""
    module = _build.result()
    return None if module is None else module.record


def key_function():
    """The C module's ``key(args, constexpr_items)`` (launch._python_key's twin), or None."""
    module = _build.result()
    return None if module is None else module.key


def kinds(signature_types, arg_count):
    """direct_launch.c's kinds for the first ``arg_count`` parameters, or None when one
    has a type it cannot pack or a later parameter is not a constexpr."""
    types = list(signature_types)
    if len(types) < arg_count or any(kind != "constexpr" for kind in types[arg_count:]):
        return None
    found = []
    for kind in types[:arg_count]:
        if kind.startswith("*"):
            found.append("p")
        elif kind in _KINDS:
            found.append(_KINDS[kind])
        else:
            return None
    return "".join(found).encode()


def hook_set(hook):
    """Whether a Triton hook knob holds a hook (Triton >= 3.5 may hold a HookChain)."""
    return hook is not None and bool(getattr(hook, "calls", True))


def servable(compiled):
    """Whether a launch from C (here, or the C++ wrappers) can run ``compiled``: a CUDA
    kernel of one CTA per program, with no scratch memory, PDL or tensor descriptors."""
    metadata = compiled.metadata
    return (getattr(getattr(metadata, "target", None), "backend", None) == "cuda"  # the C side calls libcuda
            and getattr(metadata, "num_ctas", 1) == 1 and not getattr(metadata, "global_scratch_size", 0)
            and not getattr(metadata, "profile_scratch_size", 0)
            and not getattr(metadata, "launch_cooperative_grid", False) and not getattr(metadata, "launch_pdl", False)
            and not getattr(metadata, "tmem_size", None) and not getattr(metadata, "tensordesc_meta", None))


def _load_binary(compiled, device):
    """Load ``compiled``'s binary as Triton's ``_init_handles`` does, less the launcher
    build; False where Triton's path must load it (and raise what it raises)."""
    if not hasattr(compiled, "_run") or hook_set(triton.knobs.runtime.kernel_load_start_hook) \
            or hook_set(triton.knobs.runtime.kernel_load_end_hook):
        return False
    metadata = compiled.metadata
    utils = triton.runtime.driver.active.utils
    if metadata.shared > utils.get_device_properties(device)["max_shared_mem"]:
        return False
    loaded = utils.load_binary(compiled.name, compiled.kernel, metadata.shared, device)
    if metadata.num_warps * 32 > loaded[4]:
        return False
    compiled.module, compiled.function, compiled.n_regs, compiled.n_spills, compiled.n_max_threads = loaded
    compiled._run = _TritonLauncher(compiled)
    return True


class _TritonLauncher:
    """Triton's own launcher for a kernel loaded here, built on its first use (a profiler's
    hooks route launches through Triton's path)."""

    def __init__(self, compiled):
        self._compiled = compiled
        self._launcher = None

    def __call__(self, *args):
        if self._launcher is None:
            compiled = self._compiled
            self._launcher = triton.runtime.driver.active.launcher_cls(compiled.src, compiled.metadata)
        return self._launcher(*args)


def launcher(compiled, device, arg_count):
    """``launch(grid_0, grid_1, grid_2, stream, *args)`` for ``compiled`` through the C
    launcher, or None where Triton's launcher must serve it. Loads the kernel's binary
    into ``compiled`` as Triton would, if Triton has not (``compiled.function`` is set)."""
    known = getattr(compiled, "_flag_gems_launch", None)
    if known is not None and known[0] == arg_count:
        return known[1]
    found = kinds(compiled.src.signature.values(), arg_count) if servable(compiled) else None
    module = _build.result() if found is not None else None
    if module is None or (compiled.module is None and not _load_binary(compiled, device)):
        return None
    metadata = compiled.metadata
    launch = partial(module.launch, module.register(compiled.function, device, metadata.num_warps * 32,
                                                    metadata.shared, found))
    compiled._flag_gems_launch = (arg_count, launch)
    return launch
