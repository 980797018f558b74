"""Comparison helpers with the per-dtype tolerances FlagGems users know."""

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


def _to_result(res, ref, dtype):
    assert res.dtype == dtype, f"result dtype {res.dtype} != expected {dtype}"
    return ref.to(device=res.device, dtype=dtype)


def assert_close(res, ref, dtype, equal_nan=False, reduce_dim=1, atol=1e-4):
    """``res`` matches ``ref`` (any precision, any device) within ``dtype``'s
    resolution; ``atol`` scales with ``reduce_dim``, the reduced length."""
    ref = _to_result(res, ref, dtype)
    rtol = RESOLUTION[dtype]
    if rtol == 0:
        torch.testing.assert_close(res, ref, rtol=0, atol=0, equal_nan=equal_nan)
    else:
        torch.testing.assert_close(res, ref, rtol=rtol, atol=atol * reduce_dim, equal_nan=equal_nan)


def assert_equal(res, ref, equal_nan=False):
    """Bitwise-equal values (same dtype after casting ``ref``)."""
    ref = _to_result(res, ref, res.dtype)
    torch.testing.assert_close(res, ref, rtol=0, atol=0, equal_nan=equal_nan)
