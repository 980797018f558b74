"""cat and stack against native: every dtype, promotion of mixed inputs, any strides,
legacy empty inputs, out=, the Llama calls (one launch each), autograd and errors."""

import pytest
import torch

from conftest import ALL_DTYPES, DEVICE, assert_same_error, make, pick
from shape_checks import LaunchCounter, check, check_gradients

SHAPE = pick((2, 3, 4), (64, 96, 128))


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_cat_every_dtype_and_dim(dtype):
    for dim in (0, 1, 2, -1, -3):
        parts = []
        for grow in (1, 2, 3):
            shape = list(SHAPE)
            shape[dim] = grow
            parts.append(make(shape, dtype))
        check(lambda: torch.cat(parts, dim), "cat")


def test_cat_promotes_mixed_dtypes():
    pairs = [(torch.int32, torch.float16), (torch.bool, torch.int8), (torch.uint8, torch.int8),
             (torch.bfloat16, torch.float32), (torch.bool, torch.float64), (torch.int64, torch.bfloat16),
             (torch.float16, torch.bfloat16)]
    for first, second in pairs:
        a, b = make((2, 3), first), make((4, 3), second)
        check(lambda: torch.cat([a, b]), "cat")
        check(lambda: torch.cat([b, a, b], 0), "cat")


def test_cat_reads_any_strides():
    x = make((3, 4, 5), torch.float32)
    column = make((4, 1), torch.float32)
    check(lambda: torch.cat([x.transpose(0, 2), x.transpose(0, 2)], 1), "cat")  # transposed
    check(lambda: torch.cat([x[:, ::2], x[:, 1:3]], 1), "cat")  # sliced
    check(lambda: torch.cat([column.expand(4, 3), x[0, :, :2]], 1), "cat")  # expanded
    check(lambda: torch.cat([x.flip(0), x], 0), "cat")
    images = make((2, 3, 4, 5), torch.float16).to(memory_format=torch.channels_last)
    ours = check(lambda: torch.cat([images, images], 1), "cat")
    assert ours.is_contiguous(memory_format=torch.channels_last)  # the inputs' format, as PyTorch keeps it


def test_cat_llama_calls_launch_once(monkeypatch):
    """rotate_half (a negated half beside a last-dim slice) and the KV cache (dim -2)."""
    launches = LaunchCounter(monkeypatch)
    q = make(pick((1, 4, 6, 8), (1, 32, 512, 128)), torch.bfloat16)
    half = q.shape[-1] // 2
    negated = -q[..., half:]
    launches.count = 0
    check(lambda: torch.cat((negated, q[..., :half]), dim=-1), "cat")
    assert launches.count == 1
    past, new = make(pick((1, 2, 5, 8), (1, 8, 511, 128)), torch.bfloat16), make(
        pick((1, 2, 1, 8), (1, 8, 1, 128)), torch.bfloat16)
    launches.count = 0
    check(lambda: torch.cat([past, new], dim=-2), "cat")
    assert launches.count == 1
    three = [make((2, 3), torch.float32) for _ in range(3)]
    launches.count = 0
    check(lambda: torch.cat(three, 1), "cat")
    assert launches.count == 1


def test_cat_many_and_empty_inputs():
    parts = [make((2, size, 3), torch.int16) for size in (1, 0, 2, 3, 0, 1, 2, 1, 1, 4, 2)]
    check(lambda: torch.cat(parts, 1), "cat")  # two launches of up to eight inputs
    empty = make((2, 0, 3), torch.float32)
    check(lambda: torch.cat([empty, empty], 1), "cat")
    check(lambda: torch.cat([empty, empty], 0), "cat")


def test_cat_skips_legacy_empty_inputs():
    a = make((2, 3), torch.float32)
    legacy = torch.empty(0, device=DEVICE, dtype=torch.float64)
    check(lambda: torch.cat([a, legacy], 1), "cat")  # skipped, but its dtype promotes
    check(lambda: torch.cat([legacy, a, legacy]), "cat")
    check(lambda: torch.cat([legacy, legacy]))  # native's own case


def test_cat_out():
    a, b = make((2, 3), torch.float32), make((1, 3), torch.float32)
    check(lambda: torch.cat([a, b], out=torch.empty(3, 3, device=DEVICE)), "cat.out")
    check(lambda: torch.cat([a, b], out=torch.empty(3, 3, device=DEVICE).t().t()), "cat.out")
    check(lambda: torch.cat([a.t(), b.t()], 1, out=torch.empty(3, 3, device=DEVICE).t()), "cat.out")
    check(lambda: torch.cat([a, b], out=torch.empty(0, device=DEVICE)))  # native resizes
    check(lambda: torch.cat([a, b], out=torch.empty(3, 3, device=DEVICE, dtype=torch.float64)))  # native casts


def test_cat_errors_match_torch():
    a, joined = make((2, 3), torch.float32), make((4, 3), torch.float32)
    for bad in (lambda: torch.cat([a, make((2, 4), torch.float32)]),
                lambda: torch.cat([a, make((2, 3, 1), torch.float32)]),
                lambda: torch.cat([make((), torch.float32), make((), torch.float32)]),
                lambda: torch.cat([a, a], 2), lambda: torch.cat([]),
                lambda: torch.cat([joined[:2], joined[2:]], out=joined),
                lambda: torch.cat([a, a], out=torch.empty(4, 3, device=DEVICE, dtype=torch.int32))):
        assert_same_error(bad)


def test_cat_gradients():
    a, b = make((2, 3), torch.float64), make((2, 2), torch.float64)
    check_gradients(lambda x, y: torch.cat([x, y.flip(0)], 1) * 2, a, b, overloads=("cat",))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int64, torch.bool], ids=str)
def test_stack(dtype):
    parts = [make(SHAPE, dtype) for _ in range(3)]
    for dim in (0, 1, 3, -1, -4):
        check(lambda: torch.stack(parts, dim), "stack")
    scalars = [make((), dtype) for _ in range(4)]
    check(lambda: torch.stack(scalars), "stack")
    check(lambda: torch.stack([p.transpose(0, 1) for p in parts], 1), "stack")
    check(lambda: torch.stack([make((2, 0), dtype)] * 2), "stack")


def test_stack_promotes_out_and_errors():
    a, b, stacked = make((2, 3), torch.int32), make((2, 3), torch.float16), make((1, 2, 3), torch.float16)
    check(lambda: torch.stack([a, b]), "stack")
    check(lambda: torch.stack([a, b], 1, out=torch.empty(2, 2, 3, device=DEVICE, dtype=torch.float16)), "stack.out")
    for bad in (lambda: torch.stack([a, make((3, 2), torch.int32)]), lambda: torch.stack([a, a], 3),
                lambda: torch.stack([]), lambda: torch.stack([a, a], out=torch.empty(2, 2, 3, device=DEVICE)),
                lambda: torch.stack([stacked[0]], out=stacked)):
        assert_same_error(bad)


def test_stack_gradients():
    a, b = make((2, 3), torch.float64), make((2, 3), torch.float64)
    check_gradients(lambda x, y: torch.stack([x, y.t().t()], 2), a, b, overloads=("stack",))
