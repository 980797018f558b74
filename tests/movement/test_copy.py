"""copy_, _to_copy (.to / .float / .half), clone, fill_, zero_ against native."""

import pytest
import torch

import flag_gems
from flag_gems.testing import assert_equal

from conftest import assert_same_error, ALL_DTYPES, DEVICE, ON_GPU, make, pick

SHAPE = pick((5, 7), (512, 1030))


def _routed(fn):
    native = fn()
    with flag_gems.use_gems():
        ours = fn()
    return ours, native


def _same(ours, native):
    assert ours.dtype == native.dtype and ours.shape == native.shape and ours.stride() == native.stride()
    _equal(ours, native)


def _equal(ours, native):
    if native.dtype == torch.bfloat16 and not ON_GPU:
        # The interpreter truncates fp32 -> bf16 instead of rounding: one unit in the last place.
        torch.testing.assert_close(ours, native, rtol=2**-7, atol=0, equal_nan=True)
    else:
        assert_equal(ours, native, equal_nan=True)


@pytest.mark.parametrize("source", ALL_DTYPES, ids=str)
def test_every_conversion(source):
    x = make(SHAPE, source)
    if source.is_floating_point:
        x = x * 50  # exercise float-to-integer truncation
    for target in ALL_DTYPES:
        if source.is_floating_point and target == torch.uint8:
            x = x.abs()  # negative float to uint8 is undefined in C++ and PyTorch alike
        ours, native = _routed(lambda: x.to(target))
        _same(ours, native)


def test_conversion_shorthands_and_layouts():
    x = make(SHAPE, torch.float32)
    for call in (lambda t: t.half(), lambda t: t.bfloat16(), lambda t: t.double(), lambda t: t.int(),
                 lambda t: t.bool(), lambda t: t.t().float().half(), lambda t: t.t().half(),  # keeps the layout
                 lambda t: t[:, ::2].half(), lambda t: t.t().contiguous(), lambda t: t.t().clone(),
                 lambda t: t[::2].clone(), lambda t: t.expand(3, *t.shape).clone(),
                 lambda t: t.clone(memory_format=torch.contiguous_format)):
        ours, native = _routed(lambda: call(x))
        _same(ours, native)


def test_zero_dim_and_empty():
    for x in (torch.tensor(2.5, device=DEVICE), torch.empty(0, 3, device=DEVICE)):
        for call in (lambda t: t.half(), lambda t: t.clone(), lambda t: t.to(torch.int64)):
            ours, native = _routed(lambda: call(x))
            _same(ours, native)


def test_copy_into_any_layout():
    src = make(SHAPE, torch.float32)
    for dest_factory in (lambda: torch.empty(SHAPE, device=DEVICE, dtype=torch.bfloat16),
                         lambda: torch.empty(SHAPE[::-1], device=DEVICE).t(),  # transposed destination
                         lambda: torch.empty(SHAPE[0], SHAPE[1] * 2, device=DEVICE)[:, ::2]):  # strided
        ours, native = _routed(lambda: dest_factory().copy_(src))
        _equal(ours, native)
    row = make((SHAPE[1],), torch.int32)  # a broadcast source of another dtype
    ours, native = _routed(lambda: torch.empty(SHAPE, device=DEVICE).copy_(row))
    _equal(ours, native)
    scalar = torch.tensor(3.5)  # a CPU 0-d source
    ours, native = _routed(lambda: torch.empty(SHAPE, device=DEVICE, dtype=torch.float16).copy_(scalar))
    _equal(ours, native)
    same = make(SHAPE, torch.float32)
    with flag_gems.use_gems():
        same.copy_(same)  # copying a tensor onto itself


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_fill_and_zero(dtype):
    for value in [True, False, 0, 3, 2.75, 0.5, -0.0]:  # floats truncate into integers, 0.5 is true
        ours, native = _routed(lambda: torch.empty(SHAPE, device=DEVICE, dtype=dtype).fill_(value))
        _equal(ours, native)
    for value in (torch.tensor(5, device=DEVICE), torch.tensor(5)):  # 0-d tensors, device and CPU
        ours, native = _routed(lambda: torch.empty(SHAPE, device=DEVICE, dtype=dtype).fill_(value))
        _equal(ours, native)
    ours, native = _routed(lambda: make(SHAPE, dtype).t().zero_())
    _equal(ours, native)
    ours, native = _routed(lambda: torch.zeros(SHAPE, device=DEVICE, dtype=dtype))
    _equal(ours, native)
    ours, native = _routed(lambda: torch.full(SHAPE, 1, device=DEVICE, dtype=dtype))
    _equal(ours, native)


