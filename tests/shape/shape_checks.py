"""What the shape tests share: a call run natively and through flag_gems must give
bit-equal results, and the overloads named must have run our kernels (read from the
record log), not the native fallback."""

import torch

from flag_gems.codegen.launch import Replay
from flag_gems.testing import assert_equal

from conftest import DEVICE, routed


def routed_and_native(fn):
    """(ours, native, {overload: [implementation of each call]}) of ``fn()``."""
    native = fn()
    ours, calls = routed(fn)
    ran = {}
    for name, implementation in calls:
        ran.setdefault(name[len("aten::"):], []).append(implementation)
    return ours, native, ran


def assert_same(ours, native):
    """Equal dtypes, shapes and values (NaN equal to NaN), tensor by tensor."""
    if isinstance(native, (tuple, list)):
        assert len(ours) == len(native)
        for mine, theirs in zip(ours, native):
            assert_same(mine, theirs)
        return
    assert ours.dtype == native.dtype and ours.shape == native.shape, (ours, native)
    assert_equal(ours, native, equal_nan=True)


def check(fn, *overloads):
    """``fn()`` through flag_gems equals native, and every overload in ``overloads``
    ran on our kernels each time it was called (at least once)."""
    ours, native, ran = routed_and_native(fn)
    assert_same(ours, native)
    for name in overloads:
        assert ran.get(name) and all(impl == "triton" for impl in ran[name]), (name, ran)
    return ours


def check_gradients(fn, *inputs, overloads=()):
    """The output of ``fn(*inputs)`` and the gradients of ``inputs`` for a random cotangent
    (integer-valued, so sums are exact in every order) equal native's."""
    def run():
        leaves = [t.detach().clone().requires_grad_() for t in inputs]
        result = fn(*leaves)
        generator = torch.Generator(device=DEVICE).manual_seed(1)
        cotangent = torch.randint(-4, 5, result.shape, generator=generator, device=DEVICE).to(result.dtype)
        return (result.detach(), *torch.autograd.grad(result, leaves, cotangent))

    check(run, *overloads)


def integers(shape, dtype):
    """Small integer values of ``dtype`` on the test device: sums of them are exact."""
    return torch.randint(-8, 9, shape, device=DEVICE).to(dtype)


class LaunchCounter:
    """Counts the launches plans replay (every kernel of the gather operators)."""

    def __init__(self, monkeypatch):
        self.count = 0
        replay = Replay.__call__

        def counted(plan, *args):
            self.count += 1
            return replay(plan, *args)

        monkeypatch.setattr(Replay, "__call__", counted)
