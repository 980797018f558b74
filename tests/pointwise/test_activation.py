"""Activations and their backward ops against PyTorch (computed in fp64 where values
are compared, in the same dtype where layouts, errors and discontinuities are)."""

import pytest
import torch
import torch.nn.functional as F

import flag_gems
from flag_gems.ops.pointwise import activation as activation_ops
from flag_gems.testing import assert_close, assert_equal

from activation_cases import (FIVE_D, SHAPE, assert_routable_and_not_composite_implicit, compare, make_inputs, up,
                              with_gems)
from conftest import DEVICE, FLOAT_DTYPES, ON_GPU, error_of, make

aten = torch.ops.aten

# name -> (parameter sets for aten.<name>(x, *args, **kwargs), has an in-place form)
FORWARD = {
    "relu": ([((), {})], True),
    "leaky_relu": ([((), {}), ((0.2,), {}), ((-1.5,), {})], True),
    "elu": ([((), {}), ((0.5, 2.0, 1.5), {}), ((-1.0, 1, 3), {})], True),
    "celu": ([((), {}), ((0.5,), {}), ((-2.0,), {})], True),
    "gelu": ([((), {}), ((), {"approximate": "tanh"})], True),
    "silu": ([((), {})], True),
    "mish": ([((), {})], True),
    "softplus": ([((), {}), ((2.0, 5.0), {}), ((0.5, 1), {})], False),
    "hardtanh": ([((), {}), ((-0.3, 0.7), {}), ((-2, 2), {})], True),
    "hardsigmoid": ([((), {})], True),
    "hardswish": ([((), {})], True),
    "threshold": ([((0.1, 20.0), {}), ((-1, -3), {})], True),
}
FORWARD_CASES = [(name, args, kwargs) for name, (sets, _) in FORWARD.items() for args, kwargs in sets]
CASE_IDS = [f"{name}{list(args)}{kwargs.get('approximate', '')}" for name, args, kwargs in FORWARD_CASES]
INPLACE = [(name, sets[-1][0], sets[-1][1]) for name, (sets, inplace) in FORWARD.items() if inplace]


def compare_same_dtype(ours, native_call, args):
    """Special values: native in the same dtype, overflows of its intermediates included."""
    native = native_call(*args)
    assert ours.dtype == native.dtype and ours.shape == native.shape
    assert_close(ours, native, native.dtype, equal_nan=True)
    finite = [a.isfinite() & (a.abs() < 1e30) for a in args if isinstance(a, torch.Tensor) and a.dim() == 1]
    keep = torch.stack(finite).all(0) if finite else slice(None)
    assert_close(ours[keep], native_call(*[up(a) for a in args])[keep], native.dtype, equal_nan=True)


def _forward(name, x, args, kwargs):
    return getattr(aten, name)(x, *args, **kwargs)


# ---- forward -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name, args, kwargs", FORWARD_CASES, ids=CASE_IDS)
def test_forward_every_dtype(name, args, kwargs, dtype):
    x = make_inputs(SHAPE, dtype)
    ours = with_gems(_forward, name, x, args, kwargs)
    compare(ours, lambda t: _forward(name, t, args, kwargs), (x,))


@pytest.mark.parametrize("name", list(FORWARD))
def test_forward_shapes_and_layouts(name):
    args, kwargs = FORWARD[name][0][-1]
    big = make_inputs((6, 10), torch.float32)
    for x in (make_inputs((), torch.float32), make_inputs((0, 3), torch.float32), make_inputs(FIVE_D, torch.float32),
              make_inputs(FIVE_D, torch.float32).permute(4, 2, 0, 3, 1), big.t(), big[::2, 1::3],
              make_inputs((6, 1), torch.float32).expand(6, 5)):
        ours = with_gems(_forward, name, x, args, kwargs)
        compare(ours, lambda t: _forward(name, t, args, kwargs), (x,))


SPECIALS = [0.0, -0.0, 1.0, -1.0, 3.0, -3.0, 6.0, 20.0, 20.5, -20.0, 30.0, -30.0, 90.0, -90.0, 1e4, -1e4, 3e38,
            -3e38, float("inf"), float("-inf"), float("nan"), 1e-3, -1e-3]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name, args, kwargs", FORWARD_CASES, ids=CASE_IDS)
