"""``isin`` (Tensor_Tensor, Tensor_Scalar, Scalar_Tensor, each with out=): whether each
element occurs among the test elements, compared in the dtype the two promote to.

Against a tensor, each program compares a block of elements with every test element, a tile
at a time (a strided operand is first copied to a contiguous buffer: the comparison reads
both in flat order). Against a number it is an elementwise equality. Native switches to a
sort for many test elements; there we leave it to native too.
"""

import torch
import triton
import triton.language as tl

from ...codegen.launch import Launcher
from ...codegen.pointwise import TL_DTYPE, Pointwise
from ...dispatch import aten_rows
from ...utils.dtypes import COMPUTE_DTYPE, promoted_dtype
from ...utils.layout import INT32_LIMIT, cdiv
from .common import flat, kernel_number, operands_reason, out_reason

__all__ = ["isin"]

MANY_TESTS = 1 << 16  # test elements beyond which native (sorting) takes the call
BLOCK, TEST_BLOCK = 256, 64


@triton.jit(do_not_specialize=["element"])
def _isin_kernel(elements, element, tests, out, n, m, COMPUTE: tl.constexpr, SCALAR: tl.constexpr,
                 INVERT: tl.constexpr, BLOCK: tl.constexpr, TEST_BLOCK: tl.constexpr, INDEX64: tl.constexpr):
    """out[i] = elements[i] (or the number ``element`` if SCALAR) is among tests[:m], or not."""
    pid = tl.program_id(0)
    if INDEX64:
        pid = pid.to(tl.int64)
    at = pid * BLOCK + tl.arange(0, BLOCK)
    inside = at < n
    if SCALAR:
        value = (tl.zeros([BLOCK], COMPUTE) + element).to(COMPUTE)
    else:
        value = tl.load(elements + at, mask=inside, other=0).to(COMPUTE)
    found = tl.zeros([BLOCK], tl.int32)
    for start in range(0, m, TEST_BLOCK):
        test_at = start + tl.arange(0, TEST_BLOCK)
        tests_inside = test_at < m
        test = tl.load(tests + test_at, mask=tests_inside, other=0).to(COMPUTE)
        hit = (value[:, None] == test[None, :]) & tests_inside[None, :]
        found = found | tl.max(hit.to(tl.int32), 1)
    tl.store(out + at, (found != 0) != INVERT, mask=inside)


_ISIN = Launcher(_isin_kernel)


@triton.jit
def _matches(element, test, invert):
    return (element == test) != (invert != 0)


MATCHES = Pointwise(_matches, "isin_scalar")


def isin(elements, test_elements, *, assume_unique=False, invert=False, out=None):
    """Whether each element is among ``test_elements``; either may be a number (not both)."""
    common = promoted_dtype((elements, test_elements))
    if not isinstance(test_elements, torch.Tensor):
        if out is None:
            out = torch.empty(elements.shape, dtype=torch.bool, device=elements.device)
        return MATCHES(out, COMPUTE_DTYPE[common], elements, kernel_number(test_elements, common), int(invert))
    scalar = not isinstance(elements, torch.Tensor)
    if out is None:
        out = torch.empty(() if scalar else elements.shape, dtype=torch.bool, device=test_elements.device)
    n = out.numel()
    if n:
        tests = flat(test_elements)
        values = tests if scalar else flat(elements)
        _ISIN((cdiv(n, BLOCK),), values, kernel_number(elements, common) if scalar else 0, tests, out, n,
              tests.numel(), COMPUTE=TL_DTYPE[COMPUTE_DTYPE[common]], SCALAR=scalar, INVERT=invert, BLOCK=BLOCK,
              TEST_BLOCK=TEST_BLOCK, INDEX64=n + BLOCK >= INT32_LIMIT)
    return out


def _isin_unsupported(elements, test_elements, *, assume_unique=False, invert=False, out=None):
    tensors = [t for t in (elements, test_elements) if isinstance(t, torch.Tensor)]
    reason = operands_reason(*tensors)
    if reason is not None:
        return reason
    if any(t.dtype == torch.bool for t in tensors):
        return "bool input (native raises)"
    common = promoted_dtype((elements, test_elements))
    number = next((v for v in (elements, test_elements) if not isinstance(v, torch.Tensor)), None)
    if number is not None and (isinstance(number, bool) or kernel_number(number, common) is None):
        return f"a number {number!r} we do not compare as {common}"
    if isinstance(test_elements, torch.Tensor) and test_elements.numel() > MANY_TESTS:
        return "many test elements: native sorts"
    if out is not None:
        shape = elements.shape if isinstance(elements, torch.Tensor) else torch.Size()
        return out_reason(out, shape, torch.bool, *tensors)
    return None


ATEN = tuple(aten_rows("isin", isin, _isin_unsupported, ("Tensor_Tensor", "Tensor_Tensor_out", "Tensor_Scalar",
                                                          "Tensor_Scalar_out", "Scalar_Tensor", "Scalar_Tensor_out")))
