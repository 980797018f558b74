"""The direct launcher (fastpath/direct_launch.py): one C launcher for every kernel, in
place of Triton's per-signature ones. The build and the argument kinds are checked
everywhere; launches need the GPU."""

import os

import pytest
import torch
import triton
import triton.language as tl

from flag_gems.fastpath import direct_launch
from flag_gems.codegen.launch import Launcher

from conftest import DEVICE, ON_GPU

gpu_only = pytest.mark.skipif(not ON_GPU, reason="launches need a GPU")


def test_kinds_follow_triton_signature_types():
    types = ["*fp32", "*bf16", "i32", "i64", "u1", "constexpr", "fp32", "u64", "constexpr"]
    assert direct_launch.kinds(types, 8) == b"ppiii-fu"
    assert direct_launch.kinds(["*fp16", "i32", "constexpr"], 2) == b"pi"


def test_kinds_refuse_what_the_launcher_cannot_pack():
    assert direct_launch.kinds(["*fp32", "bf16"], 2) is None  # half-precision scalars
    assert direct_launch.kinds(["*fp32", "nvTmaDesc"], 2) is None  # tensor descriptors
    assert direct_launch.kinds(["*fp32", "i32"], 1) is None  # a parameter left unpassed
    assert direct_launch.kinds(["*fp32"], 2) is None


def test_the_launcher_is_built_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GEMS_CACHE_DIR", str(tmp_path))
    path = direct_launch._built_path()
    assert path.startswith(str(tmp_path)) and os.path.exists(path)
    built = os.stat(path).st_mtime_ns
    assert direct_launch._built_path() == path and os.stat(path).st_mtime_ns == built
    assert [name for name in os.listdir(os.path.dirname(path)) if name != os.path.basename(path)] == []
    module = direct_launch._load(path)
    with pytest.raises(ValueError, match="no such kernel"):
        module.launch(1 << 20, 1, 1, 1, 0)
    with pytest.raises(ValueError, match="unknown parameter kind"):
        module.register(0, 0, 128, 0, b"px")
    with pytest.raises(TypeError):
        module.launch(0, 1, 1)


def test_the_c_launch_key_is_the_python_one(tmp_path, monkeypatch):
    """Launcher switches to the C key once the module is built: entries made under the
    Python key must stay found."""
    from flag_gems.codegen import launch

    monkeypatch.setenv("GEMS_CACHE_DIR", str(tmp_path))
    module = direct_launch._load(direct_launch._built_path())
    module.set_tensor_type(torch.Tensor)
    base = torch.zeros(64, device=DEVICE)
    args = (base, base[1:], base.to(torch.bfloat16), torch.nn.Parameter(base), 1, 16, -7, 48, 2**31, -2**31,
            2**63 + 5, -2**70, True, False, None, 0.5, torch.float32)
    items = (("BLOCK", 128), ("ACC", tl.float32))
    assert module.key(args, items) == launch._python_key(args, items)
    assert hash(module.key(args, items)) == hash(launch._python_key(args, items))
    with pytest.raises(ValueError, match="tensor argument"):
        module.key((1, 2), ())


@triton.jit
def _echo_kernel(ints, floats, small, large, huge, flag, one, nothing, scale, BLOCK: tl.constexpr):
    """Stores its scalar arguments, as the kernel received them."""
    tl.store(ints + 0, small.to(tl.int64))
    tl.store(ints + 1, large)
    tl.store(ints + 2, huge.to(tl.uint64).to(tl.int64, bitcast=True))
    tl.store(ints + 3, flag.to(tl.int64))
    tl.store(ints + 4, one + BLOCK)
    tl.store(floats, scale)


def _echo_outputs():
    """(ints, floats): where _echo_kernel stores its arguments."""
    return torch.zeros(5, dtype=torch.int64, device=DEVICE), torch.zeros(1, dtype=torch.float32, device=DEVICE)


@gpu_only
def test_every_argument_kind_reaches_the_kernel():
    launcher = Launcher(_echo_kernel)
    ints, floats = _echo_outputs()
    huge = 2**63 + 5
    for small, scale in ((-7, 0.1), (123457, -2.5)):  # one key: the second call replays the first
        launcher((1,), ints, floats, small, 3 << 40, huge, True, 1, None, scale, BLOCK=16)
        assert ints.tolist() == [small, 3 << 40, huge - 2**64, 1, 17]
        assert floats.item() == torch.tensor(scale, dtype=torch.float32).item()
    (launch, compiled), = launcher._compiled.values()
    assert launch.func.__self__.__name__ == "flag_gems_direct_launch"
    assert compiled._run._launcher is None  # Triton's launcher for this signature was never built


@gpu_only
def test_an_empty_grid_launches_nothing():
    launcher = Launcher(_echo_kernel)
    ints, floats = _echo_outputs()
    launcher((0,), ints, floats, 2, 3, 4, False, 5, None, 1.0, BLOCK=16)
    assert ints.tolist() == [0] * 5


@gpu_only
def test_launch_hooks_see_launches_through_triton():
    launcher = Launcher(_echo_kernel)
    ints, floats = _echo_outputs()
    launcher((1,), ints, floats, 2, 3, 4, False, 5, None, 1.0, BLOCK=16)
    seen = []

    def hook(metadata):
        seen.append(metadata.get()["name"])

    runtime = triton.knobs.runtime
    chain = runtime.launch_enter_hook if hasattr(runtime.launch_enter_hook, "add") else None
    if chain is not None:
        chain.add(hook)
    else:
        runtime.launch_enter_hook = hook
    try:
        launcher((1,), ints, floats, 6, 3, 4, False, 5, None, 1.0, BLOCK=16)
    finally:
        if chain is not None:
            chain.remove(hook)
        else:
            runtime.launch_enter_hook = None
    assert seen == ["_echo_kernel"] and ints[0].item() == 6
    launcher((1,), ints, floats, 8, 3, 4, False, 5, None, 1.0, BLOCK=16)  # direct again
    assert ints[0].item() == 8


@gpu_only
def test_launchers_of_one_kernel_share_its_registration():
    first, second = Launcher(_echo_kernel), Launcher(_echo_kernel)
    ints, floats = _echo_outputs()
    for launcher in (first, second):
        launcher((1,), ints, floats, 2, 3, 4, False, 5, None, 1.0, BLOCK=32)
    (launch_a, compiled_a), = first._compiled.values()
    (launch_b, compiled_b), = second._compiled.values()
    assert compiled_a is compiled_b and launch_a is launch_b
    assert ints[4].item() == 37