def test_forward_special_values(name, args, kwargs, dtype):
    values = SPECIALS
    if name == "gelu" and not kwargs and not ON_GPU:
        # PyTorch's CPU kernel overflows to inf at 3e38 and gives NaN at inf; its CUDA
        # kernel, whose formula ours follows, gives 3e38 and inf.
        values = [v for v in SPECIALS if not v > 1e30]
    x = torch.tensor(values, device=DEVICE).to(dtype)  # fp16: 3e38 becomes inf
    ours = with_gems(_forward, name, x, args, kwargs)
    compare_same_dtype(ours, lambda t: _forward(name, t, args, kwargs), (x,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gelu_keeps_denormals(dtype):
    """gelu's erf may come from the denormal-flushing math library: tiny and denormal
    inputs still give x / 2 (denormal results kept), and inputs near the guard's 2^-100
    agree with the exact values on both sides of it."""
    tiny = torch.finfo(dtype).smallest_normal
    values = [tiny / 8, -tiny / 8, tiny * 2**-20, tiny, -tiny, 5e-31, -5e-31, 1e-30, 2e-30, -1e-20, 1e-10, 0.5]
    x = torch.tensor(values, device=DEVICE, dtype=dtype)
    with flag_gems.use_gems():
        ours = F.gelu(x)
    exact = F.gelu(x.to(torch.float64) if dtype != torch.float64 else x)
    assert (ours != 0).all()
    torch.testing.assert_close(ours, exact.to(dtype), rtol=2 * torch.finfo(dtype).eps, atol=0)


@pytest.mark.parametrize("name, args, kwargs", FORWARD_CASES, ids=CASE_IDS)
def test_out_forms(name, args, kwargs):
    x = make_inputs(SHAPE, torch.float32)
    expected = _forward(name, x.double(), args, kwargs)
    out_overload = getattr(aten, name).out
    for out in (torch.empty(SHAPE, device=DEVICE), torch.empty(SHAPE[::-1], device=DEVICE).t()):
        returned = with_gems(out_overload, x, *args, out=out, **kwargs)
        assert returned is out
        assert_close(out, expected, torch.float32, equal_nan=True)
    # An out needing a resize goes to native, which resizes it; another dtype too.
    small = torch.empty(0, device=DEVICE)
    with_gems(out_overload, x, *args, out=small, **kwargs)
    assert small.shape == x.shape
    wide = torch.empty(SHAPE, dtype=torch.float64, device=DEVICE)
    row = next(row for row in activation_ops.ATEN if row.name == f"{name}.out")
    assert row.unsupported(x, *args, out=wide, **kwargs) is not None
    # (native hardtanh.out calls clamp.out, which another family routes)
    with flag_gems.use_gems(include=[f"{name}.out"]):
        ours = error_of(lambda: out_overload(x, *args, out=wide, **kwargs))
    assert ours is error_of(lambda: out_overload(x, *args, out=wide, **kwargs))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name, args, kwargs", INPLACE, ids=[n for n, _, _ in INPLACE])
def test_inplace_forms(name, args, kwargs, dtype):
    inplace = getattr(aten, name + "_")
    for x in (make_inputs(SHAPE, dtype), make_inputs(SHAPE[::-1], dtype).t(), make_inputs((6, 10), dtype)[:, ::2]):
        expected = _forward(name, x.double(), args, kwargs)
        ours = x.clone()
        returned = with_gems(inplace, ours, *args, **kwargs)
        assert returned is ours
        assert_close(ours, expected, dtype, equal_nan=True)


def test_inplace_on_overlapping_self_goes_native():
    x = make((3,), torch.float32).expand(2, 3)
    assert error_of(lambda: aten.relu_(x)) is not None
    assert error_of(lambda: with_gems(aten.relu_, x)) is error_of(lambda: aten.relu_(x))


def test_threshold_compares_like_native_at_the_boundary():
    # CUDA rounds the threshold to the input dtype before comparing, the CPU compares in
    # fp32: ours follows the native kernel of the device it runs on.
    for dtype in (torch.float16, torch.bfloat16):
        x = torch.tensor([0.1, 0.3, -2.7, 1.0], device=DEVICE).to(dtype)
        for index in range(x.numel()):
            value = x[index].item()
            for threshold in (value, value - abs(value) * 1e-4, value + abs(value) * 1e-4):
                native = aten.threshold(x, threshold, -7.0)
                assert_equal(with_gems(aten.threshold, x, threshold, -7.0), native)
                grad = torch.ones_like(x)
                assert_equal(with_gems(aten.threshold_backward, grad, x, threshold),
                             aten.threshold_backward(grad, x, threshold))


def test_hardtanh_bounds_round_like_native():
    x = torch.tensor([-5.0, -0.3, 0.0, 0.33, 0.7, 5.0, float("nan")], device=DEVICE)
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        for low, high in ((-0.3333, 0.7001), (0.5, 0.25), (-float("inf"), 0.1)):
            assert_equal(with_gems(aten.hardtanh, x.to(dtype), low, high), aten.hardtanh(x.to(dtype), low, high),
                         equal_nan=True)


# ---- backward ops --------------------------------------------------------------------------

# name -> (call(grad, x, *scalars), scalar sets, x of the backward: "input" or an output range)
BACKWARD = {
    "gelu_backward": (lambda g, x: aten.gelu_backward(g, x), None),
    "gelu_backward_tanh": (lambda g, x: aten.gelu_backward(g, x, approximate="tanh"), None),
    "silu_backward": (aten.silu_backward, None),
    "sigmoid_backward": (aten.sigmoid_backward, "unit"),
    "tanh_backward": (aten.tanh_backward, "signed_unit"),
    "threshold_backward": (lambda g, x: aten.threshold_backward(g, x, 0.5), None),
    "leaky_relu_backward": (lambda g, x: aten.leaky_relu_backward(g, x, 0.2, False), None),
    "leaky_relu_backward_result": (lambda g, x: aten.leaky_relu_backward(g, x, 0.2, True), None),
    "elu_backward": (lambda g, x: aten.elu_backward(g, 0.5, 2.0, 1.5, False, x), None),
    "elu_backward_result": (lambda g, x: aten.elu_backward(g, 0.5, 2.0, 1.5, True, x), None),
    "softplus_backward": (lambda g, x: aten.softplus_backward(g, x, 2.0, 5.0), None),
    "hardsigmoid_backward": (aten.hardsigmoid_backward, None),
    "hardswish_backward": (aten.hardswish_backward, None),
    "hardtanh_backward": (lambda g, x: aten.hardtanh_backward(g, x, -0.5, 2.0), None),
    "mish_backward": (aten.mish_backward, None),
}


def _backward_inputs(kind, shape, dtype):
    x = make_inputs(shape, dtype)
    if kind == "unit":
        x = torch.rand(shape, device=DEVICE).to(dtype)
    elif kind == "signed_unit":
        x = (torch.rand(shape, device=DEVICE) * 2 - 1).to(dtype)
    return make(shape, dtype), x


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", list(BACKWARD))
def test_backward_ops(name, dtype):
    call, kind = BACKWARD[name]
    grad, x = _backward_inputs(kind, SHAPE, dtype)
    compare(with_gems(call, grad, x), call, (grad, x))


@pytest.mark.parametrize("name", list(BACKWARD))
def test_backward_ops_shapes_layouts_specials(name):
    call, kind = BACKWARD[name]
    for shape in ((), (0, 3), FIVE_D):
        grad, x = _backward_inputs(kind, shape, torch.float32)
        compare(with_gems(call, grad, x), call, (grad, x))
    grad, x = _backward_inputs(kind, (6, 10), torch.float32)
    # Mixed layouts, zero strides, a broadcast grad (given expanded to native: on the CPU its
    # gelu_backward raises a oneDNN error for a broadcast grad).
    for g, t in ((grad, x.t().contiguous().t()), (grad.t().contiguous().t(), x), (grad[::2], x[1::2]),
                 (grad[:1].expand(6, 10), x), (grad[0], x)):
        compare(with_gems(call, g, t), lambda a, b: call(a.expand(b.shape), b), (g, t))
    if kind is None:
        x = torch.tensor(SPECIALS, device=DEVICE)
        for g in (torch.ones_like(x), torch.full_like(x, -2.5)):
            compare_same_dtype(with_gems(call, g, x), call, (g, x))


@pytest.mark.parametrize("name", ["gelu_backward", "silu_backward", "sigmoid_backward", "tanh_backward",
                                  "threshold_backward", "leaky_relu_backward", "elu_backward",
                                  "softplus_backward", "hardsigmoid_backward", "hardtanh_backward"])
def test_backward_grad_input_forms(name):
    scalars = {"threshold_backward": (0.5,), "leaky_relu_backward": (0.2, False),
               "softplus_backward": (2.0, 5.0), "hardtanh_backward": (-0.5, 2.0)}.get(name, ())
    grad, x = _backward_inputs(None, SHAPE, torch.float32)

    def call(g, t, **kwargs):
        if name == "elu_backward":
            return aten.elu_backward.grad_input(g, 0.5, 2.0, 1.5, False, t, **kwargs)
        return getattr(aten, name).grad_input(g, t, *scalars, **kwargs)

    expected = call(grad.double(), x.double(), grad_input=torch.empty(SHAPE, dtype=torch.float64, device=DEVICE))
    for out in (torch.empty(SHAPE, device=DEVICE), torch.empty(SHAPE[::-1], device=DEVICE).t()):
        assert with_gems(call, grad, x, grad_input=out) is out
        assert_close(out, expected, torch.float32)
    small = torch.empty(0, device=DEVICE)
    with_gems(call, grad, x, grad_input=small)
    assert small.shape == grad.shape
    grad_alias = grad.clone()
    assert with_gems(call, grad_alias, x, grad_input=grad_alias) is grad_alias  # grad_input is grad_output
    assert_close(grad_alias, expected, torch.float32)


def test_hardswish_backward_out_and_boundaries():
    grad, x = _backward_inputs(None, SHAPE, torch.float32)
    out = torch.empty(SHAPE[::-1], device=DEVICE).t()
    assert with_gems(aten.hardswish_backward.out, grad, x, out=out) is out
    assert_close(out, aten.hardswish_backward(grad.double(), x.double()), torch.float32)
    for dtype in FLOAT_DTYPES:  # the kinks, as the native kernel of this device treats them
        edges = torch.tensor([-3.0, 3.0, -2.99, 2.99, -3.01, 3.01], device=DEVICE).to(dtype)
        grad = torch.full_like(edges, 2.0)
        assert_close(with_gems(aten.hardswish_backward, grad, edges), aten.hardswish_backward(grad, edges), dtype)
        assert_close(with_gems(aten.hardsigmoid_backward, grad, edges), aten.hardsigmoid_backward(grad, edges),
                     dtype)
        assert_close(with_gems(aten.hardtanh_backward, grad, edges, -3.0, 3.0),
                     aten.hardtanh_backward(grad, edges, -3.0, 3.0), dtype)


# ---- autograd through torch.nn.functional -------------------------------------------------

FUNCTIONAL = {
    "relu": F.relu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.3),
    "elu": lambda x: F.elu(x, 0.7),
    "celu": lambda x: F.celu(x, 1.5),
    "selu": F.selu,  # composite: elu + elu_backward
    "relu6": F.relu6,  # composite: hardtanh + hardtanh_backward
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "mish": F.mish,
    "softplus": lambda x: F.softplus(x, 1.5, 4.0),
    "hardtanh": lambda x: F.hardtanh(x, -2.0, 1.5),
    "hardsigmoid": F.hardsigmoid,
    "hardswish": F.hardswish,
    "threshold": lambda x: F.threshold(x, 0.4, -1.0),
    "glu": lambda x: F.glu(x, -1),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
}


def _grad_of(fn, x, grad_seed):
    x = x.detach().requires_grad_()
    result = fn(x)
    (gradient,) = torch.autograd.grad(result, x, grad_seed(result))
    return result, gradient


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name", list(FUNCTIONAL))
def test_autograd_through_functional(name, dtype):
    fn = FUNCTIONAL[name]
    x = make_inputs((5, 8), dtype)
    seed = torch.Generator(device=DEVICE).manual_seed(1)
    # sigmoid and tanh differentiate through their rounded result (1 - y*y near |y| = 1):
    # compared with native in the same dtype, where the interpreter's truncated bf16 results
    # differ by an ulp (the GPU rounds them).
    from_result = name in ("sigmoid", "tanh")
    if from_result and dtype == torch.bfloat16 and not ON_GPU:
        pytest.skip("the interpreter truncates bf16 results: 1 - y*y amplifies the last ulp")

    def grad_seed(result):
        return torch.randn(result.shape, generator=seed, device=DEVICE).to(result.dtype)

    with flag_gems.use_gems():
        result, gradient = _grad_of(fn, x, grad_seed)
    seed.manual_seed(1)
    expected_result, expected_gradient = _grad_of(fn, x if from_result else x.double(), grad_seed)
    assert_close(result, expected_result, dtype)
    assert_close(gradient, expected_gradient, dtype)


@pytest.mark.parametrize("name, fn", [
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.3, inplace=True)),
    ("elu", lambda x: F.elu(x, 0.7, inplace=True)),
    ("hardtanh", lambda x: F.hardtanh(x, -2.0, 1.5, inplace=True)),
    ("relu", lambda x: F.relu(x, inplace=True)),
    ("silu", lambda x: F.silu(x, inplace=True)),
])
def test_autograd_through_inplace_functional(name, fn):
    x = make_inputs((5, 8), torch.float64)

    def run():
        leaf = x.clone().requires_grad_()
        result = fn(leaf * 1.0)  # in place on a non-leaf: the backward reads the result
        (gradient,) = torch.autograd.grad(result.sum(), leaf)
        return result.detach(), gradient

    with flag_gems.use_gems():
        ours = run()
    for mine, theirs in zip(ours, run()):
        assert_close(mine, theirs, torch.float64)


