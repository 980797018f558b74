"""Math for kernels that runs alike compiled and under Triton's interpreter.

Compiled, these are libdevice's functions (the CUDA math library PyTorch's
own kernels use, so results agree to the last bit in most cases). The
interpreter has no libdevice: there the same function runs on the block's
numpy values. CPU tests thus check an operator's plumbing (dtypes, layouts,
promotion, special values); GPU tests check libdevice's accuracy.
"""

import os

import numpy
import torch
import triton
import triton.language as tl
from triton.language.extra import libdevice

INTERPRETED: tl.constexpr = tl.constexpr(os.environ.get("TRITON_INTERPRET") == "1")


def _on_values(function):
    """``function`` over the numpy values of interpreter blocks (all of one shape)."""
    from triton.runtime.interpreter import TensorHandle

    def apply(*blocks):
        data = [b.handle.data for b in blocks]
        with numpy.errstate(all="ignore"):
            values = numpy.asarray(function(*data)).astype(data[0].dtype)
        return tl.core.tensor(TensorHandle(values, blocks[0].handle.dtype), blocks[0].type)

    return apply


def _through_torch(name):
    """A torch function applied to numpy values (for functions numpy lacks)."""
    function = getattr(torch.special, name, None) or getattr(torch, name)
    return lambda *arrays: function(*(torch.from_numpy(a) for a in arrays)).numpy()


def device_math(name, numpy_function=None):
    """``libdevice.<name>`` compiled; ``numpy_function`` (default: torch's ``name``)
    on the values under the interpreter."""
    if INTERPRETED:
        return _on_values(numpy_function or _through_torch(name))
    return getattr(libdevice, name)


fmod = device_math("fmod", numpy.fmod)


@triton.jit
def ieee_div(a, b):
    # Triton's fp32 "/" is approximate (2 ulp); PyTorch rounds exactly.
    if a.dtype == tl.float64:
        return a / b
    else:
        return tl.math.div_rn(a, b)


@triton.jit
def trunc(x):
    return tl.where(x < 0, tl.ceil(x), tl.floor(x))

# Unary math (unary_ops): libdevice compiled, numpy (or torch) under the interpreter.
exp = device_math("exp", numpy.exp)
exp2 = device_math("exp2", numpy.exp2)
expm1 = device_math("expm1", numpy.expm1)
log = device_math("log", numpy.log)
log2 = device_math("log2", numpy.log2)
log10 = device_math("log10", numpy.log10)
log1p = device_math("log1p", numpy.log1p)
sin = device_math("sin", numpy.sin)
cos = device_math("cos", numpy.cos)
tan = device_math("tan", numpy.tan)
asin = device_math("asin", numpy.arcsin)
acos = device_math("acos", numpy.arccos)
atan = device_math("atan", numpy.arctan)
sinh = device_math("sinh", numpy.sinh)
cosh = device_math("cosh", numpy.cosh)
tanh = device_math("tanh", numpy.tanh)
asinh = device_math("asinh", numpy.arcsinh)
acosh = device_math("acosh", numpy.arccosh)
atanh = device_math("atanh", numpy.arctanh)
erf = device_math("erf")
erfc = device_math("erfc")
erfinv = device_math("erfinv")
lgamma = device_math("lgamma")
rsqrt = device_math("rsqrt", lambda x: 1 / numpy.sqrt(x))
rint = device_math("rint", numpy.rint)
