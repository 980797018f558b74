"""Ranges: arange, linspace and logspace, every overload (numbers or 0-d tensors as
endpoints) with its ``out=`` form.

One kernel writes all three, each element from its index alone, in the arithmetic
PyTorch's own kernel uses on the result's device type, so results agree to the bit:

- arange: ``start + step * i`` in the accumulate type (c10's acc_type: on the CPU double
  for float32, on a GPU float; float for the half types; int64 for integers).
- linspace: the symmetric formula. With ``step = (end - start) / (steps - 1)``, the
  first ``steps // 2`` elements count up from the start (``start + step * i``) and the
  rest down from the end (``end - step * (steps - 1 - i)``), so both endpoints come out
  exact. Floating results compute in their own type (c10's half arithmetic, which rounds
  every operation to the half type, included); integers in double on the CPU and in
  float on a GPU.
- logspace: ``base ** v``, v spaced as above. PyTorch's CPU kernel takes the step and v
  in double and ``pow`` in double; its GPU kernel computes like linspace and takes
  ``pow`` in the result's type (float for integers).

Endpoints reach the kernel exactly: an integer as an integer, a float as the bits of its
double, a 0-d tensor on the result's device by pointer (never read on the host). One
step is ``fill_`` of a number (``start``, or ``base ** start``), as in PyTorch. The
length of arange is PyTorch's (compute_arange_size: for an int64 result in int64 from
the bounds truncated to integers, else ceil((end - start) / step) in double); a range PyTorch refuses
(step 0, a step against the direction, infinite bounds) goes to native, which raises.

PyTorch's CPU arange writes each vector of lanes as ``base + k * step`` from a rounded
``base``: where the step is inexact its float values can differ from the formula by one
unit in the last place (our values are the formula's, as PyTorch's GPU kernel writes them).
"""

import math
import struct

import torch
import triton
import triton.language as tl

from ...codegen.launch import Launcher
from ...codegen.pointwise import TL_DTYPE
from ...codegen.tl_math import device_math, ieee_div
from ...dispatch import aten_rows
from ...utils.dtypes import COMPUTE_DTYPE, HALF_DTYPES, scalar_overflows
from ...utils.layout import INT32_LIMIT, cdiv, merge_dims, overlaps_itself
from ..movement.copy import copy_, fill_
from .common import options_unsupported

__all__ = ["arange", "linspace", "logspace"]

_pow = device_math("pow")  # under the interpreter torch.pow: numpy's differs from libm by an ulp

# How a kernel argument carries a number (an endpoint, arange's step, logspace's base).
_INTEGER, _DOUBLE_BITS, _POINTER = 0, 1, 2
_BLOCK, _WARPS = 1024, 4


@triton.jit
def _number(x, KIND: tl.constexpr):
    """The number argument ``x`` carries, by its KIND (see _argument)."""
    if KIND == 0:
        return x.to(tl.int64)
    elif KIND == 1:
        return x.to(tl.int64).to(tl.float64, bitcast=True)
    else:
        return tl.load(x)


@triton.jit
def _convert(x, dtype: tl.constexpr):
    """``x`` converted as C++ converts a number: to a half type through float."""
    if dtype == tl.float16 or dtype == tl.bfloat16:
        return x.to(tl.float32).to(dtype)
    else:
        return x.to(dtype)


@triton.jit
def _rounded(x, T: tl.constexpr):
    """``x`` (float) rounded to the half type ``T``, as c10's half arithmetic rounds each result."""
    return x.to(T).to(tl.float32)


