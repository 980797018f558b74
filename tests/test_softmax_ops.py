"""_softmax and _softmax_backward_data against PyTorch in fp64."""

import pytest
import torch
import torch.nn.functional as F

import flag_gems
from flag_gems.testing import assert_close

from conftest import DEVICE, FLOAT_DTYPES, ON_GPU, make, pick

SHAPES_AND_DIMS = [
    ((), 0), ((0, 5), 1), ((5, 0), 1), ((7,), 0),
    (pick((9, 37), (4096, 4096)), 1),
    (pick((9, 37), (4096, 4096)), 0),  # non-last dim: tiles span N x K
    (pick((3, 5, 7), (32, 128, 256)), 1),
    (pick((2, 3, 4, 5), (8, 16, 32, 64)), -1),
    (pick((3, 20000), (8, 100000)), 1),  # longer than one tile: two passes
    (pick((2, 20000, 3), (4, 40000, 8)), 1),
    (pick((1, 128), (1024, 128)), 1),  # several rows per program
]


def check_forward(x, dim, dtype=None):
    native = torch.softmax(x, dim, dtype=dtype)
    with flag_gems.use_gems():
        ours = torch.softmax(x, dim, dtype=dtype)
    assert ours.dtype == native.dtype and ours.shape == native.shape
    reference = torch.softmax(x.double(), dim)
    assert_close(ours, reference, native.dtype, equal_nan=True)
    return ours


@pytest.mark.parametrize("shape, dim", SHAPES_AND_DIMS, ids=str)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_softmax_forward(shape, dim, dtype):
    check_forward(make(shape, dtype) * 3, dim)


@pytest.mark.parametrize("shape, dim", SHAPES_AND_DIMS, ids=str)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_softmax_backward(shape, dim, dtype):
    x = make(shape, dtype)
    y = torch.softmax(x.double(), dim).to(dtype)
    g = make(shape, dtype)
    native = torch.ops.aten._softmax_backward_data(g, y, dim, dtype)
    with flag_gems.use_gems():
        ours = torch.ops.aten._softmax_backward_data(g, y, dim, dtype)
    assert ours.dtype == native.dtype and ours.shape == native.shape
    reference = torch.ops.aten._softmax_backward_data(g.double(), y.double(), dim, torch.float64)
    reduced = shape[dim] if shape else 1
    assert_close(ours, reference, dtype, reduce_dim=reduced)


def test_softmax_non_contiguous_and_special_values():
    x = make(pick((12, 30), (1024, 2048)), torch.float32)
    check_forward(x.t(), 1)
    check_forward(x[:, ::2], 1)
    special = torch.tensor([[float("-inf")] * 4, [0.0, float("-inf"), 1.0, 2.0], [float("nan"), 0.0, 1.0, 2.0],
                            [1e30, -1e30, 0.0, 1e30]], device=DEVICE)
    check_forward(special, 1)
    check_forward(special, 0)


@pytest.mark.skipif(not ON_GPU, reason="PyTorch's CPU softmax has no half-to-float mode")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_softmax_half_to_float(dtype):
    x = make((64, 1000), dtype)
    check_forward(x, 1, dtype=torch.float32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softmax_autograd_matches_native(dtype):
    x = make(pick((6, 50), (512, 2048)), dtype).requires_grad_()
    w = make(x.shape, dtype)
    (native,) = torch.autograd.grad((F.softmax(x, -1) * w).sum(), x)
    with flag_gems.use_gems():
        (ours,) = torch.autograd.grad((F.softmax(x, -1) * w).sum(), x)
        (ours0,) = torch.autograd.grad((F.softmax(x, 0) * w).sum(), x)
    (native0,) = torch.autograd.grad((F.softmax(x, 0) * w).sum(), x)
    assert_close(ours, native, dtype, reduce_dim=x.shape[1])
    assert_close(ours0, native0, dtype, reduce_dim=x.shape[0])


def test_softmax_gradcheck():
    x = torch.randn(3, 7, dtype=torch.float64, device=DEVICE, requires_grad=True)
    with flag_gems.use_gems():
        assert torch.autograd.gradcheck(lambda t: torch.softmax(t, 1), (x,))
        assert torch.autograd.gradcheck(lambda t: torch.softmax(t, 0), (x,))


def test_softmax_out_forms():
    x = make((5, 9), torch.float32)
    out = torch.empty_like(x)
    with flag_gems.use_gems():
        torch.ops.aten._softmax.out(x, 1, False, out=out)
    assert_close(out, torch.softmax(x.double(), 1), torch.float32)
    strided = torch.empty(9, 5, device=DEVICE).t()
    with flag_gems.use_gems():
        torch.ops.aten._softmax.out(x, 1, False, out=strided)
    assert_close(strided, torch.softmax(x.double(), 1), torch.float32)


def test_softmax_unsupported_inputs_go_native():
    with flag_gems.use_gems():
        with pytest.raises(IndexError):
            torch.softmax(make((3, 4), torch.float32), 2)
        # Integer input: torch's own error.
        with pytest.raises(RuntimeError):
            torch.ops.aten._softmax(make((3, 4), torch.int32), 1, False)
