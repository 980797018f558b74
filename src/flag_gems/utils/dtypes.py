"""Dtype sets, PyTorch's type promotion, and the dtypes kernels compute in."""

import math

import torch

FLOAT_DTYPES = frozenset((torch.float16, torch.bfloat16, torch.float32, torch.float64))
HALF_DTYPES = frozenset((torch.float16, torch.bfloat16))

# Half types compute in fp32 (as PyTorch's opmath does); small ints in int32,
# whose wrap-around on the final cast matches PyTorch's overflow behaviour.
COMPUTE_DTYPE = {
    torch.float16: torch.float32, torch.bfloat16: torch.float32, torch.float32: torch.float32,
    torch.float64: torch.float64, torch.int8: torch.int32, torch.uint8: torch.int32,
    torch.int16: torch.int32, torch.int32: torch.int32, torch.int64: torch.int64, torch.bool: torch.int32,
}


def floating(dtype):
    return dtype.is_floating_point


def not_bool(dtype):
    return dtype != torch.bool


def itemsize(name):
    """Bytes per element of the dtype named ``name`` ("bfloat16"): tuning keys carry dtype names."""
    return getattr(torch, name).itemsize


def float_accumulator(dtype):
    """What a float sum, mean or moment of ``dtype`` accumulates in: fp64 for fp64, else fp32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def accumulator(dtype):
    """What a sum or product of ``dtype`` accumulates in: ``float_accumulator`` for floats,
    int64 for integers and bool (PyTorch's rule for sum and prod)."""
    return float_accumulator(dtype) if dtype.is_floating_point else torch.int64


# Kinds of values, ordered as PyTorch promotes them: bool < int < float < complex.
NUMBER_CATEGORY = {bool: 0, int: 1, float: 2, complex: 3}
WIDEST_OF_CATEGORY = (torch.bool, torch.int64, torch.float64, torch.complex128)


def category(dtype):
    """The kind of ``dtype``: 0 bool, 1 integral, 2 floating, 3 complex."""
    if dtype.is_complex:
        return 3
    if dtype.is_floating_point:
        return 2
    return 0 if dtype == torch.bool else 1


_NUMBER_DTYPE = {bool: lambda: torch.bool, int: lambda: torch.int64, float: torch.get_default_dtype}


def number_dtype(value):
    """The dtype PyTorch gives a real Python number (``torch.full``'s dtype for its fill
    value, a number's in promotion); None for anything else."""
    make = _NUMBER_DTYPE.get(type(value))
    return None if make is None else make()


def promoted_dtype(operands):
    """PyTorch's promoted dtype of tensors, 0-d tensors and Python numbers."""
    tensors = [op for op in operands if isinstance(op, torch.Tensor)]
    first = tensors[0].dtype
    if all(t.dtype == first for t in tensors) and all(
        NUMBER_CATEGORY[type(op)] <= category(first) for op in operands if not isinstance(op, torch.Tensor)
    ):
        return first  # numbers of no higher kind never change a tensor's dtype
    if len(operands) == 2:
        return torch.result_type(*operands) if isinstance(operands[0], torch.Tensor) else \
            torch.result_type(operands[1], operands[0])
    # PyTorch's N-ary rule (c10's ResultTypeState), written out: torch._prims_common's
    # version imports sympy on its first call, which costs a first call ~2.5 s.
    dimensioned = _promote_all(t.dtype for t in tensors if t.dim() > 0)
    zero_dim = _promote_all(t.dtype for t in tensors if t.dim() == 0)
    numbers = _promote_all(number_dtype(op) for op in operands if not isinstance(op, torch.Tensor))
    return _by_category(dimensioned, _by_category(zero_dim, numbers))


def _promote_all(dtypes):
    result = None
    for dtype in dtypes:
        result = dtype if result is None else torch.promote_types(result, dtype)
    return result


def _by_category(higher, lower):
    """The dtype of a class of operands (``higher``) beside a lower-priority one, which
    only counts when it is of a higher kind (as c10's combine_categories)."""
    if higher is None:
        return lower
    if lower is None or higher.is_floating_point:
        return higher
    if higher == torch.bool or lower.is_floating_point:
        return torch.promote_types(higher, lower)
    return higher


def number_as_tensor(value, dtype):
    """A 0-d CPU tensor of ``dtype`` holding the Python number ``value``, made through the
    widest type of its kind, then cast: an out-of-range number wraps as aten's cast does."""
    return torch.tensor(value, dtype=WIDEST_OF_CATEGORY[NUMBER_CATEGORY[type(value)]]).to(dtype)


INT_RANGE = {
    dtype: (torch.iinfo(dtype).min, torch.iinfo(dtype).max)
    for dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
}


def number_as(value, dtype):
    """A Python number as ``dtype`` holds it after PyTorch's (C++ static_cast) conversion."""
    if dtype == torch.bool:
        return bool(value)
    if not dtype.is_floating_point:
        low, high = INT_RANGE[dtype]
        return (int(value) - low) % (high - low + 1) + low  # integers wrap around
    if dtype == torch.float64:
        return float(value)
    source = torch.float64 if type(value) is float else torch.int64
    return torch.tensor(value, dtype=source).to(dtype).item()


_INT64_RANGE = (-(2**63), 2**63 - 1)
_LIMITS = {**INT_RANGE, **{dtype: (-torch.finfo(dtype).max, torch.finfo(dtype).max) for dtype in FLOAT_DTYPES}}


def scalar_overflows(value, dtype):
    """Whether PyTorch refuses to convert the Python number ``value`` to ``dtype`` (c10's
    checked conversion, as ``fill_``, ``full`` and the range factories apply it): out of
    range, NaN or infinity for an integer dtype, or an integer beyond int64."""
    if type(value) is int and not _INT64_RANGE[0] <= value <= _INT64_RANGE[1]:
        return True
    if dtype == torch.bool or type(value) is bool:
        return False
    low, high = _LIMITS[dtype]
    if dtype.is_floating_point:
        return not (math.isinf(value) or math.isnan(value) or low <= value <= high)
    if type(value) is float:
        return math.isnan(value) or not low <= value <= high
    if low == 0:  # unsigned: a negative integer wraps if its magnitude fits
        return value > high or -value > high
    return not low <= value <= high