# Helpers are called only where their work is needed: the interpreter pays for every call.
@triton.jit(do_not_specialize=["n", "halfway", "first", "second", "base"])
def _sequence_kernel(out, stride, n, halfway, first, second, base, BLOCK: tl.constexpr,
                     FIRST: tl.constexpr, SECOND: tl.constexpr, ARANGE: tl.constexpr, STEP: tl.constexpr,
                     DIFF: tl.constexpr, ROUND_DIFF: tl.constexpr, ROUND: tl.constexpr, FUSED: tl.constexpr,
                     LOG: tl.constexpr, BASE_IN_T: tl.constexpr, INDEX64: tl.constexpr):
    """``out[i * stride]`` for i < n: arange from (first, step ``second``), or linspace
    (logspace with LOG) from endpoints (first, second), counted down from ``second`` from
    ``halfway`` on. STEP is the type of the step and values, DIFF that of ``end - start``;
    ROUND rounds every step of the arithmetic to T (c10's half types), ROUND_DIFF the
    difference alone; FUSED computes ``a + b * c`` as one fma (as C++ compilers do)."""
    T = out.dtype.element_ty
    pid = tl.program_id(0)
    if INDEX64:
        pid = pid.to(tl.int64)
    index = pid * BLOCK + tl.arange(0, BLOCK)
    mask = index < n
    count = index.to(STEP)
    if ARANGE:
        start = _number(first, FIRST).to(STEP)
        step = _number(second, SECOND).to(STEP)
        if FUSED:
            value = tl.fma(step, count, start)
        else:
            value = start + step * count
    else:
        start = _convert(_number(first, FIRST), T)
        end = _convert(_number(second, SECOND), T)
        difference = end.to(DIFF) - start.to(DIFF)
        start = start.to(STEP)
        end = end.to(STEP)
        if ROUND_DIFF:
            difference = _rounded(difference, T)
        intervals = (n - 1).to(STEP)
        remaining = (n - 1 - index).to(STEP)
        if ROUND:
            step = _rounded(ieee_div(difference.to(STEP), _rounded(intervals, T)), T)
            count = _rounded(count, T)
            remaining = _rounded(remaining, T)
            up = _rounded(start + _rounded(step * count, T), T)
            down = _rounded(end - _rounded(step * remaining, T), T)
        else:
            step = ieee_div(difference.to(STEP), intervals)
            if FUSED:
                up = tl.fma(step, count, start)
                down = tl.fma(-step, remaining, end)
            else:
                up = start + step * count
                down = end - step * remaining
        value = tl.where(index < halfway, up, down)
        if LOG:
            power_base = _number(base, 1)  # a double's bits
            if BASE_IN_T:
                power_base = _convert(power_base, T)
            value = _pow(tl.zeros(value.shape, STEP) + power_base.to(STEP), value)
    tl.store(out + index * stride, _convert(value, T), mask=mask)


_SEQUENCE = Launcher(_sequence_kernel)


def _argument(value):
    """(kernel argument, its kind) for a number or a 0-d tensor on the result's device."""
    if isinstance(value, torch.Tensor):
        return value, _POINTER
    if isinstance(value, float):
        return _double_bits(value), _DOUBLE_BITS
    return int(value), _INTEGER


def _double_bits(value):
    return struct.unpack("<q", struct.pack("<d", value))[0]


def _launch(out, n, halfway, first, second, base, **flags):
    """Element i of the sequence into ``out``'s i-th element in row-major order."""
    if n == 0:
        return out
    merged = merge_dims(out.shape, out.stride())
    target = out if merged is not None else torch.empty(out.shape, dtype=out.dtype, device=out.device)
    stride = merged[1] if merged is not None else 1
    (first, first_kind), (second, second_kind) = _argument(first), _argument(second)
    _SEQUENCE((cdiv(n, _BLOCK),), target, stride, n, halfway, first, second, _double_bits(float(base)), BLOCK=_BLOCK,
              FIRST=first_kind, SECOND=second_kind, INDEX64=n * max(abs(stride), 1) >= INT32_LIMIT,
              num_warps=_WARPS, **flags)
    return out if target is out else copy_(out, target)


def _result_device(device, out):
    """Where the result lives: an aten call with no device makes it on the CPU."""
    return out.device if out is not None else torch.device(device or "cpu")


def _result_unsupported(dtype, layout, device, pin_memory, out, length):
    reason = options_unsupported(dtype, layout, device, pin_memory)
    if reason is None and dtype == torch.bool:
        reason = "a bool result (native raises)"
    if reason is None and out is not None and (out.numel() != length or overlaps_itself(out)):
        reason = "out needs resizing (native warns) or overlaps itself"
    return reason


# ---- arange


def _bounds(bounds):
    """(start, end, step) of arange's positional arguments: (end), (start, end) or all three."""
    return (0, bounds[0], 1) if len(bounds) == 1 else (*bounds, 1)[:3]