def test_autograd_runs_our_kernels(tmp_path):
    path = tmp_path / "activations.log"
    x = make_inputs((3, 4), torch.float32).requires_grad_()
    with flag_gems.use_gems(record=True, path=str(path)):
        for fn in (F.gelu, F.silu, F.mish, lambda t: F.glu(t, -1), F.relu, F.hardswish):
            fn(x).sum().backward()
    log = path.read_text()
    for name in ("gelu", "gelu_backward", "silu", "silu_backward", "mish", "mish_backward", "glu",
                 "glu_backward", "relu", "threshold_backward", "hardswish", "hardswish_backward"):
        # (Built C++ wrappers launch kernels an earlier call compiled: "c++".)
        assert f"aten::{name}\ttriton" in log or f"aten::{name}\tc++" in log, name


@pytest.mark.parametrize("name, fn", [
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh")),
    ("elu", lambda x: F.elu(x, 0.7)),
    ("softplus", lambda x: F.softplus(x, 2.0, 3.0)),
    ("mish", F.mish),
    ("glu", lambda x: F.glu(x, 0)),
])
def test_gradcheck(name, fn):
    x = (make((4, 3), torch.float64) * 2).requires_grad_()
    with flag_gems.use_gems():
        assert torch.autograd.gradcheck(fn, (x,))


