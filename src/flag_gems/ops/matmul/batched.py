"""Batches of products: bmm (``self[i] @ mat2[i]``) and baddbmm (``beta * self + alpha *
batch1 @ batch2``, ``self`` broadcast to the result), on the GEMM kernel with its batch
dim (one launch: programs walk the batches in turn) and any strides, batch strides of
0 included (an expanded operand is read, never copied).
"""

import torch

from .product import Product, bias_operator, plain_operator

__all__ = ["bmm", "baddbmm", "baddbmm_"]


def _native_bmm(result, a, b, bias, beta, alpha):
    return torch.bmm(a, b, out=result)


def _native_baddbmm(result, a, b, bias, beta, alpha):
    return torch.baddbmm(bias, a, b, beta=beta, alpha=alpha, out=result)


bmm, _BMM_ROWS = plain_operator("bmm", Product("bmm", _native_bmm, rank=3), "``self[i] @ mat2[i]`` for every i.")
baddbmm, baddbmm_, _BADDBMM_ROWS = bias_operator(
    "baddbmm", Product("baddbmm", _native_baddbmm, rank=3),
    "``beta * self + alpha * batch1 @ batch2``; ``self`` broadcasts to the result.")

ATEN = (*_BMM_ROWS, *_BADDBMM_ROWS)