def _arange_dtype(start, end, step):
    """int64 for integer (or bool) bounds, else the default float dtype."""
    integral = all(type(value) in (bool, int) for value in (start, end, step))
    return torch.int64 if integral else torch.get_default_dtype()


def _arange_length(start, end, step, dtype):
    """PyTorch's element count, or None where it raises (or, for an integer step that
    truncates to 0, may write zeros)."""
    if any(type(value) not in (bool, int, float) for value in (start, end, step)):
        return None
    low, high, stride = float(start), float(end), float(step)
    if not (stride > 0 or stride < 0) or not (math.isfinite(low) and math.isfinite(high)):
        return None
    if (high - low) * stride < 0:
        return None
    if dtype == torch.int64:  # in int64, from the bounds truncated to integers
        if any(scalar_overflows(value, dtype) for value in (start, end, step)) or int(step) == 0:
            return None
        start, end, step = int(start), int(end), int(step)
        sign = 1 if step > 0 else -1
        length = (end - start + step - sign) // step  # signs agree: floor is C++'s truncation
    else:
        quotient = (high - low) / stride
        length = math.ceil(quotient) if math.isfinite(quotient) else None
    return length if length is not None and 0 <= length < 2**63 else None


def _accumulate(dtype, on_cpu):
    """c10's acc_type of ``dtype`` on the CPU or a GPU: what arange computes in."""
    if not dtype.is_floating_point:
        return torch.int64
    return torch.float64 if on_cpu and dtype == torch.float32 else COMPUTE_DTYPE[dtype]


def arange(*bounds, dtype=None, layout=None, device=None, pin_memory=None, out=None):
    """``start, start + step, ...`` short of ``end``; bounds as aten takes them:
    (end), (start, end) or (start, end, step)."""
    start, end, step = _bounds(bounds)
    if out is None:
        dtype = dtype or _arange_dtype(start, end, step)
        out = torch.empty(_arange_length(start, end, step, dtype), dtype=dtype, device=device)
    accumulate = _accumulate(out.dtype, out.is_cpu)
    return _launch(out, out.numel(), 0, start, step, 0.0, ARANGE=True, STEP=TL_DTYPE[accumulate],
                   DIFF=TL_DTYPE[accumulate], ROUND_DIFF=False, ROUND=False,
                   FUSED=accumulate.is_floating_point, LOG=False, BASE_IN_T=False)


def _arange_unsupported(*bounds, dtype=None, layout=None, device=None, pin_memory=None, out=None):
    start, end, step = _bounds(bounds)
    device = _result_device(device, out)
    dtype = out.dtype if out is not None else dtype or _arange_dtype(start, end, step)
    length = _arange_length(start, end, step, dtype)
    if length is None:
        return "a range PyTorch refuses"
    reason = _result_unsupported(dtype, layout, device, pin_memory, out, length)
    if reason is not None:
        return reason
    accumulate = _accumulate(dtype, device.type == "cpu")
    if scalar_overflows(start, accumulate) or scalar_overflows(step, accumulate):
        return f"start or step does not fit {accumulate}"
    if not accumulate.is_floating_point and int(step) == 0:
        return "an integer step that truncates to 0"
    return None


# ---- linspace and logspace


def _spacing(dtype, on_cpu, log):
    """The kernel's arithmetic flags for PyTorch's linspace (logspace with ``log``) of
    ``dtype`` on the CPU or a GPU."""
    half = dtype in HALF_DTYPES
    own = TL_DTYPE[COMPUTE_DTYPE[dtype]]  # the type's own arithmetic (C++ promotes small integers to int)
    if log and on_cpu:  # the step, the exponents and pow in double
        return dict(STEP=tl.float64, DIFF=own, ROUND_DIFF=half, ROUND=False, FUSED=False, BASE_IN_T=False)
    if dtype.is_floating_point:
        return dict(STEP=own, DIFF=own, ROUND_DIFF=half, ROUND=half, FUSED=True, BASE_IN_T=True)
    if on_cpu:  # integers: the endpoints converted to double before subtracting
        return dict(STEP=tl.float64, DIFF=tl.float64, ROUND_DIFF=False, ROUND=False, FUSED=True, BASE_IN_T=False)
    # integers on a GPU: in float; linspace converts the endpoints before subtracting, logspace after
    return dict(STEP=tl.float32, DIFF=own if log else tl.float32, ROUND_DIFF=False, ROUND=False, FUSED=True,
                BASE_IN_T=False)