# ---- errors and what goes native -----------------------------------------------------------


@pytest.mark.parametrize("case", [
    lambda: F.gelu(make((3,), torch.float32), approximate="erf"),
    lambda: F.celu(make((3,), torch.float32), alpha=0.0),
    lambda: aten.threshold(make((3,), torch.float16), 0.5, 1e6),  # value overflows fp16
    lambda: F.softplus(make((3,), torch.float32), beta=1e300),  # overflows fp32
    lambda: F.leaky_relu(make((3,), torch.float32), 1j),
    lambda: aten.leaky_relu_backward(make((3,), torch.float32), make((3,), torch.float32), -0.1, True),
    lambda: aten.elu_backward(make((3,), torch.float32), -0.5, 1, 1, True, make((3,), torch.float32)),
    lambda: aten.relu.out(make((3,), torch.float32), out=make((3,), torch.int32)),
    lambda: F.hardtanh(make((3,), torch.bool)),
    lambda: F.leaky_relu(make((3,), torch.int32)),
    lambda: F.gelu(make((3,), torch.int64)),
    lambda: aten.gelu_backward(make((3,), torch.float32), make((4,), torch.float32)),
    lambda: aten.glu_backward(make((3, 2), torch.float32), make((3, 5), torch.float32), 1),
], ids=["approximate", "celu-alpha-0", "threshold-value-overflow", "softplus-beta-overflow", "complex-slope",
        "leaky-inplace-negative", "elu-inplace-negative", "out-int", "hardtanh-bool", "leaky-int", "gelu-int",
        "backward-shapes", "glu-backward-odd"])
