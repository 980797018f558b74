"""glu, its backward op and the fused gated functions against PyTorch."""

import pytest
import torch
import torch.nn.functional as F

import flag_gems
from flag_gems.ops.pointwise import gated as gated_ops
from flag_gems.testing import assert_close, assert_equal

from activation_cases import assert_routable_and_not_composite_implicit, compare, make_inputs, with_gems
from conftest import DEVICE, FLOAT_DTYPES, error_of, make, pick

aten = torch.ops.aten


# ---- glu -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_glu(dtype):
    x = make_inputs((4, 6, 8), dtype)
    for dim in (0, 1, 2, -1, -3):
        compare(with_gems(F.glu, x, dim), lambda t: F.glu(t, dim), (x,))
    # Non-contiguous inputs, 1-d, empty halves.
    for t, dim in ((x.transpose(0, 2), 0), (x.transpose(0, 2), -1), (x[:, ::2], 2), (make_inputs((10,), dtype), 0),
                   (make_inputs((0, 4), dtype), 1), (make_inputs((3, 0), dtype), 1)):
        compare(with_gems(F.glu, t, dim), lambda u: F.glu(u, dim), (t,))


def test_glu_out_and_errors():
    x = make_inputs((4, 6), torch.float32)
    for out in (torch.empty(4, 3, device=DEVICE), torch.empty(3, 4, device=DEVICE).t()):
        assert with_gems(aten.glu.out, x, 1, out=out) is out
        assert_close(out, F.glu(x.double(), 1), torch.float32)
    for case in (lambda: F.glu(make_inputs((3, 5), torch.float32), 1),  # odd size
                 lambda: F.glu(torch.tensor(1.0, device=DEVICE)),  # 0-d
                 lambda: F.glu(x, 2)):  # dim out of range
        assert error_of(case) is not None
        assert error_of(lambda: with_gems(case)) is error_of(case)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_glu_backward(dtype):
    x = make_inputs((4, 6, 8), dtype)
    for dim in (0, 1, -1):
        t = x if dim != 1 else x.transpose(0, 2)
        grad = make(F.glu(t, dim).shape, dtype)
        compare(with_gems(aten.glu_backward, grad, t, dim), aten.glu_backward, (grad, t, dim))
    grad = make((4, 6, 4), dtype)
    expected = aten.glu_backward(grad.double(), x.double(), 2)
    for out in (torch.empty_like(x), torch.empty(8, 6, 4, dtype=dtype, device=DEVICE).transpose(0, 2)):
        assert with_gems(aten.glu_backward.grad_input, grad, x, 2, grad_input=out) is out
        assert_close(out, expected, dtype)
    # A broadcast grad_output and a grad_input aliasing self go native (CUDA's native
    # kernel rejects the broadcast grad_output: ours must raise the same error then).
    narrow_grad = make((4, 6, 1), dtype)
    native_error = error_of(lambda: aten.glu_backward(narrow_grad, x, -1))
    with flag_gems.use_gems(include=["glu_backward"]):
        assert error_of(lambda: aten.glu_backward(narrow_grad, x, -1)) is native_error
        ours = None if native_error else aten.glu_backward(narrow_grad, x, -1)
        alias = x.clone()
        aten.glu_backward.grad_input(grad, alias, 2, grad_input=alias)
    if ours is not None:
        assert_equal(ours, aten.glu_backward(narrow_grad, x, -1))
    native_alias = x.clone()
    aten.glu_backward.grad_input(grad, native_alias, 2, grad_input=native_alias)
    assert_equal(alias, native_alias)


def test_every_row_is_routable_and_not_composite_implicit():
    assert_routable_and_not_composite_implicit(gated_ops.ATEN)


# ---- fused gated functions -----------------------------------------------------------------

PAIR = {
    "silu_and_mul": (flag_gems.ops.silu_and_mul, lambda x, y: F.silu(x) * y),
    "gelu_and_mul": (flag_gems.ops.gelu_and_mul, lambda x, y: F.gelu(x) * y),
    "gelu_and_mul_tanh": (lambda x, y: flag_gems.ops.gelu_and_mul(x, y, approximate="tanh"),
                          lambda x, y: F.gelu(x, approximate="tanh") * y),
}


def _halves(x):
    return x.chunk(2, dim=-1)


HALVES = {
    "swiglu": (flag_gems.ops.swiglu, lambda x: F.silu(_halves(x)[0]) * _halves(x)[1]),
    "geglu": (flag_gems.ops.geglu, lambda x: F.gelu(_halves(x)[0]) * _halves(x)[1]),
    "geglu_tanh": (lambda x: flag_gems.ops.geglu(x, approximate="tanh"),
                   lambda x: F.gelu(_halves(x)[0], approximate="tanh") * _halves(x)[1]),
    "reglu": (flag_gems.ops.reglu, lambda x: F.relu(_halves(x)[0]) * _halves(x)[1]),
}


