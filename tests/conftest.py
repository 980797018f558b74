"""Shared test set-up: the same files run on the CPU interpreter (small shapes)
and on a GPU (real shapes)."""

import atexit
import os
import shutil
import tempfile

import pytest
import torch

import flag_gems

DEVICE = flag_gems.device
ON_GPU = DEVICE != "cpu"
CACHE_KEPT_BYTES = 2 << 30

FLOAT_DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
INT_DTYPES = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64]
ALL_DTYPES = FLOAT_DTYPES + INT_DTYPES + [torch.bool]


def pick(cpu, gpu):
    """The CPU interpreter runs every program in Python: keep its shapes small."""
    return gpu if ON_GPU else cpu


def make(shape, dtype, low=-10, high=10):
    """Random values of ``dtype`` on the test device (never all zeros)."""
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, device=DEVICE).bool()
    if not dtype.is_floating_point:
        lo = 0 if dtype == torch.uint8 else low
        return torch.randint(lo, high, shape, device=DEVICE, dtype=dtype)
    return torch.randn(shape, device=DEVICE, dtype=dtype)


def reference_dtype(dtype):
    """Higher precision for the reference computation."""
    return torch.float64 if dtype.is_floating_point else dtype


def error_of(fn, message=False):
    """The exception type ``fn()`` raises (with ``message``: its type and message), or None."""
    try:
        fn()
    except Exception as error:  # noqa: BLE001 - tests compare exception types
        return (type(error), str(error)) if message else type(error)
    return None


def assert_same_error(fn, message=False):
    """``fn()`` raises the same exception type (with ``message``: and message), or none,
    through flag_gems as natively."""
    native = error_of(fn, message)
    with flag_gems.use_gems():
        ours = error_of(fn, message)
    assert ours == native, f"native raised {native}, flag_gems {ours}"


_LOG_DIR = tempfile.mkdtemp(prefix="flag_gems_tests_")
_LOG = os.path.join(_LOG_DIR, "record.log")
atexit.register(shutil.rmtree, _LOG_DIR, ignore_errors=True)


def routed(fn):
    """``fn()`` through the dispatcher, and the (operator, where it ran) of each routed call."""
    if os.path.exists(_LOG):
        os.remove(_LOG)
    with flag_gems.use_gems(record=True, path=_LOG):
        result = fn()
    with open(_LOG) as log:
        return result, [tuple(line.split("\t")[:2]) for line in log]


@pytest.fixture(autouse=True)
def _native_after_each_test():
    torch.manual_seed(0)
    yield
    flag_gems.disable()
    if DEVICE == "cuda" and torch.cuda.memory_reserved() > CACHE_KEPT_BYTES:
        # many test processes share one GPU: give back what a large case left cached
        torch.cuda.empty_cache()