def test_errors_match_torch(case):
    native = error_of(case)
    assert error_of(lambda: with_gems(case)) is native


def test_integers_go_native():
    x = make((3, 4), torch.int32)
    for fn in (torch.relu, lambda t: aten.threshold(t, 2, 5), lambda t: F.hardtanh(t, 0, 5)):
        torch.testing.assert_close(with_gems(fn, x), fn(x))


def test_every_row_is_routable_and_not_composite_implicit():
    assert_routable_and_not_composite_implicit(activation_ops.ATEN)


def test_explicit_calls():
    x = make_inputs(SHAPE, torch.float32)
    assert_close(flag_gems.ops.gelu(x, approximate="tanh"), F.gelu(x.double(), approximate="tanh"), torch.float32)
    assert_close(flag_gems.ops.hardtanh(x, -2, 2), F.hardtanh(x.double(), -2, 2), torch.float32)
    ints = make((3,), torch.int64)
    torch.testing.assert_close(flag_gems.ops.relu(ints), torch.relu(ints))


# ---- PyTorch's OpInfo samples, forward and gradient -----------------------------------------

OPINFO_NAMES = ["nn.functional.relu", "nn.functional.leaky_relu", "nn.functional.elu", "nn.functional.celu",
                "nn.functional.selu", "nn.functional.relu6", "nn.functional.gelu", "nn.functional.silu",
                "nn.functional.mish", "nn.functional.softplus", "nn.functional.hardtanh",
                "nn.functional.hardsigmoid", "nn.functional.hardswish", "nn.functional.threshold",
                "nn.functional.glu"]


