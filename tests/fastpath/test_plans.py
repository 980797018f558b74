"""The C++ routes' launch plans (fastpath/plans.py, csrc/routes.cpp): a call's first
layout is planned by the Python router, later calls of that layout replay the plan with
no Python; every replay gives what native gives, whatever layouts alternate."""

import pytest
import torch
import torch.nn.functional as F

import flag_gems

from conftest import DEVICE, ON_GPU

if not ON_GPU or torch.version.cuda is None:
    pytest.skip("the C++ routes launch CUDA kernels", allow_module_level=True)


@pytest.fixture(scope="module")
def c_operators():
    from flag_gems import c_operators

    return c_operators


def _x(*shape, dtype=torch.float32):
    return torch.randn(shape, device=DEVICE, dtype=dtype)


def _rms_norm(x, weight):
    variance = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
    return weight * (x.to(torch.float32) * torch.rsqrt(variance + 1e-6)).to(x.dtype)


def _rotary(q, cos, sin):
    half = q.shape[-1] // 2
    return q * cos + torch.cat((-q[..., half:], q[..., :half]), dim=-1) * sin


# The calls a Llama model makes, in the layouts it makes them.
MODEL_CALLS = [
    ("broadcast mul", lambda: (_x(1, 7, 64), _x(1, 7, 1)), torch.mul),
    ("mul by a number", lambda: (_x(3, 64),), lambda x: x * 0.125),
    ("mixed dtypes", lambda: (_x(4, 64, dtype=torch.bfloat16), _x(4, 64)), torch.add),
    ("add a number", lambda: (_x(1, 7, 1),), lambda x: x + 1e-6),
    ("negated slice", lambda: (_x(2, 4, 7, 32).transpose(1, 2),), lambda x: -x[..., 16:]),
    ("cast", lambda: (_x(5, 64, dtype=torch.bfloat16),), lambda x: x.to(torch.float32)),
    ("pow", lambda: (_x(5, 64),), lambda x: x.pow(2)),
    ("keepdim mean", lambda: (_x(1, 7, 64),), lambda x: x.mean(-1, keepdim=True)),
    ("rsqrt", lambda: (_x(1, 7, 1).abs() + 0.1,), torch.rsqrt),
    ("rms norm", lambda: (_x(1, 7, 64, dtype=torch.bfloat16), _x(64, dtype=torch.bfloat16)), _rms_norm),
    ("rotary", lambda: (_x(1, 4, 7, 32).transpose(1, 2), _x(1, 7, 1, 32), _x(1, 7, 1, 32)), _rotary),
    ("silu times up", lambda: (_x(3, 96, dtype=torch.bfloat16), _x(3, 96, dtype=torch.bfloat16)),
     lambda g, u: F.silu(g) * u),
    ("softmax", lambda: (_x(4, 9, 33),), lambda x: torch.softmax(x, -1)),
    ("layer norm", lambda: (_x(6, 64), _x(64), _x(64)), lambda x, w, b: F.layer_norm(x, (64,), w, b)),
    ("contiguous copy", lambda: (_x(1, 4, 7, 32),), lambda x: x.transpose(1, 2).contiguous()),
    ("linear", lambda: (_x(7, 64, dtype=torch.bfloat16), _x(96, 64, dtype=torch.bfloat16)), F.linear),
    ("cross entropy", lambda: (_x(6, 50), torch.randint(0, 50, (6,), device=DEVICE)), F.cross_entropy),
    ("sum keepdim", lambda: (_x(3, 40),), lambda x: x.sum(1, keepdim=True)),
    ("where of two dtypes", lambda: (_x(3, 40) > 0, _x(3, 40), _x(3, 40, dtype=torch.bfloat16)), torch.where),
]


def _same(ours, native):
    if isinstance(native, torch.Tensor):
        assert ours.dtype == native.dtype and ours.shape == native.shape and ours.stride() == native.stride()
        torch.testing.assert_close(ours, native, rtol=2e-2 if native.dtype == torch.bfloat16 else 1e-5,
                                   atol=1e-5, equal_nan=True)
    else:
        for o, n in zip(ours, native):
            _same(o, n)