def _host_number(value):
    """An endpoint's number: a 0-d CPU tensor's value read (host memory), a number as is."""
    return value.item() if isinstance(value, torch.Tensor) else value


def _single_value(start, base):
    """What one step holds: ``start``, or ``base ** start`` in double (None where Python's
    pow raises instead of giving C's infinity or NaN)."""
    start = _host_number(start)
    if base is None:
        return start
    try:
        return math.pow(base, float(start))
    except (OverflowError, ValueError):
        return None


def _spaced(start, end, steps, base, dtype, device, out):
    if out is None:
        out = torch.empty((steps,), dtype=dtype or torch.get_default_dtype(), device=device)
    start, end = (_host_number(v) if isinstance(v, torch.Tensor) and v.device != out.device else v
                  for v in (start, end))
    if steps == 1:
        return fill_(out, _single_value(start, base))
    flags = _spacing(out.dtype, out.is_cpu, base is not None)
    return _launch(out, steps, steps // 2, start, end, base or 0.0, ARANGE=False, LOG=base is not None, **flags)


def _endpoint_unsupported(value, dtype, device, steps):
    """Why the kernel does not take an endpoint converted to ``dtype`` (None: not converted)."""
    if isinstance(value, torch.Tensor):
        if value.dim() != 0:
            return "an endpoint tensor of more than 0 dimensions (native raises)"
        if value.dtype.is_complex:
            return "a complex endpoint"
        if value.device == device and (steps != 1 or value.is_cpu):
            return None  # read by the kernel
        if not value.is_cpu:
            return "an endpoint on another device"
        value = value.item()
    if type(value) not in (bool, int, float):
        return "a complex endpoint"
    if dtype is not None and scalar_overflows(value, dtype):
        return f"endpoint {value!r} does not fit {dtype}"
    return None


def _spaced_unsupported(start, end, steps, base, dtype, layout, device, pin_memory, out):
    device = _result_device(device, out)
    dtype = out.dtype if out is not None else dtype or torch.get_default_dtype()
    if steps < 0:
        return "negative steps"
    reason = _result_unsupported(dtype, layout, device, pin_memory, out, steps)
    reason = reason or _endpoint_unsupported(start, dtype, device, steps)
    # one step holds the start alone: PyTorch never converts the end
    reason = reason or _endpoint_unsupported(end, dtype if steps != 1 else None, device, steps)
    if reason is None and steps == 1:
        value = _single_value(start, base)
        if value is None or scalar_overflows(value, dtype):
            return "one value PyTorch refuses to convert"
    return reason


def linspace(start, end, steps, *, dtype=None, layout=None, device=None, pin_memory=None, out=None):
    """``steps`` values evenly spaced from ``start`` to ``end``, both included."""
    return _spaced(start, end, steps, None, dtype, device, out)


def _linspace_unsupported(start, end, steps, *, dtype=None, layout=None, device=None, pin_memory=None, out=None):
    return _spaced_unsupported(start, end, steps, None, dtype, layout, device, pin_memory, out)


def logspace(start, end, steps, base=10.0, *, dtype=None, layout=None, device=None, pin_memory=None, out=None):
    """``base`` to the powers of ``linspace(start, end, steps)``."""
    return _spaced(start, end, steps, base, dtype, device, out)


def _logspace_unsupported(start, end, steps, base=10.0, *, dtype=None, layout=None, device=None, pin_memory=None,
                          out=None):
    return _spaced_unsupported(start, end, steps, base, dtype, layout, device, pin_memory, out)


_SPACED_OVERLOADS = ("", "out", "Tensor_Tensor", "Tensor_Scalar", "Scalar_Tensor", "Tensor_Tensor_out",
                     "Tensor_Scalar_out", "Scalar_Tensor_out")
ATEN = (
    # start_step first: flag_gems.ops.arange falls back to the first row's overload
    aten_rows("arange", arange, _arange_unsupported, ("start_step", "start", "", "out", "start_out"))
    + aten_rows("linspace", linspace, _linspace_unsupported, _SPACED_OVERLOADS)
    + aten_rows("logspace", logspace, _logspace_unsupported, _SPACED_OVERLOADS)
)
