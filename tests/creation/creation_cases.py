"""What the creation tests share: a call made natively and through our rows, compared
exactly (or within a tolerance where PyTorch's own rounding is not defined), with the
record log telling which implementation each routed call ran."""

import os
import tempfile

import torch

import flag_gems

from conftest import ON_GPU

_LOG = os.path.join(tempfile.gettempdir(), f"flag_gems_creation_{os.getpid()}.log")


def _outcome(fn):
    try:
        return fn(), None
    except Exception as error:  # noqa: BLE001 - compared with native's
        return None, error


def through_gems(fn):
    """(result, error, [(operator, where it ran)]) of ``fn()`` under ``use_gems``."""
    with flag_gems.use_gems(record=True, path=_LOG):
        result, error = _outcome(fn)
    with open(_LOG) as log:
        ran = [tuple(line.split("\t")[:2]) for line in log]
    os.remove(_LOG)
    return result, error, ran


def check(fn, atol=0.0, ours=True):
    """``fn()`` natively and through our rows: the same dtype, shape, strides and values
    (equal, NaN included, or within ``atol``); with ``ours``, every routed call ran our
    kernels. Returns our result."""
    native = fn()
    result, error, ran = through_gems(fn)
    assert error is None, error
    if ours:
        assert ran and all(where == "triton" for _, where in ran), ran
    assert result.dtype == native.dtype and result.shape == native.shape, (result, native)
    assert result.stride() == native.stride() or result.numel() <= 1, (result.stride(), native.stride())
    torch.testing.assert_close(result, native, rtol=0, atol=atol, equal_nan=True)
    return result


def check_error(fn, native_ran=True):
    """``fn()`` raises through our rows what it raises natively: type and message; the call
    went to the native kernel (a condition sent it there) where ``native_ran``."""
    expected = _outcome(fn)[1]
    assert expected is not None, "native raised nothing"
    _, error, ran = through_gems(fn)
    assert type(error) is type(expected) and str(error) == str(expected), (error, expected)
    if native_ran:
        assert any(where.startswith("native") for _, where in ran), ran


def ulps(dtype, *magnitudes):
    """One unit in the last place of the largest of ``magnitudes`` in ``dtype``."""
    return torch.finfo(dtype).eps * max(abs(m) for m in magnitudes)


def exact_on_gpu(atol):
    """PyTorch's vectorized CPU kernels round some float values once more than their
    formula: a tolerance on the CPU, none on the GPU."""
    return 0.0 if ON_GPU else atol


def assert_rows_reach_backend(module):
    """Every row of ``module`` has a kernel on the vendor's key to override, and none is an
    operator that only PyTorch's CompositeImplicitAutograd decomposition serves."""
    key = flag_gems.runtime.selected_vendor().dispatch_key
    for row in module.ATEN:
        name = f"aten::{row.name}"
        assert torch.library.get_kernel(name, key) is not None, row.name
        assert not torch._C._dispatch_has_kernel_for_dispatch_key(name, "CompositeImplicitAutograd"), row.name
