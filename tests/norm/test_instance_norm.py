"""instance_norm (FlagGems' explicit call, and torch's through our batch norm) against
PyTorch in fp64."""

import pytest
import torch
import torch.nn.functional as F

import flag_gems
from flag_gems.testing import assert_close

from conftest import DEVICE, FLOAT_DTYPES, make
from moments_cases import SHAPES, params

@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", SHAPES[1:], ids=str)
def test_instance_norm(dtype, shape):
    C = shape[1]
    x = make(shape, dtype)
    w, b = params(C, dtype)
    rm, rv = torch.zeros(C, device=DEVICE), torch.ones(C, device=DEVICE)
    rm64, rv64 = rm.double(), rv.double()
    reference = F.instance_norm(x.double(), rm64, rv64, w.double(), b.double(), True, 0.1, 1e-5)
    ours = flag_gems.instance_norm(x, w, b, rm, rv, True, 0.1, 1e-5)
    assert_close(ours, reference, dtype)
    assert_close(rm, rm64, torch.float32)
    assert_close(rv, rv64, torch.float32, atol=1e-3)
    eval_reference = F.instance_norm(x.double(), rm64, rv64, w.double(), b.double(), False, 0.1, 1e-5)
    assert_close(flag_gems.ops.instance_norm(x, w, b, rm, rv, False), eval_reference, dtype)
    with flag_gems.use_gems():  # torch's composite instance_norm runs our batch norm
        ours = F.instance_norm(x, None, None, w, b)
    assert_close(ours, F.instance_norm(x.double(), None, None, w.double(), b.double()), dtype)


def test_instance_norm_autograd(tmp_path):
    x = torch.randn(2, 3, 4, dtype=torch.float64, device=DEVICE, requires_grad=True)
    w = torch.randn(3, dtype=torch.float64, device=DEVICE, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, device=DEVICE, requires_grad=True)
    rm, rv = torch.zeros(3, dtype=torch.float64, device=DEVICE), torch.ones(3, dtype=torch.float64, device=DEVICE)
    assert torch.autograd.gradcheck(lambda *t: flag_gems.instance_norm(t[0], t[1], t[2]), (x, w, b))
    assert torch.autograd.gradcheck(lambda *t: flag_gems.instance_norm(t[0], t[1], t[2], rm, rv, False), (x, w, b))
    log = tmp_path / "record.log"
    # With cuDNN on, torch's composite batch_norm calls cudnn_batch_norm instead of native_batch_norm.
    with torch.backends.cudnn.flags(enabled=False), flag_gems.use_gems(record=True, path=str(log)):
        assert torch.autograd.gradcheck(lambda *t: F.instance_norm(t[0], weight=t[1], bias=t[2]), (x, w, b))
    ran = log.read_text()
    assert "native_batch_norm\ttriton" in ran and "native_batch_norm_backward\ttriton" in ran
    xb = make((2, 4, 9), torch.bfloat16).requires_grad_()
    dy = make(xb.shape, torch.bfloat16)
    (ours,) = torch.autograd.grad(flag_gems.instance_norm(xb), xb, dy)
    (reference,) = torch.autograd.grad(F.instance_norm(xb.double()), xb, dy.double())
    assert_close(ours, reference, torch.bfloat16)


def test_instance_norm_errors_go_to_torch():
    x = make((2, 3, 4), torch.float32)
    with pytest.raises(Exception):
        flag_gems.instance_norm(x, use_input_stats=False)  # no running stats to use
    with pytest.raises(ValueError):
        flag_gems.instance_norm(make((2, 3, 1), torch.float32))  # one value per instance
