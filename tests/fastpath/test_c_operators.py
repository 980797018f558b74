"""The C++ wrappers (flag_gems.c_operators): built on the GPU machine, they
launch the kernels of add/sub/mul/div for same-shape contiguous float tensors."""

import pytest
import torch

import flag_gems
from flag_gems.ops.pointwise import arith as arith_ops
from flag_gems.testing import assert_close

from conftest import DEVICE, ON_GPU

if not ON_GPU or torch.version.cuda is None:
    pytest.skip("the C++ wrappers launch CUDA kernels", allow_module_level=True)

CASES = [("add", arith_ops.ADD, (1,)), ("sub", arith_ops.SUB, (1,)), ("mul", arith_ops.MUL, ()),
         ("div", arith_ops.TRUE_DIV, ())]


@pytest.fixture(scope="module")
def c_operators():
    from flag_gems import c_operators

    return c_operators


@pytest.mark.parametrize("name, op, scalars", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("numel", [2, 15, 16, 1000, 1024, 4097, 1 << 20])
def test_c_path_matches_native(c_operators, name, op, scalars, dtype, numel):
    a = torch.randn(numel, device=DEVICE, dtype=dtype)
    b = torch.randn(numel, device=DEVICE, dtype=dtype)
    expected = getattr(torch, name)(a.double(), b.double())
    with flag_gems.use_gems():
        first = getattr(torch, name)(a, b)  # the Python path compiles and registers the kernel
        second = getattr(torch, name)(a, b)
    direct = op.pointwise.fast(a, b, *scalars)
    assert direct is not None, "the C++ wrappers did not take a call they cover"
    for result in (first, second, direct):
        assert result.dtype == dtype and result.shape == a.shape
        assert_close(result, expected, dtype)


def test_calls_before_the_build_leave_the_kernel_to_teach(c_operators, monkeypatch):
    """A call made while the wrappers were not built yet must not mark its kernel taught:
    once they are, the next call hands it to C++."""
    from flag_gems.fastpath import pointwise as cpp_pointwise

    cpp_pointwise.forget_kernels()
    a = torch.randn(3000, device=DEVICE, dtype=torch.bfloat16)
    b = torch.randn_like(a)
    monkeypatch.setattr(cpp_pointwise, "prebuilt", lambda: None)
    with flag_gems.use_gems():
        torch.mul(a, b)
    monkeypatch.undo()
    assert arith_ops.MUL.pointwise.fast(a, b) is None
    flag_gems.fastpath.forget_plans()  # else the route replays the first call's plan, with no Python
    with flag_gems.use_gems():
        torch.mul(a, b)
    assert torch.equal(arith_ops.MUL.pointwise.fast(a, b), a * b)


def test_c_path_declines_what_it_does_not_cover(c_operators):
    a = torch.randn(64, device=DEVICE)
    fast = arith_ops.ADD.pointwise.fast
    arith_ops.add(a, a)  # make sure a kernel is registered
    assert fast(a, a, 1) is not None
    assert fast(a, a.double(), 1) is None  # mixed dtypes
    assert fast(a, a[:32], 1) is None  # shapes differ
    assert fast(a.view(8, 8).t(), a.view(8, 8), 1) is None  # not contiguous
    assert fast(a, a, 2**40) is None  # alpha beyond int32
    assert fast(a, 2.0, 1) is None  # a number
    unaligned = torch.randn(65, device=DEVICE)[1:]
    with flag_gems.use_gems():
        result = torch.add(unaligned, a)
    assert_close(result, unaligned.double() + a.double(), torch.float32)


def test_record_log_says_cpp(c_operators, tmp_path):
    a = torch.randn(4096, device=DEVICE)
    log = tmp_path / "c.log"
    with flag_gems.use_gems(record=True, path=str(log)):
        torch.add(a, a)
        torch.add(a, a)
    lines = log.read_text().splitlines()
    assert lines[-1].startswith("aten::add.Tensor\tc++\t"), lines


def test_c_path_on_another_stream_and_with_autograd(c_operators):
    a = torch.randn(1000, device=DEVICE, requires_grad=True)
    b = torch.randn(1000, device=DEVICE)
    stream = torch.cuda.Stream()
    with flag_gems.use_gems():
        torch.mul(a, b)
        with torch.cuda.stream(stream):
            result = torch.mul(a, b)
            result.sum().backward()
    torch.cuda.synchronize()
    assert_close(result.detach(), a.detach().double() * b.double(), torch.float32)
    assert_close(a.grad, b, torch.float32)


@pytest.mark.parametrize("call", [torch.exp, torch.neg, torch.sigmoid, lambda x: x * 2.5,
                                  lambda x: torch.maximum(x, x.flip(0)), torch.nn.functional.gelu],
                         ids=["exp", "neg", "sigmoid", "times-number", "maximum", "gelu"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_other_operators_reach_the_c_path(c_operators, tmp_path, call, dtype):
    x = torch.randn(3000, device=DEVICE, dtype=dtype)
    expected = call(x)
    log = tmp_path / "ops.log"
    with flag_gems.use_gems(record=True, path=str(log)):
        first = call(x)
        second = call(x)
    for result in (first, second):
        assert result.dtype == expected.dtype
        torch.testing.assert_close(result, expected, rtol=2e-3, atol=1e-5)
    assert "\tc++\t" in log.read_text(), log.read_text()


ROUTED = [
    ("add", lambda a, b: torch.add(a, b)), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b), ("times-number", lambda a, b: a * 2.5), ("exp", lambda a, b: torch.exp(a)),
    ("sigmoid", lambda a, b: torch.sigmoid(a)), ("gt", lambda a, b: a > b), ("eq", lambda a, b: a == a),
    ("relu", lambda a, b: torch.relu(a)), ("silu", lambda a, b: torch.nn.functional.silu(a)),
    ("gelu", lambda a, b: torch.nn.functional.gelu(a)),
]


@pytest.mark.parametrize("name, call", ROUTED, ids=[r[0] for r in ROUTED])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_cpp_routes_launch_without_python(c_operators, name, call, dtype):
    a = torch.randn(1000, device=DEVICE, dtype=dtype)
    b = torch.randn(1000, device=DEVICE, dtype=dtype)
    expected = call(a, b)
    with flag_gems.use_gems():
        call(a, b)  # the Python path compiles the kernel and teaches it to the wrappers
        before = c_operators.routed_calls()
        result = call(a, b)
        assert c_operators.routed_calls() == before + 1, "the C++ route did not take the call"
    assert result.dtype == expected.dtype and result.shape == expected.shape
    torch.testing.assert_close(result, expected, rtol=2e-2 if dtype == torch.bfloat16 else 2e-6, atol=1e-5)


def test_cpp_routes_follow_the_switches(c_operators, tmp_path):
    a = torch.randn(512, device=DEVICE)
    with flag_gems.use_gems():
        torch.add(a, a)
    routed = c_operators.routed_calls
    before = routed()
    torch.add(a, a)  # disabled: native
    with flag_gems.use_gems(exclude=["add"]):
        torch.add(a, a)
    with flag_gems.use_gems(record=True, path=str(tmp_path / "r.log")):
        torch.add(a, a)  # recorded calls take the Python router, which logs them
    assert routed() == before
    assert "aten::add.Tensor\tc++" in (tmp_path / "r.log").read_text()
    with flag_gems.use_gems():
        torch.add(a, a)
    assert routed() == before + 1


def test_cpp_routes_decline_what_they_do_not_cover(c_operators):
    a = torch.randn(64, device=DEVICE, dtype=torch.float16)
    cases = [
        (lambda: torch.add(a, a, alpha=2), a.double() + 2 * a.double()),  # alpha is not the default
        (lambda: torch.add(a, a.float()), a.double() + a.double()),  # mixed dtypes
        (lambda: torch.add(a[::2], a[1::2]), a[::2].double() + a[1::2].double()),  # strided
        (lambda: torch.gt(a, 0.1), a > 0.1),  # a number beside halves is rounded first
        (lambda: torch.nn.functional.gelu(a, approximate="tanh"),
         torch.nn.functional.gelu(a.double(), approximate="tanh")),
    ]
    with flag_gems.use_gems():
        torch.add(a, a)
        torch.gt(a, a)
        before = c_operators.routed_calls()
        results = [ours() for ours, _ in cases]
        assert c_operators.routed_calls() == before
    for result, (_, expected) in zip(results, cases):  # checked natively: the checks add and compare too
        if result.dtype == torch.bool:
            assert torch.equal(result, expected)
        else:
            assert_close(result, expected, result.dtype)


def test_c_path_launches_with_the_chosen_block(c_operators, monkeypatch):
    """The wrappers launch with the block the tuner chose for the call's size (here a vendor's,
    smaller than the heuristic's 2048), and forget it when the tuners forget their choices."""
    a, b = torch.randn(3000, device=DEVICE), torch.randn(3000, device=DEVICE)
    with monkeypatch.context() as patch:
        patch.setitem(flag_gems.runtime.selected_vendor().configs, "pointwise_flat",
                      lambda size, itemsize, tensors: (256, 4))
        flag_gems.tuning.forget_choices()
        with flag_gems.use_gems():
            torch.add(a, b)  # Python compiles BLOCK=256 and teaches it
            before = c_operators.routed_calls()
            routed = torch.add(a, b)
            assert c_operators.routed_calls() == before + 1
    # A grid computed for 2048-element programs would leave most of the result unwritten.
    assert_close(routed, a.double() + b.double(), torch.float32)
    flag_gems.tuning.forget_choices()
    with flag_gems.use_gems():
        before = c_operators.routed_calls()
        torch.add(a, b)  # the wrappers forgot their kernel: Python again, with the heuristic
        assert c_operators.routed_calls() == before
        again = torch.add(a, b)
        assert c_operators.routed_calls() == before + 1
    assert_close(again, a.double() + b.double(), torch.float32)


# ---- the C++ backward node of flag_gems.cross_entropy_loss (csrc/kernel_backward.cpp)

CPP_BACKWARD = "FlagGemsCrossEntropyBackward"


def _python_node_loss(x, target, weight, reduction, smoothing):
    """cross_entropy_loss through its Python autograd node, whatever the plan's state."""
    from flag_gems.ops.loss.common import REDUCTIONS
    from flag_gems.ops.loss.cross_entropy import _ce_plan, _CrossEntropy

    plan = _ce_plan(x, target, weight, REDUCTIONS[reduction], -100, smoothing)
    return _CrossEntropy.apply(x, target, weight, plan, smoothing)


def _ce_inputs(kind, dtype):
    shape = (8, 300, 3) if kind == "3d" else (64, 1000)
    x = (torch.randn(shape, device=DEVICE) * 3).to(dtype).requires_grad_()
    if kind == "probabilities":
        return x, torch.rand(shape, device=DEVICE).softmax(1).to(dtype), None, 0.0
    target = torch.randint(0, shape[1], shape[:1] + shape[2:], device=DEVICE)
    target.view(-1)[::7] = -100  # ignored
    if kind == "weighted":
        return x, target, (torch.rand(shape[1], device=DEVICE) + 0.5).to(dtype), 0.2
    return x, target, None, 0.0


@pytest.mark.parametrize("kind", ["indices", "weighted", "probabilities", "3d"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_cross_entropy_backward_runs_in_cpp(c_operators, kind, reduction, dtype):
    """After one backward through the Python node, later calls of the layout get the C++ node,
    with the Python node's exact results."""
    x, target, weight, smoothing = _ce_inputs(kind, dtype)
    python_loss = _python_node_loss(x, target, weight, reduction, smoothing)
    (expected,) = torch.autograd.grad(python_loss, x)
    flag_gems.cross_entropy_loss(x, target, weight, reduction, label_smoothing=smoothing).backward()
    x.grad = None
    loss = flag_gems.cross_entropy_loss(x, target, weight, reduction, label_smoothing=smoothing)
    assert loss.grad_fn.name() == CPP_BACKWARD
    torch.testing.assert_close(loss, python_loss, rtol=0, atol=0)
    (grad,) = torch.autograd.grad(loss, x)
    torch.testing.assert_close(grad, expected, rtol=0, atol=0)
    exact = x.detach().double().requires_grad_()
    reference = torch.nn.functional.cross_entropy(exact, target, None if weight is None else weight.double(),
                                                  reduction=reduction, label_smoothing=smoothing)
    (reference_grad,) = torch.autograd.grad(reference, exact)
    assert_close(grad, reference_grad.to(dtype), dtype)


def test_cross_entropy_cpp_backward_serves_every_gradient(c_operators):
    """Gradients the node's kernel was not compiled for (off 16-byte alignment, graph-building)
    go through Python; saved tensors follow autograd's rules (retain_graph, in-place changes)."""
    x, target, _, _ = _ce_inputs("indices", torch.float32)
    flag_gems.cross_entropy_loss(x, target).backward()
    loss = flag_gems.cross_entropy_loss(x, target)
    assert loss.grad_fn.name() == CPP_BACKWARD
    (expected,) = torch.autograd.grad(_python_node_loss(x, target, None, "mean", 0.0), x,
                                      torch.tensor(3.0, device=DEVICE))
    aligned = torch.tensor(3.0, device=DEVICE)
    unaligned = torch.full((8,), 3.0, device=DEVICE)[1]
    for grad in (aligned, unaligned):
        (mine,) = torch.autograd.grad(loss, x, grad, retain_graph=True)
        torch.testing.assert_close(mine, expected, rtol=0, atol=0)
    differentiable = torch.tensor(3.0, device=DEVICE, requires_grad=True)
    (mine,) = torch.autograd.grad(loss, x, differentiable, retain_graph=True, create_graph=True)
    torch.testing.assert_close(mine.detach(), expected, rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        mine.sum().backward()
    x.grad = None
    loss.backward(retain_graph=True)
    loss.backward()
    torch.testing.assert_close(x.grad, expected * 2 / 3)
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()
    changed = flag_gems.cross_entropy_loss(x, target)
    with torch.no_grad():
        x.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        changed.backward()
