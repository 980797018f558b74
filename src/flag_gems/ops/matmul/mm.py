"""mm: fp16 / bf16 / fp32 / fp64 matrices of any strides, on the GEMM kernel
(``gemm_kernels``) with no epilogue.

fp32 uses TF32 tensor cores only when ``torch.backends.cuda.matmul.allow_tf32``
says so, as PyTorch does; fp64 and strict fp32 run in full precision. Tiles come
from mm's tuner (``product.Product``): a bucket with no tuned entry runs PyTorch's
mm where native is a candidate (GPUs), our kernel with heuristic tiles elsewhere.
"""

import torch

from .product import Product, plain_operator

__all__ = ["mm"]

_MM = Product("mm", lambda result, a, b, bias, beta, alpha: torch.mm(a, b, out=result))
mm, _MM_ROWS = plain_operator("mm", _MM, "``self @ mat2`` for 2-D matrices.")

ATEN = (*_MM_ROWS,)