@pytest.mark.parametrize("name, make, call", MODEL_CALLS, ids=[c[0] for c in MODEL_CALLS])
def test_replayed_calls_match_native(c_operators, name, make, call):
    inputs = make()
    native = call(*inputs)
    with flag_gems.use_gems():
        planned = call(*inputs)  # the first call of each layout: the router plans it
        before = c_operators.routed_calls()
        for _ in range(3):
            fresh = tuple(t.clone() if t.is_floating_point() else t for t in inputs)
            replayed = call(*fresh)
            _same(replayed, native)
        answered = c_operators.routed_calls() - before
    _same(planned, native)
    assert answered > 0, f"{name}: no call was answered in C++"


def test_layouts_alternate_without_mix_ups(c_operators):
    """Same shapes, other strides, offsets, alignments, dtypes and numbers, interleaved."""
    base = _x(65, 64)
    layouts = [base[:64], base[1:], base[:64].t().contiguous().t(), base[:, :32].repeat(1, 2), base[:64, ::1]]
    numbers = (0.5, 2.0, -1.0)
    with flag_gems.use_gems():
        for _ in range(3):
            for x in layouts:
                for number in numbers:
                    torch.testing.assert_close(x * number, (x.double() * number).float())
                    torch.testing.assert_close(torch.add(x, x[0]), (x.double() + x[0].double()).float())
                    torch.testing.assert_close(x.sum(0), x.double().sum(0).float(), rtol=1e-5, atol=1e-4)
                    for dtype in (torch.bfloat16, torch.float16):
                        torch.testing.assert_close(x.to(dtype), x.to(dtype))


def test_in_place_and_out_replays(c_operators):
    a, b = _x(8, 16), _x(8, 16)
    expected = a + 2 * b
    with flag_gems.use_gems():
        for _ in range(3):
            x = a.clone()
            result = x.add_(b, alpha=2)
            assert result is x
            torch.testing.assert_close(x, expected)
            out = torch.empty_like(a)
            returned = torch.mul(a, b, out=out)
            assert returned is out
            torch.testing.assert_close(out, a * b)


def test_switches_and_record_log_still_hold(c_operators, tmp_path):
    x = _x(33, 17)
    with flag_gems.use_gems():
        x * 3.0
        x * 3.0  # planned and replayed
    before = c_operators.routed_calls()
    x * 3.0  # off: native, our route answers nothing
    with flag_gems.use_gems(exclude=["mul"]):
        x * 3.0
    log = tmp_path / "r.log"
    with flag_gems.use_gems(record=True, path=str(log)):
        x * 3.0
    assert c_operators.routed_calls() == before
    assert "aten::mul.Tensor" in log.read_text()


def test_calls_from_inside_implementations_stay_native(c_operators):
    """A native_calls block (the tuner timing native, ops called directly) never replays a plan."""
    from flag_gems.runtime.nesting import native_calls

    x = _x(9, 10)
    with flag_gems.use_gems():
        x * 2.0
        x * 2.0
        before = c_operators.routed_calls()
        with native_calls():
            x * 2.0
        assert c_operators.routed_calls() == before


def test_plans_follow_the_tuners(c_operators):
    """Forgetting the tuners' choices (another mode, another cache) drops the plans."""
    x = _x(300, 7)
    with flag_gems.use_gems():
        x.sum(1)
        x.sum(1)
        assert c_operators._extension.plan_count() > 0
        flag_gems.tuning.forget_choices()
        assert c_operators._extension.plan_count() == 0
        torch.testing.assert_close(x.sum(1), x.double().sum(1).float())


def test_threads_replay_together(c_operators):
    import threading

    inputs = [_x(4, 10 + t) for t in range(4)]
    expected = [(x * 3.0 + x).sum(1) for x in inputs]
    errors = []

    def work(t):
        try:
            for _ in range(50):
                torch.testing.assert_close((inputs[t] * 3.0 + inputs[t]).sum(1), expected[t])
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    with flag_gems.use_gems():
        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors, errors