def _sample_outcome(op, sample, requires_grad):
    try:
        leaf = sample.input.detach().clone().requires_grad_(requires_grad)
        result = op(leaf, *sample.args, **sample.kwargs)
        if not requires_grad:
            return (result,), None
        return (result.detach(), torch.autograd.grad(result.sum(), leaf)[0]), None
    except Exception as error:  # noqa: BLE001 - compared with native's exception type
        return None, type(error)


@pytest.mark.parametrize("name", OPINFO_NAMES)
def test_opinfo_samples(name):
    pytest.importorskip("expecttest")  # torch.testing._internal needs it
    from torch.testing._internal.common_methods_invocations import op_db

    for op in [op for op in op_db if op.name == name]:
        for dtype in FLOAT_DTYPES + [torch.int32]:
            if dtype not in op.supported_dtypes(DEVICE):
                continue
            low = dtype in (torch.float16, torch.bfloat16)
            for requires_grad in (False, True) if dtype.is_floating_point else (False,):
                for sample in op.sample_inputs(DEVICE, dtype, requires_grad=False):
                    native, native_error = _sample_outcome(op, sample, requires_grad)
                    with flag_gems.use_gems():
                        ours, our_error = _sample_outcome(op, sample, requires_grad)
                    assert our_error is native_error, f"{sample}: native raised {native_error}, ours {our_error}"
                    for mine, theirs in zip(ours or (), native or ()):
                        torch.testing.assert_close(mine, theirs, equal_nan=True, rtol=2e-2 if low else 1.3e-5,
                                                   atol=2e-2 if low else 1e-5)


def test_relu_of_negative_zero_is_positive_zero():
    """As CUDA's relu (CPU's keeps -0.0): our kernels follow the GPU."""
    x = torch.tensor([-0.0, 0.0, float("nan"), -1.0, 2.0], device=DEVICE)
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        with flag_gems.use_gems():
            ours = torch.relu(x.to(dtype))
        native = torch.relu(x.to(dtype))
        assert not ours.signbit().any()
        if ON_GPU:
            assert torch.equal(ours.signbit(), native.signbit())
        torch.testing.assert_close(ours, native, equal_nan=True)