def test_special_values_convert_like_torch():
    values = [float("inf"), float("-inf"), float("nan"), -0.0, 65520.0, 1e-40, 3.4e38]
    for target in (torch.float16, torch.bfloat16, torch.float64, torch.bool):
        x = torch.tensor(values, device=DEVICE)
        ours, native = _routed(lambda: x.to(target))
        _same(ours, native)


def test_bfloat16_rounds_to_nearest_even():
    """fp32 -> bf16 rounds to nearest even (ties, subnormals, overflow to inf) and bf16 ->
    fp32, fp64 and integers is exact, on the GPU and under the CPU interpreter alike."""
    values = [0.1, 1.00390625, 1.01171875, 1.0 + 3 * 2**-9, 3.4e38, -3.39e38, 1e-40, -2.5e-39, 2**-133,
              65504.0, -7.75, 123456.0]
    x = torch.tensor(values, device=DEVICE)
    ours, native = _routed(lambda: x.to(torch.bfloat16))
    assert torch.equal(ours.view(torch.int16), native.view(torch.int16))
    for target in (torch.float32, torch.float64, torch.int32):
        # integers take the values they can hold (out of range, casts differ by device)
        source = native[native.isfinite() & ((native.abs() < 2**31) | target.is_floating_point)]
        ours, expected = _routed(lambda: source.to(target))
        _same(ours, expected)
    ints = torch.tensor([3, -7, 257, 65535, 2**24 + 1], device=DEVICE, dtype=torch.int32)
    ours, native = _routed(lambda: ints.to(torch.bfloat16))
    assert torch.equal(ours.view(torch.int16), native.view(torch.int16))


@pytest.mark.parametrize("case", [
    lambda: torch.empty(3, dtype=torch.uint8, device=DEVICE).fill_(300),  # overflow
    lambda: torch.empty(3, dtype=torch.float16, device=DEVICE).fill_(1e6),  # overflow of a float type
    lambda: torch.empty(3, device=DEVICE).fill_(torch.ones(2, device=DEVICE)),  # non 0-d value
    lambda: torch.empty(3, device=DEVICE).copy_(torch.ones(4, device=DEVICE)),  # shapes
    lambda: torch.zeros(3, device=DEVICE).expand(2, 3).fill_(1.0),  # internal overlap
    lambda: (lambda t: t[1:].copy_(t[:-1]))(torch.arange(6.0, device=DEVICE)),  # partial overlap
], ids=["fill-overflow", "fill-float-overflow", "fill-tensor", "copy-shapes", "fill-overlap", "copy-overlap"])
def test_errors_match_torch(case):
    assert_same_error(case)


def test_complex_and_devices_fall_back():
    z = torch.randn(4, dtype=torch.complex64, device=DEVICE)
    ours, native = _routed(lambda: z.clone())
    torch.testing.assert_close(ours, native)
    if ON_GPU:
        host = torch.randn(4)
        ours, native = _routed(lambda: torch.empty(4, device=DEVICE).copy_(host))
        _equal(ours, native)
        ours, native = _routed(lambda: make((4,), torch.float32).to("cpu"))
        assert ours.device.type == "cpu"


def test_autograd_through_conversions():
    x = make((4, 5), torch.float64).requires_grad_()
    with flag_gems.use_gems():
        (grad,) = torch.autograd.grad((x.float().half().double() * 3).sum(), x)
    assert_equal(grad, torch.full((4, 5), 3.0, dtype=torch.float64, device=DEVICE))