def _fused_grads(fn, inputs, seed):
    leaves = [t.detach().requires_grad_() for t in inputs]
    result = fn(*leaves)
    grads = torch.autograd.grad(result, leaves, seed.to(result.dtype))
    return result, grads


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", list(PAIR))
def test_fused_pair(name, dtype):
    ours, reference = PAIR[name]
    shape = pick((4, 16), (512, 1024))
    for x, y in ((make_inputs(shape, dtype), make(shape, dtype)),
                 (make_inputs(shape, dtype).t(), make(shape[::-1], dtype)),  # mixed layouts
                 (make_inputs(shape, dtype), make(shape[-1:], dtype))):  # broadcast y
        seed = make(torch.broadcast_shapes(x.shape, y.shape), dtype)  # the same values for both
        result, grads = _fused_grads(ours, (x, y), seed)
        expected, expected_grads = _fused_grads(reference, (x.double(), y.double()), seed)
        assert_close(result, expected, dtype)
        for mine, theirs, leaf in zip(grads, expected_grads, (x, y)):
            assert mine.shape == leaf.shape
            assert_close(mine, theirs, dtype, reduce_dim=mine.numel() and seed.numel() // mine.numel())


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", list(HALVES))
def test_fused_halves(name, dtype):
    ours, reference = HALVES[name]
    for x in (make_inputs(pick((3, 2, 16), (64, 128, 2048)), dtype), make_inputs((16, 6), dtype).t(),
              make_inputs((2,), dtype), make_inputs((0, 8), dtype)):
        seed = make(x.shape[:-1] + (x.shape[-1] // 2,), dtype)
        result, (grad,) = _fused_grads(ours, (x,), seed)
        expected, (expected_grad,) = _fused_grads(reference, (x.double(),), seed)
        assert result.shape == expected.shape and grad.shape == x.shape
        assert_close(result, expected, dtype)
        assert_close(grad, expected_grad, dtype)


def test_fused_special_values():
    values = torch.tensor([0.0, -0.0, 5.0, -5.0, 30.0, -30.0, 1e4, -1e4, float("inf"), float("-inf"),
                           float("nan")], device=DEVICE)
    # y of moderate size: gelu's 1 + erf(x / sqrt(2)) cancels for x << 0 in fp32 (as in PyTorch's
    # CUDA kernel); a large y would show that rounding next to an fp64 reference.
    gates = torch.tensor([0.0, -0.0, 1.0, -2.5, float("inf"), float("-inf"), float("nan")], device=DEVICE)
    x = values.repeat_interleave(gates.numel())
    y = gates.repeat(values.numel())
    for name, (ours, reference) in PAIR.items():
        assert_close(ours(x, y), reference(x.double(), y.double()), torch.float32, equal_nan=True)
    for name, (ours, reference) in HALVES.items():
        both = torch.cat([x, y])
        assert_close(ours(both), reference(both.double()), torch.float32, equal_nan=True)


@pytest.mark.parametrize("fn", [
    flag_gems.ops.silu_and_mul, flag_gems.ops.gelu_and_mul,
    lambda x, y: flag_gems.ops.gelu_and_mul(x, y, "tanh"),
    lambda x, y: flag_gems.ops.swiglu(torch.cat([x, y], -1)),
    lambda x, y: flag_gems.ops.geglu(torch.cat([x, y], -1), approximate="tanh"),
    lambda x, y: flag_gems.ops.reglu(torch.cat([x, y], -1)),
], ids=["silu_and_mul", "gelu_and_mul", "gelu_and_mul_tanh", "swiglu", "geglu_tanh", "reglu"])
def test_fused_gradcheck(fn):
    x = (make((3, 4), torch.float64) * 2).requires_grad_()
    y = make((3, 4), torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(fn, (x, y))


def test_fused_inputs_we_do_not_take():
    with pytest.raises(ValueError):
        flag_gems.ops.swiglu(make((3, 5), torch.float32))
    with pytest.raises(ValueError):
        flag_gems.ops.geglu(make((4,), torch.float32), approximate="erf")
    # Mixed dtypes and integers fall back to PyTorch's own ops: its result or its error.
    x, y = make((3, 4), torch.float32), make((3, 4), torch.float16)
    torch.testing.assert_close(flag_gems.ops.silu_and_mul(x, y), F.silu(x) * y)
    ints = make((3, 4), torch.int32)
    assert error_of(lambda: flag_gems.ops.silu_and_mul(ints, ints)) is error_of(lambda: F.silu(ints) * ints)
    torch.testing.assert_close(flag_gems.ops.reglu(ints), torch.relu(ints[:, :2]) * ints[:, 2:])
