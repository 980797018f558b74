"""What the reduction modules share on the host: the dtypes a reduction keeps and
loads, running a ``codegen.reduction.Reduction`` into optional ``out=`` tensors,
the checks that decide whether our kernels take a call, and aten row tables."""

import builtins
import math

import torch

from ... import runtime
from ...codegen.reduction import normalize_dims, reduced_shape, valid_dims
from ...codegen.tl_math import INTERPRETED
from ...dispatch import Row
from ...utils.dtypes import HALF_DTYPES, accumulator

SUPPORTED = runtime.supported_dtypes()


def extreme_state(dtype):
    """What extremes (and their indices) are kept in: any type holds them exactly, and half
    types compare two to a register on the GPU; the interpreter keeps them in fp32, as its
    bfloat16 arithmetic is wrong (DESIGN.md section 4)."""
    if dtype in HALF_DTYPES and not INTERPRETED:
        return dtype
    return accumulator(dtype)


def load_dtype(self, dtype=None):
    """What the kernel converts loaded elements to: dtype= as PyTorch casts first, else
    the input's own type (half types read exactly in fp32)."""
    if dtype is not None:
        return dtype
    return torch.float32 if self.dtype in HALF_DTYPES else self.dtype


def reduced_count(self, dims):
    """How many elements each output of a reduction of ``self`` over ``dims`` reduces."""
    return math.prod(self.shape[d] for d in dims) if self.dim() else 1


def run(reduction, self, dims, keepdim, result_dtypes, outs, states, identities, cast=None, param=0.0):
    """Results of ``reduction`` over ``dims``, written into ``outs`` (None or tensors) where given."""
    shape = reduced_shape(self.shape, dims, keepdim)
    results = [out if out is not None and out.is_contiguous() else torch.empty(shape, dtype=dtype, device=self.device)
               for dtype, out in zip(result_dtypes, outs)]
    reduction(self, dims, results, cast or load_dtype(self), states, identities, param)
    for result, out in zip(results, outs):
        if out is not None and result is not out:
            out.copy_(result)
    return [result if out is None else out for result, out in zip(results, outs)]


def reason(self, dim=None, keepdim=False, outs=(), expected=(), empty_means_all=True, dtypes=None):
    """None when the kernels take this call; ``outs`` must match ``expected`` dtypes exactly."""
    if self.dtype not in (dtypes or SUPPORTED):
        return f"dtype {self.dtype} is not supported"
    if not valid_dims(dim, self.dim()):
        return "invalid dim"
    if builtins.any(o is not None for o in outs):
        dims = normalize_dims(dim, self.dim(), empty_means_all)
        shape = reduced_shape(self.shape, dims, keepdim)
        for out, dtype in zip(outs, expected):
            if out.dtype != dtype:
                return "out dtype differs"
            if out.device != self.device:
                return "out on another device"
            if list(out.shape) != shape:
                return "out needs resizing"
    return None


def reason_nonempty(self, dim=None, keepdim=False, outs=(), expected=(), dtypes=None):
    """As ``reason``, for reductions PyTorch refuses over no elements."""
    why = reason(self, dim, keepdim, outs, expected, dtypes=dtypes)
    if why is None and reduced_count(self, normalize_dims(dim, self.dim())) == 0:
        return "reduction over no elements"
    return why


def rows_sharing_check(unsupported, *entries):
    """The rows of ``entries``, each ``(impl, *overload names)``: one row per overload, routed
    to its entry's ``impl``, all of them checked by ``unsupported``."""
    return tuple(Row(name, impl, unsupported) for impl, *names in entries for name in names)
