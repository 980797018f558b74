"""Weight norm (_weight_norm_interface), forward and backward, against PyTorch in fp64."""

import pytest
import torch

import flag_gems
from flag_gems.testing import assert_close

from conftest import DEVICE, FLOAT_DTYPES, assert_same_error, make, pick
from moments_cases import close

@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape, dim", [(pick((7,), (4096,)), 0), (pick((5, 9), (4096, 4096)), 0),
                                        (pick((5, 9), (4096, 4096)), 1), (pick((4, 3, 2, 2), (256, 128, 3, 3)), 0),
                                        (pick((4, 3, 5), (64, 128, 512)), 2)], ids=str)
@pytest.mark.parametrize("one_pass", [True, False], ids=["one-pass", "partial-sums"])
def test_weight_norm(monkeypatch, dtype, shape, dim, one_pass):
    if not one_pass:  # rows too long for registers (the dim-0 kernel steps aside)
        from flag_gems import runtime

        vendor_config = runtime.config
        monkeypatch.setattr(runtime, "config", lambda kernel, default: (lambda *a: None)
                            if kernel == "weight_norm_rows" else vendor_config(kernel, default))
    v = make(shape, dtype)
    g_shape = [1] * len(shape)
    g_shape[dim] = shape[dim]
    g = make(g_shape, dtype)
    native = torch.ops.aten._weight_norm_interface(v, g, dim)
    with flag_gems.use_gems():
        ours = torch.ops.aten._weight_norm_interface(v, g, dim)
    reference = torch.ops.aten._weight_norm_interface(v.double(), g.double(), dim)
    for o, n, r in zip(ours, native, reference):
        close(o, n, r)
    # grad_v = g / |v| * (grad_w - v * P / |v|^2) cancels terms of size g / |v|: the error scales with it.
    cancelled = max((g.double().abs() / reference[1].abs()).max().item(), 1.0)
    grad_w = make(shape, dtype)
    args = (grad_w, v, g, native[1], dim)
    native = torch.ops.aten._weight_norm_interface_backward(*args)
    with flag_gems.use_gems():
        ours = torch.ops.aten._weight_norm_interface_backward(*args)
    reference = torch.ops.aten._weight_norm_interface_backward(grad_w.double(), v.double(), g.double(),
                                                               reference[1], dim)
    for o, n, r in zip(ours, native, reference):
        close(o, n, r, reduce_dim=v.numel() // shape[dim] * cancelled)


def test_weight_norm_autograd():
    v = torch.randn(4, 3, dtype=torch.float64, device=DEVICE, requires_grad=True)
    with flag_gems.use_gems():
        for dim in (0, 1):
            g = torch.randn([4, 1] if dim == 0 else [1, 3], dtype=torch.float64, device=DEVICE, requires_grad=True)
            assert torch.autograd.gradcheck(lambda a, c, d=dim: torch._weight_norm(a, c, d), (v, g))
        linear = torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(3, 4, device=DEVICE).double())
        x = torch.randn(2, 3, dtype=torch.float64, device=DEVICE)
        ours = torch.autograd.grad(linear(x).sum(), list(linear.parameters()))
    native = torch.autograd.grad(linear(x).sum(), list(linear.parameters()))
    for o, n in zip(ours, native):
        assert_close(o, n, torch.float64)


def test_weight_norm_strided_rows():
    v = make((9, 5), torch.float32).t()  # dim 0 rows strided: the partial-sums path
    g = make((5, 1), torch.float32)
    grad_w = make((9, 5), torch.float32).t()
    with flag_gems.use_gems():
        w, norms = torch.ops.aten._weight_norm_interface(v, g, 0)
        grads = torch.ops.aten._weight_norm_interface_backward(grad_w, v.contiguous(), g, norms, 0)
    assert_close(w, torch._weight_norm(v.double(), g.double(), 0), torch.float32)
    # contiguous copies: CPU's native kernel misreads a strided grad_w
    reference = torch.ops.aten._weight_norm_interface_backward(grad_w.double().contiguous(), v.double().contiguous(),
                                                               g.double(), norms.double(), 0)
    for ours, exact in zip(grads, reference):
        assert_close(ours, exact, torch.float32, reduce_dim=9)


def test_weight_norm_other_dims():
    v = make((3, 4, 5), torch.float32)
    g = make((1, 4, 1), torch.float32)
    with flag_gems.use_gems():
        ours = torch._weight_norm(v, g, 1)
        last = torch._weight_norm(v, make((1, 1, 5), torch.float32), -1)
    assert_close(ours, torch._weight_norm(v.double(), g.double(), 1), torch.float32)
    assert last.shape == v.shape
    assert_same_error(lambda: torch.ops.aten._weight_norm_interface(v, g, 1))
