"""Comparison helpers with the per-dtype tolerances FlagGems users know."""

import cmath
import numbers

import torch

# Relative tolerance per result dtype: about one unit in the last place.
RESOLUTION = {
    torch.bool: 0,
    torch.uint8: 0,
    torch.int8: 0,
    torch.int16: 0,
    torch.int32: 0,
    torch.int64: 0,
    torch.float16: 1e-3,
    torch.bfloat16: 0.016,
    torch.float32: 1.3e-6,
    torch.float64: 1e-7,
    torch.complex64: 1.3e-6,
    torch.complex128: 1e-7,
}


def _is_number(value):
    return isinstance(value, numbers.Number) and not isinstance(value, torch.Tensor)


def _to_result(res, ref, dtype):
    assert res.dtype == dtype, f"result dtype {res.dtype} != expected {dtype}"
    return ref.to(device=res.device, dtype=dtype)


def assert_close(res, ref, dtype=None, equal_nan=False, reduce_dim=1, atol=1e-4):
    """``res`` matches ``ref`` (any precision, any device) within ``dtype``'s
    resolution; ``atol`` scales with ``reduce_dim``, the reduced length. ``res`` must
    have ``dtype``; None: ``ref``'s dtype. A Python number is a tensor: ``res`` one of
    torch's dtype for it, ``ref`` one of ``res``'s shape (and dtype, where None)."""
    res = torch.as_tensor(res) if _is_number(res) else res
    if dtype is None:
        dtype = res.dtype if _is_number(ref) else ref.dtype
    if _is_number(ref):
        ref = torch.as_tensor(ref, dtype=dtype, device=res.device).expand(res.shape)
    ref = _to_result(res, ref, dtype)
    rtol = RESOLUTION[dtype]
    if rtol == 0:
        torch.testing.assert_close(res, ref, rtol=0, atol=0, equal_nan=equal_nan)
    else:
        torch.testing.assert_close(res, ref, rtol=rtol, atol=atol * reduce_dim, equal_nan=equal_nan)


def _equal_numbers(res, ref, equal_nan):
    same = res == ref
    if not same and equal_nan:
        same = cmath.isnan(res) and cmath.isnan(ref)
    assert same, f"{res!r} != {ref!r}"


def assert_equal(res, ref, equal_nan=False):
    """Bitwise-equal values (same dtype after casting ``ref``). Python bools and numbers
    compare as ``==`` does: two numbers as Python's ``==``; a number and a tensor in their
    promoted dtype, the number broadcast to the tensor's shape."""
    if _is_number(res) and _is_number(ref):
        _equal_numbers(res, ref, equal_nan)
        return
    if _is_number(res) or _is_number(ref):
        tensor = ref if _is_number(res) else res
        dtype = torch.result_type(res, ref)
        res, ref = (torch.as_tensor(v, dtype=dtype, device=tensor.device).expand(tensor.shape) for v in (res, ref))
    ref = _to_result(res, ref, res.dtype)
    torch.testing.assert_close(res, ref, rtol=0, atol=0, equal_nan=equal_nan)
