"""flip, roll, repeat and pixel_unshuffle against native: every dtype, any strides, 0-d
and empty tensors, negative dims, out=, autograd and errors."""

import pytest
import torch

from conftest import ALL_DTYPES, DEVICE, assert_same_error, make, pick
from shape_checks import check, check_gradients

SHAPE = pick((2, 3, 5), (64, 96, 130))


def _layouts(x):
    """``x`` contiguous, transposed, sliced and expanded."""
    return [x, x.transpose(0, 2), x[:, ::2], x[:1].expand(3, *x.shape[1:])]


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_flip(dtype):
    for x in _layouts(make(SHAPE, dtype)):
        for dims in ([0], [-1], [0, 2], [1, -3, 2], []):
            check(lambda: torch.flip(x, dims), "flip")
    scalar = make((), dtype)
    check(lambda: torch.flip(scalar, [0]), "flip")
    check(lambda: torch.flip(make((0, 3), dtype), [1]), "flip")


def test_flip_keeps_the_layout_and_writes_out():
    x = make(SHAPE, torch.float32).transpose(0, 2)
    assert check(lambda: torch.flip(x, [1]), "flip").stride() == torch.flip(x, [1]).stride()
    flip_out = torch.ops.aten.flip.out
    check(lambda: flip_out(x, [0], out=torch.empty(x.shape, device=DEVICE)), "flip.out")
    check(lambda: flip_out(x, [0], out=torch.empty(x.shape[::-1], device=DEVICE).permute(2, 1, 0)), "flip.out")
    for bad in (lambda: torch.flip(x, [0, 0]), lambda: torch.flip(x, [0, -3]), lambda: torch.flip(x, [3])):
        assert_same_error(bad)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_roll(dtype):
    for x in _layouts(make(SHAPE, dtype)):
        for shifts, dims in ((1, 0), (-1, -1), ((2, -7), (0, 2)), ((1, 2), (1, 1)), ((4, 3, 5), (0, 1, 2))):
            check(lambda: torch.roll(x, shifts, dims), "roll")
    x = make(SHAPE, dtype)
    check(lambda: torch.roll(x, 7), "roll")  # flattened
    check(lambda: torch.roll(x.transpose(0, 1), -4))  # native flattens a copy, then rolls it with us
    scalar = make((), dtype)
    check(lambda: torch.roll(scalar, 3), "roll")
    check(lambda: torch.roll(make((0, 3), dtype), 1, 1), "roll")


def test_roll_out_and_errors():
    x = make(SHAPE, torch.int32)
    check(lambda: torch.ops.aten.roll.out(x, [1], [1], out=torch.empty(SHAPE, device=DEVICE, dtype=torch.int32)),
          "roll.out")
    for bad in (lambda: torch.roll(x, (1, 2), (0,)), lambda: torch.roll(x, 1, 3), lambda: torch.roll(x, (1, 2)),
                lambda: torch.roll(make((), torch.float32), 1, 0)):
        assert_same_error(bad)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_repeat(dtype):
    for x in _layouts(make(SHAPE, dtype)):
        for repeats in ((1, 1, 1), (2, 1, 3), (2, 1, 1, 2), (1, 0, 2)):
            check(lambda: x.repeat(*repeats), "repeat")
    scalar = make((), dtype)
    check(lambda: scalar.repeat(2, 3), "repeat")
    check(lambda: scalar.repeat(()), "repeat")


def test_repeat_out_errors_and_gradients():
    x = make((2, 3), torch.float32)
    check(lambda: torch.ops.aten.repeat.out(x, [2, 2], out=torch.empty(4, 6, device=DEVICE)), "repeat.out")
    for bad in (lambda: x.repeat(2), lambda: x.repeat(-1, 2)):
        assert_same_error(bad)
    check_gradients(lambda t: t.repeat(2, 1, 3), make((2, 3), torch.float64), overloads=("repeat",))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int8, torch.bool], ids=str)
def test_pixel_unshuffle(dtype):
    for shape in ((2, 4, 6), (2, 3, 4, 6), (2, 1, 2, 4, 2)):
        x = make(shape, dtype)
        check(lambda: torch.pixel_unshuffle(x, 2), "pixel_unshuffle")
        check(lambda: torch.pixel_unshuffle(x.transpose(-1, -2), 2), "pixel_unshuffle")
    images = make((2, 3, 4, 6), dtype).to(memory_format=torch.channels_last)
    check(lambda: torch.pixel_unshuffle(images, 2), "pixel_unshuffle")
    check(lambda: torch.pixel_unshuffle(images, 1), "pixel_unshuffle")
    empty = make((0, 1, 2, 2), dtype)
    check(lambda: torch.pixel_unshuffle(empty, 2))  # native keeps an empty input's shape


def test_pixel_unshuffle_out_errors_and_gradients():
    x = make((1, 2, 4, 4), torch.float32)
    check(lambda: torch.ops.aten.pixel_unshuffle.out(x, 2, out=torch.empty(1, 8, 2, 2, device=DEVICE)),
          "pixel_unshuffle.out")
    for bad in (lambda: torch.pixel_unshuffle(x, 3), lambda: torch.pixel_unshuffle(x[0, 0], 2),
                lambda: torch.pixel_unshuffle(x, 0)):
        assert_same_error(bad)
    check_gradients(lambda t: torch.pixel_unshuffle(t, 2), x.double(), overloads=("pixel_unshuffle",))


def test_flip_and_roll_gradients():
    x = make((3, 4), torch.float64)
    check_gradients(lambda t: torch.flip(t, [0]) * 3, x, overloads=("flip",))
    check_gradients(lambda t: torch.roll(t, (1, -2), (0, 1)), x, overloads=("roll",))
