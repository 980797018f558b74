"""full, zeros, ones, *_like, new_*, fill and zero, with their out= forms, against native."""

import pytest
import torch

from flag_gems.ops.creation import fill as fill_module

from conftest import ALL_DTYPES, DEVICE, make
from creation_cases import assert_rows_reach_backend, check, check_error

SHAPES = [(2, 3), (), (0, 4), (1, 5, 1)]
# A value of each kind that converts to every dtype, and per dtype one more that needs care.
VALUES = [0, 1, True, 2.75]
EDGE = {torch.uint8: -1, torch.int8: -128, torch.int64: 2**62 + 1, torch.float16: 65504.0, torch.float32: 1e-40,
        torch.bfloat16: -0.0, torch.float64: float("nan"), torch.int32: -7.9, torch.bool: 0.5, torch.int16: 2**15 - 1}


def _layouts(dtype):
    """Inputs of every layout a *_like sees: contiguous, transposed, sliced, expanded, 0-d, empty."""
    base = make((3, 4), dtype)
    return [base, base.t(), base[:, ::2], make((4,), dtype).expand(3, 4), make((), dtype), make((0, 3), dtype),
            make((2, 3, 4, 5), dtype).to(memory_format=torch.channels_last)]


def test_rows_reach_the_backend():
    assert_rows_reach_backend(fill_module)


@pytest.mark.parametrize("value", [True, 3, -2.5, 2**40])
def test_full_infers_the_dtype_of_its_value(value):
    for shape in SHAPES:
        check(lambda: torch.full(shape, value, device=DEVICE))


def test_full_follows_the_default_dtype():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        check(lambda: torch.full((3,), 0.1, device=DEVICE))
        check(lambda: torch.zeros(2, device=DEVICE))
    finally:
        torch.set_default_dtype(previous)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_full_zeros_ones_every_dtype(dtype):
    for value in VALUES + [EDGE[dtype]]:
        check(lambda: torch.full((2, 3), value, dtype=dtype, device=DEVICE))
    for shape in SHAPES:
        check(lambda: torch.zeros(shape, dtype=dtype, device=DEVICE))
        check(lambda: torch.ones(shape, dtype=dtype, device=DEVICE))


@pytest.mark.parametrize("dtype", [torch.float32, torch.int8, torch.bool], ids=str)
def test_factory_out_forms_into_any_layout(dtype):
    for out in (lambda: torch.empty(2, 3, dtype=dtype, device=DEVICE),
                lambda: torch.empty(3, 2, dtype=dtype, device=DEVICE).t(),
                lambda: torch.empty(2, 6, dtype=dtype, device=DEVICE)[:, ::2]):
        check(lambda: torch.full((2, 3), 1, out=out()))
        check(lambda: torch.zeros((2, 3), out=out()))
        check(lambda: torch.ones((2, 3), out=out()))


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_like_forms_keep_every_layout(dtype):
    for x in _layouts(dtype):
        check(lambda: torch.zeros_like(x))
        check(lambda: torch.ones_like(x))
        check(lambda: torch.full_like(x, EDGE[dtype]))
        check(lambda: torch.full_like(x, 1, dtype=torch.float16))
        check(lambda: torch.zeros_like(x, memory_format=torch.contiguous_format))


def test_like_out_forms():
    x = make((3, 4), torch.float32)
    for out in (lambda: torch.empty(3, 4, device=DEVICE), lambda: torch.empty(4, 3, device=DEVICE).t()):
        check(lambda: torch.ops.aten.zeros_like.out(x, out=out()))
        check(lambda: torch.ops.aten.ones_like.out(x.t().t(), out=out()))
        check(lambda: torch.ops.aten.full_like.out(x, -3, out=out()))


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_new_forms(dtype):
    x = make((3, 4), dtype).t()
    for size in [(2, 3), (), (0,)]:
        check(lambda: x.new_zeros(size))
        check(lambda: x.new_ones(size))
        check(lambda: x.new_full(size, EDGE[dtype]))
    check(lambda: x.new_full((2,), 7, dtype=torch.int16))
    check(lambda: x.new_zeros((2, 2), dtype=torch.bool))
    out = torch.empty(4, 2, dtype=dtype, device=DEVICE).t()
    check(lambda: torch.ops.aten.new_ones.out(x, (2, 4), out=out))
    check(lambda: torch.ops.aten.new_zeros.out(x, (2, 4), out=out))
    check(lambda: torch.ops.aten.new_full.out(x, (2, 4), 1, out=out))


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_fill_and_zero(dtype):
    for x in _layouts(dtype)[:3]:
        check(lambda: torch.fill(x, EDGE[dtype]))
        check(lambda: torch.fill(x, torch.tensor(3, dtype=torch.int32, device=DEVICE)))  # a tensor value
        check(lambda: torch.fill(x, torch.tensor(1.5)))  # a CPU number
        check(lambda: torch.ops.aten.zero(x))
        out = torch.empty_like(x).t().contiguous().t() if x.dim() == 2 else torch.empty_like(x)
        check(lambda: torch.ops.aten.fill.Scalar_out(x, 2, out=out))
        check(lambda: torch.ops.aten.fill.Tensor_out(x, torch.tensor(True, device=DEVICE), out=out))
        check(lambda: torch.ops.aten.zero.out(x, out=out))


def test_bad_input_raises_as_torch():
    x = make((3,), torch.int8)
    check_error(lambda: torch.full((-1, 2), 1.0, device=DEVICE))
    check_error(lambda: torch.zeros(2, -3, device=DEVICE))
    check_error(lambda: torch.ones(-1, device=DEVICE))
    check_error(lambda: torch.full((2,), 300, dtype=torch.int8, device=DEVICE))
    check_error(lambda: torch.full((2,), 1e6, dtype=torch.float16, device=DEVICE))
    check_error(lambda: torch.full((2,), float("nan"), dtype=torch.int32, device=DEVICE))
    check_error(lambda: torch.full((2,), -1.0, dtype=torch.uint8, device=DEVICE))
    check_error(lambda: torch.full_like(x, 128))
    check_error(lambda: x.new_full((2,), -129))
    check_error(lambda: x.new_zeros((-2,)))
    check_error(lambda: torch.fill(x, torch.ones(2, device=DEVICE)))
    check_error(lambda: torch.ops.aten.fill.Scalar_out(x, 1, out=torch.empty(3, device=DEVICE)))


def test_what_our_kernels_do_not_take_runs_natively():
    x = make((2, 3), torch.float32)
    check(lambda: torch.full((2,), 1 + 2j, device=DEVICE), ours=False)
    check(lambda: torch.zeros(2, dtype=torch.complex64, device=DEVICE), ours=False)
    check(lambda: torch.ones_like(x, dtype=torch.complex128), ours=False)
    # PyTorch resizes an out of another shape
    check(lambda: torch.ops.aten.zeros_like.out(x, out=torch.empty(0, device=DEVICE)), ours=False)
    check(lambda: torch.zeros((2, 3), out=torch.empty(6, device=DEVICE)), ours=False)
    check(lambda: torch.ops.aten.zeros_like.out(x, out=torch.empty(2, 3, dtype=torch.int8, device=DEVICE)),
          ours=False)  # an out of another dtype (native converts)
