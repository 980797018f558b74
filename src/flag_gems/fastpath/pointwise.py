"""The C++ wrappers' kernel table for elementwise operators (csrc/pointwise_fast.cpp).

When an operator first runs a flat kernel on a fresh result (contiguous inputs of one
dtype and shape), ``CppPointwise.teach`` hands the compiled kernel to C++, keyed by what
Triton specialised it on and the call's size class; later such calls go from the
operator straight into C++ (``run``): one allocation and one cuLaunchKernel.
"""

import itertools

import torch

from ..utils.layout import INT32_LIMIT
from .build import Served, prebuilt
from .direct_launch import servable

# Operand patterns the C++ wrappers launch (csrc/pointwise_fast.cpp's Pattern).
_PATTERNS = {"T": 1, "TT": 2, "TTS": 3, "TS": 4}
_IDS = itertools.count(1)
_taught = set()  # (compiled kernel, size class) pairs handed to the C++ wrappers


class CppPointwise:
    """One ``Pointwise`` operator's entry in the C++ kernel table."""

    def __init__(self):
        self.id = next(_IDS)
        self._extension = None  # the C++ extension, once it holds one of this operator's kernels

    def run(self, args):
        """The operator over ``args`` (as the kernel takes them) launched from C++,
        or None when the C++ wrappers do not cover the call."""
        extension = self._extension
        if extension is None or not isinstance(args[0], torch.Tensor):
            return None
        if len(args) == 1:
            result = extension.unary(self.id, args[0])
        elif len(args) == 2 and isinstance(args[1], torch.Tensor):
            result = extension.binary(self.id, args[0], args[1], None)
        elif len(args) == 2 and type(args[1]) is float:
            result = extension.tensor_float(self.id, args[0], args[1])
        elif len(args) == 3 and isinstance(args[1], torch.Tensor) and type(args[2]) is int:
            result = extension.binary(self.id, args[0], args[1], args[2])
        else:
            return None
        if result is not None:
            Served.count += 1
        return result

    def teach(self, compiled, pattern, tensors, out, args, numel, size, block):
        """Hand a flat kernel that just ran into a fresh ``out`` to the C++ wrappers when
        its call is one they make: for the calls of size class ``size`` (numel rounded up
        to a power of two, at least 128), ``block`` elements a program. Taught once the
        wrappers exist: a call before their build does not mark the kernel taught."""
        if (compiled, size) in _taught:
            return
        extension = prebuilt()
        if extension is None:
            return
        _taught.add((compiled, size))
        code = _PATTERNS.get(pattern)
        if code is None or not 2 <= numel < INT32_LIMIT:
            return
        dtype = tensors[0].dtype
        if any(t.dtype != dtype or t.shape != out.shape for t in tensors):
            return
        if out.dtype not in (dtype, torch.bool):
            return  # e.g. integer -> default float: the default may change between calls
        if pattern == "TTS" and not (type(args[2]) is int and -(2**31) <= args[2] < 2**31):
            return
        if pattern == "TS" and (type(args[1]) is not float or not dtype.is_floating_point):
            return  # an integer tensor with a float computes in the default dtype, which may change
        if not servable(compiled):
            return
        metadata = compiled.metadata
        alignment = {t.data_ptr() % 16 == 0 for t in (*tensors, out)}
        if len(alignment) != 1:
            return  # compiled for mixed alignment: no single C++ key describes it
        extension.register_kernel(self.id, code, dtype, alignment.pop(), numel % 16 == 0, size, block,
                                  compiled.function, metadata.num_warps * 32, metadata.shared, out.dtype)
        self._extension = extension


def forget_kernels():
    """The C++ wrappers launch with the flat configs chosen so far: a tuner forgetting
    its choices empties their table too."""
    _taught.clear()
    extension = prebuilt()
    if extension is not None:
        extension.clear_kernels()
