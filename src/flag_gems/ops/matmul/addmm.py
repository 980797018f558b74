"""Products with a bias added in the GEMM kernel's epilogue: addmm (``beta * self + alpha *
mat1 @ mat2``, nn.Linear with a bias) and addr (``beta * self + alpha * outer(vec1, vec2)``).

``self`` broadcasts to the result (a 1-d bias over rows, a column, a scalar or a full
matrix), read in place through its strides. ``beta == 0`` never reads it, so NaNs there
vanish, as in PyTorch; addmm's ``alpha == 0`` forms no product (BLAS's rule, PyTorch's
too), addr's multiplies it (PyTorch's elementwise rule). addr is a rank-1 product: the
kernel's OUTER form, exact products with no ``tl.dot``, tiles of its own tuner.
"""

import torch

from ... import tuning
from ...utils.layout import broadcast_strides
from . import gemm
from .gemm_kernels import launch
from .product import Product, bias_operator

__all__ = ["addmm", "addmm_", "addr", "addr_"]


def _native_addmm(result, a, b, bias, beta, alpha):
    return torch.addmm(bias, a, b, beta=beta, alpha=alpha, out=result)


addmm, addmm_, _ADDMM_ROWS = bias_operator(
    "addmm", Product("addmm", _native_addmm),
    "``beta * self + alpha * mat1 @ mat2``; ``self`` broadcasts to the result.")


# ------------------------------------------------------------------ addr: the outer product

_OUTER_SPACE = [(m, n, 16, 8, warps, 1, 1) for m in (16, 32, 64, 128) for n in (32, 64, 128, 256) for warps in (4, 8)]


def _outer_bucket(M, N, dtype):
    return tuning.next_power_of_2(M), tuning.next_power_of_2(N), str(dtype).replace("torch.", "")


def _outer_heuristic(M, N, dtype):
    """Tiles of the output (BLOCK_K unused): a write-bound kernel, at most 64x128 a program."""
    return min(64, max(16, tuning.next_power_of_2(M))), min(128, max(32, tuning.next_power_of_2(N))), 16, 8, 4, 1, 1


def _outer_fits(key, config):
    return config[0] <= max(key[0], 16) and config[1] <= max(key[1], 32)


class _Outer(Product):
    """``beta * bias + alpha * outer(a, b)`` for vectors ``a``, ``b``."""

    def result_shape(self, a, b):
        return a.shape[0], b.shape[0]

    def raw_key(self, a, b):
        return a.shape[0], b.shape[0], a.dtype

    def operands_reason(self, a, b):
        if a.dtype not in gemm.DTYPES or b.dtype != a.dtype:
            return f"dtypes {a.dtype}, {b.dtype} not supported"
        if a.dim() != 1 or b.dim() != 1:
            return "not two vectors"
        return "operands on different devices" if b.device != a.device else None

    def launch(self, config, c, a, b, bias, beta, alpha):
        launch(config, c, a, (0, a.stride(0), 0), b, (0, 0, b.stride(0)), 1, bias=bias,
               bias_strides=(0, *broadcast_strides(bias, c.shape)), alpha=alpha, beta=beta, outer=True)


def _native_addr(result, a, b, bias, beta, alpha):
    return torch.addr(bias, a, b, beta=beta, alpha=alpha, out=result)


_ADDR = _Outer("addr", _native_addr, tuner=gemm.ProductTuner(
    "addr", key=_outer_bucket, heuristic=_outer_heuristic, space=_OUTER_SPACE, prune=_outer_fits))
addr, addr_, _ADDR_ROWS = bias_operator(
    "addr", _ADDR, "``beta * self + alpha * outer(vec1, vec2)``; ``self`` broadcasts to the result.")

ATEN = (*_ADDMM_ROWS, *_ADDR_ROWS)
