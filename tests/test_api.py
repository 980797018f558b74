"""The public API: enable / only_enable / use_gems / disable, names, record log,
fallback, vendors, explicit calls."""

import os
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import flag_gems
from flag_gems.testing import RESOLUTION, assert_close

from conftest import DEVICE, ON_GPU, make

ALL = None


def _all_rows():
    """Every row whose overload has a kernel on this device to fall back to (the SDPA
    backends' ops have none on the CPU: those rows are not registered there)."""
    global ALL
    if ALL is None:
        key = flag_gems.runtime.selected_vendor().dispatch_key
        ALL = [row.name for row in flag_gems.ops.collect_rows()
               if torch._C._dispatch_has_kernel_for_dispatch_key(f"aten::{row.name}", key)]
    return ALL


def _run_python(code, **env):
    environment = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=environment, timeout=300)


def test_enable_routes_everything_and_disable_restores():
    flag_gems.enable()
    assert sorted(flag_gems.all_registered_ops()) == sorted(_all_rows())
    for name in ("add.Tensor", "sum.dim_IntList", "_softmax", "_softmax_backward_data", "mm"):
        assert name in flag_gems.all_registered_ops()
    flag_gems.disable()
    assert flag_gems.all_registered_ops() == []
    flag_gems.enable()  # enabling again never re-registers (PyTorch would refuse)
    flag_gems.enable()


def test_every_row_is_a_routable_leaf_overload():
    """An overload whose autograd entry for our key is its CompositeImplicitAutograd
    ("math") kernel decomposes before it reaches the backend key: a row for it
    would never run."""
    key = flag_gems.runtime.device.dispatch_key
    for name in _all_rows():
        table = torch._C._dispatch_dump_table(f"aten::{name}").splitlines()
        autograd = [line for line in table if line.startswith(f"Autograd{key}:")]
        assert not (autograd and autograd[0].endswith("[math kernel]")), name


def test_unused_by_aten_name_covers_every_overload():
    flag_gems.enable(unused=["div"])
    routed = flag_gems.all_registered_ops()
    assert not [n for n in routed if n.startswith(("div.", "div_."))]
    assert "add.Tensor" in routed and "mul_.Scalar" in routed


def test_unused_by_overload_name():
    flag_gems.enable(unused=["div.Tensor", "aten::mul.out"])
    routed = flag_gems.all_registered_ops()
    assert "div.Tensor" not in routed and "mul.out" not in routed
    assert "div.Tensor_mode" in routed and "div_.Tensor" in routed and "mul.Tensor" in routed


def test_unknown_names_raise_with_close_matches():
    with pytest.raises(ValueError, match="div"):
        flag_gems.enable(unused=["dvi"])
    with pytest.raises(ValueError, match="not an aten operator"):
        flag_gems.only_enable(include=["softmaks"])
    with pytest.raises(ValueError, match="does not implement|not an operator flag_gems implements"):
        flag_gems.only_enable(include=["conv2d"])
    flag_gems.enable(unused=["conv2d"])  # a real aten op we do not implement is simply not used
    assert "add.Tensor" in flag_gems.all_registered_ops()
    with pytest.raises(ValueError):
        with flag_gems.use_gems(exclude=["ad"]):
            pass


def test_only_enable():
    flag_gems.only_enable(include=["add", "mm"])
    routed = set(flag_gems.all_registered_ops())
    assert routed == {n for n in _all_rows() if n.split(".")[0] in ("add", "add_", "mm")}
    a = make((4, 4), torch.float32)
    torch.testing.assert_close(torch.add(a, a), a * 2)


