"""constant_pad_nd and the reflection and replication pads (1d, 2d, 3d) with their
backward against native: every dtype, negative (cropping) pads, any strides, out=,
fill values as PyTorch converts them, autograd and errors."""

import pytest
import torch
import torch.nn.functional as F

from conftest import ALL_DTYPES, DEVICE, FLOAT_DTYPES, INT_DTYPES, assert_same_error, make, pick
from shape_checks import check, check_gradients, integers

SHAPE = pick((2, 3, 4), (32, 64, 130))
PADS = [(1, 2), (0, 1, 2, 0), (1, 1, 1, 1, 1, 1), (-1, 2), (2, -1, -1, 1), ()]


def _fills(dtype):
    if dtype == torch.bool:
        return [0, True, 2]
    if dtype.is_floating_point:
        return [0, -1.5, 0.1, float("inf")]
    return [0, 7, -8 if dtype != torch.uint8 else 255]


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_constant_pad(dtype):
    x = make(SHAPE, dtype)
    layouts = (x, x.transpose(0, 2), x[:, ::2])
    for i, pad in enumerate(PADS):
        check(lambda: torch.constant_pad_nd(layouts[i % 3], pad, 1), "constant_pad_nd")
    for value in _fills(dtype):
        check(lambda: torch.constant_pad_nd(x, (1, 1, 0, 1), value), "constant_pad_nd")
    scalar = make((), dtype)
    check(lambda: torch.constant_pad_nd(scalar, []), "constant_pad_nd")
    check(lambda: torch.constant_pad_nd(x, [-2, -2]), "constant_pad_nd")  # an empty result


def test_constant_pad_layout_out_and_gradients():
    images = make((2, 3, 4, 5), torch.float32).to(memory_format=torch.channels_last)
    ours = check(lambda: F.pad(images, (1, 1, 2, 0)), "constant_pad_nd")
    assert ours.is_contiguous(memory_format=torch.channels_last)
    x = make((2, 3), torch.float64)
    check(lambda: torch.ops.aten.constant_pad_nd.out(x, [1, 1], 2.0, out=torch.empty(2, 5, device=DEVICE,
                                                                                       dtype=torch.float64)),
          "constant_pad_nd.out")
    check_gradients(lambda t: F.pad(t, (1, -1, 2, 1), value=3.0), x, overloads=("constant_pad_nd",))


def test_constant_pad_errors_match_torch():
    x = make((2, 3), torch.float32)
    for bad in (lambda: torch.constant_pad_nd(x, [1]), lambda: torch.constant_pad_nd(x, [1] * 6),
                lambda: torch.constant_pad_nd(x, [-2, -2]),
                lambda: torch.constant_pad_nd(x.to(torch.int8), [1, 1], 1000),
                lambda: torch.constant_pad_nd(x.half(), [1, 1], 1e6)):
        assert_same_error(bad)


def _inputs(dims, batched, dtype):
    return make(((2,) if batched else ()) + (3,) + (2, 3, 5)[3 - dims:], dtype)


PAD_CASES = [(1, (1, 2)), (1, (-1, 2)), (1, (0, 0)), (2, (1, 0, 2, 1)), (2, (2, -1, 0, 2)), (3, (1, 1, 1, 0, 0, 1)),
             (3, (2, -2, 1, 1, 1, 1))]


def _pad_name(mode, dims):
    return f"{'reflection' if mode == 'reflect' else 'replication'}_pad{dims}d"


@pytest.mark.parametrize("mode", ["reflect", "replicate"])
def test_reflection_and_replication_pads(mode):
    for dims, pad in PAD_CASES:
        for batched in (False, True):
            x = _inputs(dims, batched, torch.float32)
            check(lambda: F.pad(x, pad, mode=mode), _pad_name(mode, dims))
            strided = x.transpose(0, 1) if batched else x[..., ::2]
            check(lambda: F.pad(strided, (0, 1) * dims, mode=mode), _pad_name(mode, dims))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES + INT_DTYPES, ids=str)
def test_pads_every_dtype(dtype):
    for mode, (dims, pad) in zip(("reflect", "replicate", "reflect", "replicate"), PAD_CASES[1::2]):
        x = _inputs(dims, True, dtype)
        check(lambda: F.pad(x, pad, mode=mode), _pad_name(mode, dims))


@pytest.mark.parametrize("mode", ["reflect", "replicate"])
def test_pad_backward_through_autograd(mode):
    for i, (dims, pad) in enumerate(PAD_CASES + [(1, (4, 0)), (2, (0, 4, 3, 0))]):
        if mode == "reflect" and max(pad) >= 2:
            continue  # reflection padding must stay below the input's size
        for batched in (False, True)[i % 2:]:
            x = _inputs(dims, batched, torch.float64)
            name = _pad_name(mode, dims)
            check_gradients(lambda t: F.pad(t, pad, mode=mode), x, overloads=(name, f"{name}_backward"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_pad_backward_calls(dtype):
    aten = torch.ops.aten
    x = make((2, 3, 4, 5), dtype)
    for name, pad in (("reflection_pad2d", [1, 2, 3, 0]), ("replication_pad2d", [1, -2, 3, 3]),
                      ("reflection_pad1d", [3, 4]), ("replication_pad3d", [1, 0, 2, 1, 0, 1])):
        source = x[0] if name == "reflection_pad1d" else x
        forward, backward = getattr(aten, name), getattr(aten, f"{name}_backward")
        grad = integers(forward(source, pad).shape, dtype)
        strided = grad.transpose(-1, -2).contiguous().transpose(-1, -2)
        check(lambda: backward(grad, source, pad), f"{name}_backward")
        check(lambda: backward.grad_input(strided, source, pad, grad_input=torch.empty_like(source)),
              f"{name}_backward.grad_input")


def test_pad_out_forms():
    aten = torch.ops.aten
    x = make((2, 4, 5), torch.float32)
    check(lambda: aten.reflection_pad1d.out(x, [1, 2], out=torch.empty(2, 4, 8, device=DEVICE)),
          "reflection_pad1d.out")
    check(lambda: aten.replication_pad2d.out(x, [1, 2, 0, 1], out=torch.empty(8, 5, 2, device=DEVICE).permute(2, 1, 0)),
          "replication_pad2d.out")


def test_pad_errors_match_torch():
    aten = torch.ops.aten
    x = make((2, 3, 4), torch.float32)
    for bad in (lambda: aten.reflection_pad1d(x, [4, 0]), lambda: aten.reflection_pad1d(x, [1, 1, 1]),
                lambda: aten.reflection_pad2d(x[0, 0], [1, 1, 1, 1]), lambda: aten.replication_pad1d(x, [-2, -2]),
                lambda: aten.replication_pad1d(x.bool(), [1, 1]), lambda: aten.reflection_pad1d(x[:, :0], [1, 1]),
                lambda: aten.reflection_pad1d_backward(x, x, [1, 1]),
                lambda: aten.replication_pad1d_backward(x.int(), x.int(), [0, 0])):
        assert_same_error(bad)
    empty = make((0, 3, 4), torch.float32)
    check(lambda: aten.replication_pad1d(empty, [1, 1]), "replication_pad1d")
