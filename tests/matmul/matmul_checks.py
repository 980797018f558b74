"""What the matmul tests share: our kernel forced on, the comparison with PyTorch in fp64,
and which implementation a call ran."""


import pytest
import torch

import flag_gems
from flag_gems.testing import assert_close

from conftest import ON_GPU, routed


@pytest.fixture(autouse=True)
def our_kernel(monkeypatch):
    """Untuned buckets run PyTorch's kernel on the GPU (native is a candidate there): these
    tests run ours, with its heuristic tiles (GEMS_TUNE_NATIVE=0 takes native out)."""
    monkeypatch.setenv("GEMS_TUNE_NATIVE", "0")
    flag_gems.tuning.forget_choices()
    yield
    monkeypatch.undo()
    flag_gems.tuning.forget_choices()


def reference(bias, a, b, beta=1, alpha=1, product=torch.matmul):
    """``beta * bias + alpha * product(a, b)`` in fp64 by BLAS's rules: alpha == 0 forms no
    product, beta == 0 (or a None bias) reads no bias."""
    result = product(a.double(), b.double())
    result = alpha * result if alpha != 0 else torch.zeros_like(result)
    return result + beta * bias.double() if beta != 0 and bias is not None else result


def close(ours, reference, k, equal_nan=False):
    """``ours`` against the fp64 ``reference`` of sums of ``k`` products (in its own dtype)."""
    dtype = ours.dtype
    if dtype in (torch.float16, torch.bfloat16):
        # fp32 accumulation, scaled to the half type's rounding of inputs and output.
        bf16 = dtype == torch.bfloat16
        torch.testing.assert_close(ours.double(), reference, rtol=2e-2 if bf16 else 2e-3,
                                   atol=(0.05 if bf16 else 5e-3) * max(k, 1)**0.5, equal_nan=equal_nan)
    elif dtype == torch.float32 and torch.backends.cuda.matmul.allow_tf32 and ON_GPU:
        torch.testing.assert_close(ours.double(), reference, rtol=2e-3, atol=2e-3 * max(k, 1)**0.5,
                                   equal_nan=equal_nan)
    else:
        assert_close(ours, reference, dtype, reduce_dim=max(k, 1), equal_nan=equal_nan)


def ran(name, call):
    """(call's result, the implementation each ``aten::<name>`` call logged: triton or native (...))."""
    result, calls = routed(call)
    return result, [where for op, where in calls if op == f"aten::{name}"]
