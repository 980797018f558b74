"""What the indexing tests share: running a call natively and through our rows, and comparing."""

import torch

from flag_gems.testing import assert_equal

from conftest import ALL_DTYPES, DEVICE, assert_same_error, make, routed

OURS = ("triton", "c++")  # record-log kinds of our kernels

# Dtypes of values: every dtype the kernels take.
VALUE_DTYPES = ALL_DTYPES


def _compare(ours, native, exact):
    if isinstance(native, (tuple, list)):
        assert len(ours) == len(native)
        for mine, theirs in zip(ours, native):
            _compare(mine, theirs, exact)
        return
    assert ours.dtype == native.dtype and ours.shape == native.shape, (ours, native)
    if exact or not native.dtype.is_floating_point:
        assert_equal(ours, native, equal_nan=True)
    else:
        tolerance = 1e-2 if native.dtype in (torch.float16, torch.bfloat16) else 1e-5
        torch.testing.assert_close(ours, native, rtol=tolerance, atol=tolerance, equal_nan=True)


def check(fn, exact=True, reference=None, ours=True):
    """``fn()`` natively (or ``reference()``) and through our rows: equal results (within a
    tolerance unless ``exact``), and (``ours``) at least one call ran our kernels."""
    native = fn() if reference is None else reference()
    result, where_ran = routed(fn)
    _compare(result, native, exact)
    if ours:
        assert any(kind in OURS for _, kind in where_ran), where_ran
    return result


def check_strides(fn):
    """As ``check``, and the result is laid out as native's."""
    result = check(fn)
    native = fn()
    assert result.stride() == native.stride() or result.numel() <= 1, (result.stride(), native.stride())


def same_error(fn):
    """Native raises: ours raises the same exception type with the same message."""
    assert_same_error(fn, message=True)


def values(shape, dtype):
    """Random values of ``dtype`` on the test device, small enough that sums stay exact in
    integers (and narrow enough not to overflow int8)."""
    if dtype.is_floating_point or dtype == torch.bool:
        return make(shape, dtype)
    return make(shape, dtype, low=-3, high=4) if dtype != torch.uint8 else make(shape, dtype, high=4)


def widened(tensor):
    """A tensor in the dtype a reference computes in: fp64 for floats, int64 for integers."""
    if tensor.dtype.is_floating_point:
        return tensor.double()
    return tensor if tensor.dtype == torch.bool else tensor.long()


def index(values_list, dtype=torch.int64):
    return torch.tensor(values_list, dtype=dtype, device=DEVICE)