def test_use_gems_nests_and_restores_exactly():
    flag_gems.enable(unused=["sum"])
    before = flag_gems.all_registered_ops()
    with flag_gems.use_gems(include=["mul"]):
        assert set(flag_gems.all_registered_ops()) == {n for n in _all_rows() if n.startswith("mul")}
        with flag_gems.use_gems(exclude=["mul.Tensor"]):
            inner = flag_gems.all_registered_ops()
            assert "mul.Tensor" not in inner and "sum" in inner
        assert set(flag_gems.all_registered_ops()) == {n for n in _all_rows() if n.startswith("mul")}
        with pytest.raises(KeyError):
            with flag_gems.use_gems(include=["add"]):
                raise KeyError("boom")
        assert set(flag_gems.all_registered_ops()) == {n for n in _all_rows() if n.startswith("mul")}
    assert flag_gems.all_registered_ops() == before
    flag_gems.disable()
    with flag_gems.use_gems():
        assert sorted(flag_gems.all_registered_ops()) == sorted(_all_rows())
    assert flag_gems.all_registered_ops() == []


def test_enable_inside_a_block_holds_once_the_block_leaves(tmp_path):
    with flag_gems.use_gems(include=["mul"]):
        flag_gems.only_enable(include=["add"], record=True, path=str(tmp_path / "a.log"))
        assert set(flag_gems.all_registered_ops()) == {n for n in _all_rows() if n.startswith("mul")}
    assert set(flag_gems.all_registered_ops()) == {n for n in _all_rows() if n.split(".")[0] in ("add", "add_")}
    a = make((3, 4), torch.float32)
    torch.add(a, a)
    flag_gems.disable()
    assert "aten::add.Tensor" in (tmp_path / "a.log").read_text()


def test_use_gems_costs_well_under_a_millisecond():
    with flag_gems.use_gems():
        pass
    start = time.perf_counter()
    for _ in range(200):
        with flag_gems.use_gems(include=["add"]):
            pass
    per_entry = (time.perf_counter() - start) / 200
    assert per_entry < 1e-3, f"{per_entry * 1e6:.0f} us to enter and leave use_gems"


def test_record_log(tmp_path):
    path = tmp_path / "gems.log"
    flag_gems.enable(record=True, path=str(path))
    a = make((3, 4), torch.float32)
    torch.add(a, a)
    torch.add(a, a)
    z = torch.randn(3, dtype=torch.complex64, device=DEVICE)
    torch.add(z, z)  # per-call fallback
    flag_gems.disable()
    # (Under the interpreter, its own copies show up as nested calls: keep add's lines.)
    lines = [line for line in path.read_text().splitlines() if line.startswith("aten::add.Tensor")]
    # Built C++ wrappers launch the kernel once a call compiled it (maybe an earlier test's).
    assert lines[0].startswith(("aten::add.Tensor\ttriton\t(f32[3, 4], f32[3, 4])",
                                "aten::add.Tensor\tc++\t(f32[3, 4], f32[3, 4])"))
    assert sum(line.startswith(("aten::add.Tensor\ttriton", "aten::add.Tensor\tc++")) for line in lines) == 2
    assert any(line.startswith("aten::add.Tensor\tnative (dtype torch.complex64 is not supported)")
               for line in lines)


def test_record_once(tmp_path):
    path = tmp_path / "once.log"
    flag_gems.enable(record=True, path=str(path), once=True)
    a = make((3, 4), torch.float32)
    for _ in range(3):
        torch.mul(a, a)
        torch.sum(a)
    flag_gems.disable()
    lines = path.read_text().splitlines()
    assert len([line for line in lines if line.startswith("aten::mul.Tensor")]) == 1
    assert len([line for line in lines if line.startswith("aten::sum\t")]) == 1


def test_use_gems_record_once(tmp_path):
    """use_gems takes enable's ``once``: the block's own log has each operator once."""
    path, every = tmp_path / "once.log", tmp_path / "every.log"
    a = make((3, 4), torch.float32)
    for log, once in ((path, True), (every, False)):
        with flag_gems.use_gems(include=["mul", "sum"], record=True, path=str(log), once=once):
            for _ in range(3):
                torch.mul(a, a)
                torch.sum(a)
    lines = path.read_text().splitlines()
    assert len([line for line in lines if line.startswith("aten::mul.Tensor")]) == 1
    assert len([line for line in lines if line.startswith("aten::sum\t")]) == 1
    assert len([line for line in every.read_text().splitlines() if line.startswith("aten::mul.Tensor")]) == 3


