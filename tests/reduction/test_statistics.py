"""Statistics (var/std and their _mean forms, vector norms, logsumexp) against PyTorch
computed in higher precision: the shared checker over their op table, then orders,
corrections and stability."""

import math

import pytest
import torch

import flag_gems

from conftest import DEVICE, FLOAT_DTYPES, make, pick
from reduction_checks import INF, check_op, op_table_tests

# PyTorch's own warning for var/std with no degrees of freedom (those calls go native).
pytestmark = pytest.mark.filterwarnings("ignore:.*degrees of freedom is <= 0")

# name -> (call(x, dim, keepdim), dtypes torch supports for it)
OPS = {
    "var": (lambda x, d, k: torch.var(x, d, keepdim=k), FLOAT_DTYPES),
    "std": (lambda x, d, k: torch.std(x, d, correction=0, keepdim=k), FLOAT_DTYPES),
    "var_mean": (lambda x, d, k: torch.var_mean(x, d, correction=0.5, keepdim=k), FLOAT_DTYPES),
    "std_mean": (lambda x, d, k: torch.std_mean(x, d, keepdim=k), FLOAT_DTYPES),
    "norm2": (lambda x, d, k: torch.linalg.vector_norm(x, 2, d, keepdim=k), FLOAT_DTYPES),
    "norm_p": (lambda x, d, k: torch.linalg.vector_norm(x, 3.5, d, keepdim=k), FLOAT_DTYPES),
    "norm_inf": (lambda x, d, k: torch.linalg.vector_norm(x, math.inf, d, keepdim=k), FLOAT_DTYPES),
    "torch_norm": (lambda x, d, k: torch.norm(x, 1, d, keepdim=k) if d is not None else torch.norm(x), FLOAT_DTYPES),
    "logsumexp": (lambda x, d, k: torch.logsumexp(x, d if d is not None else list(range(x.dim())), keepdim=k),
                  FLOAT_DTYPES),
}

test_op_shapes_and_dims, test_op_dtypes, test_op_strided_inputs, test_op_special_values = op_table_tests(OPS)


@pytest.mark.parametrize("ord", [0, 1, 2, 3, 0.5, -1, -2.5, math.inf, -math.inf])
def test_vector_norm_orders(ord):
    x = make(pick((5, 33), (512, 4096)), torch.float32)
    x[0, 3] = 0.0
    check_op(torch.linalg.vector_norm, x, ord, 1)
    check_op(torch.linalg.vector_norm, x, ord, [0], True)
    check_op(torch.linalg.vector_norm, x, ord)
    check_op(torch.linalg.vector_norm, torch.empty(3, 0, device=DEVICE), ord, 1)  # empty: torch decides


def test_fp64_orders_and_corrections_keep_fp64():
    # Triton takes a float argument as fp32: an fp64 order or correction must not lose bits.
    x = make(pick((5, 33), (512, 4096)), torch.float64)
    calls = [lambda t: torch.linalg.vector_norm(t, 6, 1), lambda t: torch.linalg.vector_norm(t, 3.5),
             lambda t: torch.linalg.vector_norm(t, 0.1, 0), lambda t: torch.var(t, 1, correction=0.1),
             lambda t: torch.std_mean(t, 0, correction=0.5)[0], lambda t: torch.var(t, correction=3)]
    for call in calls:
        with flag_gems.use_gems():
            ours = call(x)
        torch.testing.assert_close(ours, call(x), rtol=1e-13, atol=0)


@pytest.mark.parametrize("correction", [None, 0, 1, 2.5, 40])
def test_variance_corrections(correction):
    x = make(pick((4, 37), (512, 4096)), torch.float32)
    for fn in (torch.var, torch.std, torch.var_mean, torch.std_mean):
        check_op(fn, x, 1, correction=correction)
        check_op(fn, x, None, correction=correction, keepdim=True)


def test_variance_stable_on_large_offsets():
    n = pick(20011, 1 << 20)  # one long row, split across programs
    x = torch.randn(2, n, device=DEVICE, dtype=torch.float64).add_(1000.0).float()
    ours = check_op(torch.var, x, 1)
    assert torch.allclose(ours[0].double(), x.double().var(1), rtol=1e-4)
    whole = torch.randn(pick(1 << 16, 1 << 24), device=DEVICE).add_(100.0)
    ours = check_op(torch.var_mean, whole)
    assert abs(ours[0].item() - whole.double().var().item()) < 1e-3
    check_op(torch.var, make(pick((3001, 3), (1 << 20, 8)), torch.float32).add_(500.0), 0)


def test_logsumexp_stable():
    x = make(pick((3, 20011), (8, 1 << 20)), torch.float32) * 30 + 80  # exp would overflow unshifted
    check_op(torch.logsumexp, x, 1)
    check_op(torch.logsumexp, x.t(), 0)
    check_op(torch.logsumexp, torch.full((3, 5), -INF, device=DEVICE), 1)
    check_op(torch.logsumexp, torch.empty(3, 0, device=DEVICE), 1)

def test_var_one_element_goes_native_and_warns():
    x = make((3, 1), torch.float32)
    with flag_gems.use_gems(), pytest.warns(UserWarning):
        result = torch.var(x, 1)
    assert torch.isnan(result).all()
