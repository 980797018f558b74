"""_softmax, _log_softmax and their backward (_softmax_backward_data,
_log_softmax_backward_data) against PyTorch in fp64."""

import math

import pytest
import torch
import torch.nn.functional as F

import flag_gems
from flag_gems.testing import assert_close

from conftest import DEVICE, FLOAT_DTYPES, ON_GPU, assert_same_error, make, pick


def assert_as_accurate(ours, native, reference, reduced=1):
    """``ours`` is at most twice as far from the fp64 ``reference`` as native is (half types'
    gradients carry the rounding of the saved forward result, natively too)."""
    ours_error = (ours.double() - reference).abs().max().item()
    native_error = (native.double() - reference).abs().max().item()
    # The interpreter truncates bf16 stores where the GPU rounds them: twice the error again.
    factor = 4 if ours.dtype == torch.bfloat16 and not ON_GPU else 2
    # For fp64 the reference is native's own result (native_error is 0) and only ulps judge
    # ours: a reduction summed in another order, and the saved forward result it reads,
    # differ by ulps that grow with the reduced length.
    spread = math.sqrt(reduced) if ours.dtype == torch.float64 else 1
    ulps = 4 * torch.finfo(ours.dtype).eps * reference.abs().max().item() * spread
    assert ours_error <= factor * native_error + ulps, (ours_error, native_error)

SHAPES_AND_DIMS = [
    ((), 0), ((0, 5), 1), ((5, 0), 1), ((7,), 0),
    (pick((9, 37), (4096, 4096)), 1),
    (pick((9, 37), (4096, 4096)), 0),  # non-last dim: tiles span N x K
    (pick((3, 5, 7), (32, 128, 256)), 1),
    (pick((2, 3, 4, 5), (8, 16, 32, 64)), -1),
    (pick((3, 20000), (8, 20000)), 1),  # one tile forward, two passes backward
    (pick((2, 40000), (8, 100000)), 1),  # longer than one tile: two passes
    (pick((2, 32768), (4096, 32768)), 1),  # the widest single tile
    (pick((2, 20000, 3), (4, 40000, 8)), 1),
    (pick((1, 128), (1024, 128)), 1),  # several rows per program
]


# (forward, its aten backward) pairs
KINDS = {
    "softmax": (torch.softmax, torch.ops.aten._softmax_backward_data),
    "log_softmax": (torch.log_softmax, torch.ops.aten._log_softmax_backward_data),
}


def check_forward(x, dim, dtype=None, kind="softmax"):
    forward = KINDS[kind][0]
    native = forward(x, dim, dtype=dtype)
    with flag_gems.use_gems():
        ours = forward(x, dim, dtype=dtype)
    assert ours.dtype == native.dtype and ours.shape == native.shape
    reference = forward(x.double(), dim)
    assert_close(ours, reference, native.dtype, equal_nan=True)
    return ours


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape, dim", SHAPES_AND_DIMS, ids=str)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_forward(shape, dim, dtype, kind):
    check_forward(make(shape, dtype) * 3, dim, kind=kind)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape, dim", SHAPES_AND_DIMS, ids=str)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_backward(shape, dim, dtype, kind):
    forward, backward = KINDS[kind]
    x = make(shape, dtype)
    y = forward(x.double(), dim).to(dtype)
    g = make(shape, dtype)
    native = backward(g, y, dim, dtype)
    with flag_gems.use_gems():
        ours = backward(g, y, dim, dtype)
    assert ours.dtype == native.dtype and ours.shape == native.shape
    reference = backward(g.double(), y.double(), dim, torch.float64)
    reduced = shape[dim] if shape else 1
    assert_close(ours, reference, dtype, reduce_dim=reduced)


@pytest.mark.parametrize("kind", KINDS)
def test_non_contiguous_and_special_values(kind):
    x = make(pick((12, 30), (1024, 2048)), torch.float32)
    check_forward(x.t(), 1, kind=kind)  # copied: reading it in place would waste whole sectors
    check_forward(x.t(), 0, kind=kind)
    check_forward(x[:, ::2], 1, kind=kind)  # read in place through strides
    check_forward(x[::3, 1:], 1, kind=kind)
    cube = make(pick((4, 6, 10), (64, 128, 256)), torch.float32)
    check_forward(cube.permute(1, 0, 2), 1, kind=kind)
    check_forward(cube[:, :, ::2], 1, kind=kind)
    check_forward(make((1, 7), torch.float32).expand(5, 7), 1, kind=kind)
    check_forward(make((5, 1), torch.float32).expand(5, 7), 1, kind=kind)
    special = torch.tensor([[float("-inf")] * 4, [0.0, float("-inf"), 1.0, 2.0], [float("nan"), 0.0, 1.0, 2.0],
                            [1e30, -1e30, 0.0, 1e30]], device=DEVICE)
    check_forward(special, 1, kind=kind)
    check_forward(special, 0, kind=kind)


@pytest.mark.parametrize("kind", KINDS)
def test_backward_non_contiguous(kind):
    forward, backward = KINDS[kind]
    shape = pick((6, 20), (512, 1024))
    y = forward(make(shape, torch.float32), 1)
    g = make((shape[1], shape[0]), torch.float32).t()
    native = backward(g, y[:, :], 1, torch.float32)
    with flag_gems.use_gems():
        ours = backward(g, y, 1, torch.float32)
        strided = backward(g[:, ::2], y[:, ::2], 1, torch.float32)
        cols = backward(g, y, 0, torch.float32)
    assert_close(ours, native, torch.float32, reduce_dim=shape[1])
    assert_close(strided, backward(g[:, ::2], y[:, ::2], 1, torch.float32), torch.float32, reduce_dim=shape[1])
    assert_close(cols, backward(g, y, 0, torch.float32), torch.float32, reduce_dim=shape[0])