def test_use_gems_record_and_default_path(tmp_path):
    result = _run_python("""
        import torch, flag_gems
        with flag_gems.use_gems(include=["mul"], record=True):
            torch.mul(torch.ones(3, device=flag_gems.device), 2.0)
        import os
        print(open(os.path.expanduser("~/.flag_gems/record.log")).read())
    """, HOME=str(tmp_path), GEMS_CACHE_DIR=str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    assert "aten::mul.Tensor\ttriton\t(f32[3], 2.0)" in result.stdout


def test_no_recursion_and_vendor_override(tmp_path):
    """A tiny test vendor overrides one op and one config, nothing else; an
    implementation calling the op it implements gets the native kernel."""
    result = _run_python("""
        import torch
        from flag_gems.runtime import vendors
        from flag_gems.runtime.vendors import Vendor

        calls = {"mul": 0, "softmax_config": 0}

        def my_mul(self, other, *, out=None):
            calls["mul"] += 1
            return torch.mul(self, other)  # routed op called from inside: must go native

        def my_softmax_config(M, N):
            calls["softmax_config"] += 1
            return 1, 64, 4

        vendors.register(Vendor(name="tiny", device="cpu", dispatch_key="CPU", detect=lambda: True,
                                interpreted=True, configs={"softmax": my_softmax_config},
                                op_overrides={"mul.Tensor": (my_mul, None)}), detect_first=True)
        import flag_gems
        assert flag_gems.vendor_name == "tiny", flag_gems.vendor_name
        a = torch.randn(4, 8)
        expected = (a * a, torch.softmax(a, 1), a + a)
        flag_gems.enable(record=True, path=%r)
        results = (torch.mul(a, a), torch.softmax(a, 1), torch.add(a, a))
        flag_gems.disable()
        for result, reference in zip(results, expected):
            torch.testing.assert_close(result, reference)
        assert calls == {"mul": 1, "softmax_config": 1}, calls
        print(open(%r).read())
    """ % (str(tmp_path / "r.log"), str(tmp_path / "r.log")), GEMS_CACHE_DIR=str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    # The program's own calls only: the vendor mul's inner torch.mul is not logged.
    assert result.stdout.count("aten::mul.Tensor") == 1 and "called from inside" not in result.stdout
    assert "aten::add.Tensor\ttriton" in result.stdout


def test_vendor_forcing_and_errors(tmp_path):
    env = {"GEMS_CACHE_DIR": str(tmp_path / "cache")}
    forced = _run_python("import flag_gems; print(flag_gems.vendor_name, flag_gems.device)",
                         GEMS_VENDOR="cpu", **env)
    assert forced.returncode == 0 and forced.stdout.split() == ["cpu", "cpu"], forced.stderr
    unknown = _run_python("import flag_gems; flag_gems.enable()", GEMS_VENDOR="nosuchchip", **env)
    assert unknown.returncode != 0
    assert "VendorError" in unknown.stderr and "known vendors: amd, cpu, nvidia" in unknown.stderr
    assert "detected:" in unknown.stderr
    absent = "amd" if ON_GPU else "nvidia"
    missing = _run_python("import flag_gems; print(flag_gems.vendor_name)", GEMS_VENDOR=absent, **env)
    assert missing.returncode != 0 and "device is absent" in missing.stderr


def test_import_is_cheap_and_enable_is_silent(tmp_path):
    result = _run_python("""
        import sys, warnings
        warnings.simplefilter("always")
        import flag_gems, torch
        assert "triton" not in sys.modules, "triton imported at import time"
        assert not torch.cuda.is_initialized(), "CUDA initialised at import time"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            flag_gems.enable()
            x = torch.ones(4, device=flag_gems.device)
            torch.add(x, x)
        assert not caught, [str(w.message) for w in caught]
    """, GEMS_VENDOR=flag_gems.vendor_name, GEMS_CACHE_DIR=str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == "", (result.stdout, result.stderr)


@pytest.mark.skipif(ON_GPU, reason="the CPU interpreter's import order")
def test_triton_imported_first_on_a_cpu_build(tmp_path):
    # Triton reads TRITON_INTERPRET when it defines tl.zeros & co: importing flag_gems sets
    # it on a torch built for no accelerator, so torch.testing (which imports triton) may
    # follow; a program that imported triton first (transformers does) gets Triton's library
    # made again for the interpreter.
    env = {name: value for name, value in os.environ.items() if name not in ("TRITON_INTERPRET", "GEMS_VENDOR")}
    code = """
        import torch{before}
        import flag_gems{after}
        flag_gems.enable()
        x = torch.randn(3, 4, requires_grad=True)
        torch.logcumsumexp(x, 0).backward(torch.ones(3, 4))  # its kernel calls tl.zeros
        print("ok")
    """
    env["GEMS_CACHE_DIR"] = str(tmp_path / "cache")
    late = "\n        from torch.testing._internal.common_methods_invocations import op_db"
    for before, after in (("", late), ("\n        import triton", "")):
        result = subprocess.run([sys.executable, "-c", textwrap.dedent(code.format(before=before, after=after))],
                                capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0 and result.stdout == "ok\n", result.stderr[-2000:]


def test_explicit_ops_bypass_the_dispatcher():
    a, b = make((5, 6), torch.float32), make((6, 3), torch.float32)
    assert flag_gems.all_registered_ops() == []
    assert_close(flag_gems.ops.mm(a, b), a.double() @ b.double(), torch.float32, reduce_dim=6)
    assert_close(flag_gems.ops.sum(a), a.double().sum(), torch.float32, reduce_dim=30)
    assert_close(flag_gems.ops.sum_dim(a, [1], True), a.double().sum(1, keepdim=True), torch.float32,
                 reduce_dim=6)
    assert_close(flag_gems.ops.softmax(a, 1), torch.softmax(a.double(), 1), torch.float32)
    assert_close(flag_gems.ops.sub(a, 1.5, alpha=2), a.double() - 3, torch.float32)
    assert flag_gems.all_registered_ops() == []
    assert "add" in dir(flag_gems.ops)
    with pytest.raises(AttributeError):
        flag_gems.ops.no_such_op


def test_public_names():
    assert flag_gems.device in ("cuda", "cpu")
    assert flag_gems.vendor_name in ("nvidia", "amd", "cpu")
    info = flag_gems.runtime.device
    assert info.vendor_name == flag_gems.vendor_name
    assert isinstance(info.support_fp64, bool) and isinstance(info.support_bf16, bool)
    assert isinstance(info.support_int64, bool)
    assert isinstance(flag_gems.__version__, str)
    assert RESOLUTION[torch.bfloat16] == 0.016 and RESOLUTION[torch.float32] == 1.3e-6


def test_testing_helpers():
    x = torch.randn(10, dtype=torch.float64)
    flag_gems.testing.assert_close(x.float(), x, torch.float32)
    flag_gems.testing.assert_equal(x.float(), x.float().clone())
    with pytest.raises(AssertionError):
        flag_gems.testing.assert_close(x.float() + 1, x, torch.float32)
    with pytest.raises(AssertionError):
        flag_gems.testing.assert_close(x.float(), x, torch.float16)  # dtype checked


def test_assert_close_takes_the_dtype_from_ref_when_none():
    x = torch.randn(10)
    flag_gems.testing.assert_close(x, x.clone(), None)
    flag_gems.testing.assert_close(x, x.clone())  # dtype may be left out
    flag_gems.testing.assert_close(x.half(), x.half(), dtype=None, atol=1e-3)
    flag_gems.testing.assert_close(torch.arange(4), torch.arange(4), None)
    flag_gems.testing.assert_close(torch.tensor(0.5, dtype=torch.float64), 0.5)  # a number: res's dtype
    with pytest.raises(AssertionError, match="result dtype torch.float32 != expected torch.float64"):
        flag_gems.testing.assert_close(x, x.double(), None)  # res must have ref's dtype
    with pytest.raises(AssertionError):
        flag_gems.testing.assert_close(x + 1, x, None)
    with pytest.raises(AssertionError):
        flag_gems.testing.assert_close(torch.arange(4), torch.arange(4) + 1, None)  # integers: exact
    # a given dtype still decides: ref is cast to it, res must have it
    flag_gems.testing.assert_close(x, x.double(), torch.float32)
    with pytest.raises(AssertionError, match="result dtype"):
        flag_gems.testing.assert_close(x, x, torch.float16)


def test_assert_equal_takes_python_bools_and_numbers():
    equal = flag_gems.testing.assert_equal
    equal(True, True)
    equal(3, 3)
    equal(1, 1.0)  # as == compares
    equal(2.5, 2.5)
    equal(float("nan"), float("nan"), equal_nan=True)
    equal(torch.tensor(True), True)
    equal(False, torch.tensor(False))
    equal(torch.tensor([2, 2]), 2)  # broadcast, as tensor == number
    equal(torch.tensor(0.1, dtype=torch.float64), 0.1)  # the number in the tensor's dtype
    equal(torch.tensor(0.1, dtype=torch.float32), 0.1)  # as float32 == 0.1 is
    for res, ref in ((True, False), (1, 2), (0.5, 0.25), (float("nan"), float("nan")),
                     (torch.tensor(False), True), (torch.tensor(1), 1.5),  # promoted: 1.0 != 1.5
                     (torch.tensor([2, 3]), 2), (3, torch.tensor(2))):
        with pytest.raises(AssertionError):
            equal(res, ref)


def test_scalars_unwrapped_by_the_dispatcher_fall_back_with_torch_promotion():
    """The dispatcher hands Python numbers to us for wrapped-number tensors; our
    fallback must give native the same promotion."""
    z = torch.randn(3, dtype=torch.complex64, device=DEVICE)
    i = torch.arange(3, device=DEVICE)
    flag_gems.enable()
    assert (z + 2.5).dtype == torch.complex64
    assert (z * 1e-300).dtype == torch.complex64
    assert (i.to(torch.int16) + 1).dtype == torch.int16
    h = torch.ones(3, dtype=torch.float16, device=DEVICE)
    torch.testing.assert_close(torch.add(h, 2.5, alpha=2), h * 6)
    # Only 0-d tensors: a re-wrapped number must not widen them (our rows are registered now).
    flag_gems.disable()
    a = torch.tensor(3, dtype=torch.int32, device=DEVICE)
    h0 = torch.tensor(1.0, dtype=torch.float16, device=DEVICE)
    z0 = torch.tensor(1 + 1j, dtype=torch.complex64, device=DEVICE)
    assert (a % 8).dtype == torch.int32 and (h0 + 1.0).dtype == torch.float16 and (z0 * 2.0).dtype == torch.complex64
    flag_gems.enable()
    assert (z0 * 2.0).dtype == torch.complex64 and (z0 + 1).dtype == torch.complex64


def test_runtime_offers_torch_device_fn_and_device():
    from flag_gems.runtime import device, torch_device_fn

    assert torch_device_fn is getattr(torch, flag_gems.device)  # torch.cuda on NVIDIA, torch.cpu here
    torch_device_fn.synchronize()
    assert torch_device_fn.is_available() and torch_device_fn.device_count() >= 1
    assert device is flag_gems.runtime.device
    assert device.name == flag_gems.device and device.vendor_name == flag_gems.vendor_name
    assert {"device", "torch_device_fn"} <= set(dir(flag_gems.runtime))
    with pytest.raises(AttributeError):
        flag_gems.runtime.no_such_name


def test_runtime_names_are_cheap_to_import(tmp_path):
    result = _run_python("""
        import sys
        from flag_gems.runtime import torch_device_fn, device
        import torch
        assert torch_device_fn is getattr(torch, device.name), (torch_device_fn, device)
        assert "triton" not in sys.modules and "flag_gems.ops.pointwise" not in sys.modules
        assert not torch.cuda.is_initialized()
    """, GEMS_VENDOR=flag_gems.vendor_name, GEMS_CACHE_DIR=str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr


def test_every_explicit_operator_at_top_level():
    names = flag_gems.ops.explicit_names()
    assert {"mm", "add", "sum_dim", "softmax", "norm", "silu_and_mul"} <= set(names)
    for name in names:
        assert getattr(flag_gems, name) is getattr(flag_gems.ops, name) or name == "norm", name
    assert callable(flag_gems.norm)  # the function, though flag_gems.ops.norm is also a family package
    assert flag_gems.norm is flag_gems.ops.explicit("norm")
    listed = dir(flag_gems)
    assert set(names) <= set(listed) and {"enable", "use_gems", "tuning", "device"} <= set(listed)
    a, b = make((5, 6), torch.float32), make((6, 3), torch.float32)
    assert_close(flag_gems.mm(a, b), a.double() @ b.double(), torch.float32, reduce_dim=6)
    assert_close(flag_gems.add(a, a), a.double() * 2, torch.float32)
    assert_close(flag_gems.sum_dim(a, [1]), a.double().sum(1), torch.float32, reduce_dim=6)
    assert flag_gems.all_registered_ops() == []
    # names flag_gems already had keep their meaning
    assert flag_gems.device in ("cuda", "cpu") and flag_gems.enable is flag_gems.api.enable
    assert flag_gems.ops.__name__ == "flag_gems.ops" and flag_gems.testing.__name__ == "flag_gems.testing"
    assert "sum" not in flag_gems.__all__  # `from flag_gems import *` does not shadow builtins
    for missing in ("no_such_op", "__wrapped__"):
        with pytest.raises(AttributeError, match="module 'flag_gems' has no attribute"):
            getattr(flag_gems, missing)


def test_top_level_operators_resolve_lazily(tmp_path):
    result = _run_python("""
        import sys, torch
        import flag_gems
        from flag_gems import pretune  # a submodule imported by name imports no kernels
        assert not hasattr(flag_gems, "__wrapped__")
        assert "triton" not in sys.modules and "flag_gems.ops.matmul.mm" not in sys.modules
        a = torch.randn(4, 4, device=flag_gems.device)
        torch.testing.assert_close(flag_gems.mm(a, a), a @ a)
        assert flag_gems.mm is flag_gems.ops.mm
        print("ok")
    """, GEMS_VENDOR=flag_gems.vendor_name, GEMS_CACHE_DIR=str(tmp_path / "cache"))
    assert result.returncode == 0 and result.stdout.endswith("ok\n"), result.stderr


def test_fused_functions_at_top_level():
    x, y = make((4, 8), torch.float32), make((4, 8), torch.float32)
    assert_close(flag_gems.silu_and_mul(x, y), torch.nn.functional.silu(x.double()) * y.double(), torch.float32)
    assert flag_gems.swiglu(make((2, 6), torch.float32)).shape == (2, 3)
    for name in ("silu_and_mul", "gelu_and_mul", "swiglu", "geglu", "reglu"):
        assert getattr(flag_gems, name) is getattr(flag_gems.ops, name)


def test_first_calls_import_nothing_heavy():
    """torch's shape and promotion helpers import sympy on first use (~2.5 s on a first
    call): broadcasting, mixed promotion and strided layouts must not need them."""
    code = (
        "import sys, torch, flag_gems\n"
        "flag_gems.enable()\n"
        f"d = {DEVICE!r}\n"
        "a = torch.randn(3, 4, device=d).t()\n"
        "b = torch.randn(4, 1, device=d)\n"
        "a + b; torch.add(a, b.expand(4, 3), alpha=2); torch.addcmul(a, b, a.half()[:1], value=2)\n"
        "torch.where(a > 0, a, 1.5); torch.nn.functional.silu(a)\n"
        "print('sympy' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "False", result.stdout + result.stderr