@pytest.mark.skipif(not ON_GPU, reason="PyTorch's CPU softmax has no half-to-float mode")
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_to_float(dtype, kind):
    x = make((64, 1000), dtype)
    check_forward(x, 1, dtype=torch.float32, kind=kind)
    # Autograd then runs the backward with fp32 gradients and a half input_dtype.
    backward = KINDS[kind][1]
    y = KINDS[kind][0](x, 1, dtype=torch.float32)
    g = make(y.shape, torch.float32)
    with flag_gems.use_gems():
        ours = backward(g, y, 1, dtype)
    assert ours.dtype == dtype
    assert_close(ours, backward(g.double(), y.double(), 1, torch.float64), dtype, reduce_dim=1000)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32, torch.float64])
def test_autograd_matches_native(dtype, kind):
    forward = KINDS[kind][0]
    x = make(pick((6, 50), (512, 2048)), dtype).requires_grad_()
    w = make(x.shape, dtype)
    exact = x.detach().double().requires_grad_()
    for dim in (-1, 0):
        (native,) = torch.autograd.grad((forward(x, dim) * w).sum(), x)
        with flag_gems.use_gems():
            (ours,) = torch.autograd.grad((forward(x, dim) * w).sum(), x)
        (reference,) = torch.autograd.grad((forward(exact, dim) * w.double()).sum(), exact)
        assert ours.dtype == native.dtype
        assert_as_accurate(ours, native, reference, reduced=x.shape[dim])


def test_autograd_runs_our_kernels(tmp_path):
    path = tmp_path / "softmax.log"
    x = make((3, 5), torch.float32).requires_grad_()
    with flag_gems.use_gems(record=True, path=str(path)):
        (F.softmax(x, 1) + F.log_softmax(x, 0)).sum().backward()
    log = path.read_text()
    for name in ("_softmax", "_softmax_backward_data", "_log_softmax", "_log_softmax_backward_data"):
        assert f"aten::{name}\ttriton" in log, name


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck(kind):
    forward = KINDS[kind][0]
    x = torch.randn(3, 7, dtype=torch.float64, device=DEVICE, requires_grad=True)
    with flag_gems.use_gems():
        assert torch.autograd.gradcheck(lambda t: forward(t, 1), (x,))
        assert torch.autograd.gradcheck(lambda t: forward(t, 0), (x,))


@pytest.mark.parametrize("kind", KINDS)
def test_out_forms(kind):
    forward, backward = KINDS[kind]
    aten_forward = getattr(torch.ops.aten, f"_{kind}").out
    x = make((5, 9), torch.float32)
    reference = forward(x.double(), 1)
    out = torch.empty_like(x)
    strided = torch.empty(9, 5, device=DEVICE).t()
    with flag_gems.use_gems():
        aten_forward(x, 1, False, out=out)
        aten_forward(x, 1, False, out=strided)
    assert_close(out, reference, torch.float32)
    assert_close(strided, reference, torch.float32)
    g = make((5, 9), torch.float32)
    y = forward(x, 1)
    expected = backward(g.double(), y.double(), 1, torch.float64)
    grad_out = torch.empty_like(x)
    keyword = "grad_input" if kind == "softmax" else "out"
    with flag_gems.use_gems():
        backward.out(g, y, 1, torch.float32, **{keyword: grad_out})
    assert_close(grad_out, expected, torch.float32, reduce_dim=9)


@pytest.mark.parametrize("kind", KINDS)
def test_unsupported_inputs_go_native(kind):
    forward = KINDS[kind][0]
    assert_same_error(lambda: forward(make((3, 4), torch.float32), 2))
    assert_same_error(lambda: getattr(torch.ops.aten, f"_{kind}")(make((3, 4), torch.int32), 1, False))
    assert_same_error(lambda: forward(make((3, 4), torch.float32), 1, dtype=torch.float64))


def test_planned_layouts_are_not_mixed_up():
    """Each call layout gets its own plan: alternating layouts of one shape (transposed,
    off 16-byte alignment, a sparse view read as a copy, another dtype) each get their own
    right answer, on first and repeated calls, forward and backward."""
    rows, cols = pick((6, 40), (512, 4096))
    flat = make((3 * rows * cols + 1,), torch.float32)
    layouts = [flat[:rows * cols].view(rows, cols), flat[1:rows * cols + 1].view(rows, cols),
               flat[:rows * cols].view(cols, rows).t(), flat[:3 * rows * cols].view(rows, 3 * cols)[:, ::3],
               flat[:rows * cols].view(rows, cols).double()]
    for _ in range(2):
        for x in layouts:
            for dim in (0, 1):
                for kind in KINDS:
                    ours = check_forward(x, dim, kind=kind)
                    grad = make(x.shape, x.dtype).t().contiguous().t()
                    with flag_gems.use_gems():
                        ours_grad = KINDS[kind][1](grad, ours, dim, x.dtype)
                    reference = KINDS[kind][1](grad.double(), KINDS[kind][0](x.double(), dim), dim, torch.float64)
                    assert_close(ours_grad, reference, x.dtype)
