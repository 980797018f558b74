"""Matrix-vector and dot products on the GEMV kernels (``gemv_kernels``): mv (``self @
vec``), addmv (``beta * self + alpha * mat @ vec``, ``self`` broadcast to the result),
dot and vdot (real dtypes: vdot is dot; complex ones go native), as a matrix of one row.

Memory-bound: a program reads BLOCK_M rows in BLOCK_K chunks; a long K with few rows
(decode-shaped products, dot) is split into SLICES whose partial sums a second launch
adds up. Each operator has its own tuner (vdot shares dot's) over (BLOCK_M, BLOCK_K,
SLICES, num_warps); as for mm, a bucket no tuned entry covers runs PyTorch's kernel where
native is a candidate (GPUs), the heuristic elsewhere.
"""

import torch

from ... import tuning
from ...utils.layout import broadcast_strides, cdiv
from .gemm import DTYPES, ProductTuner
from .gemm_kernels import epilogue
from .gemv_kernels import gemv_finish_kernel, gemv_kernel, launch
from .product import Product, bias_operator, plain_operator

__all__ = ["mv", "addmv", "addmv_", "dot", "vdot"]

CONFIG_FIELDS = ("BLOCK_M", "BLOCK_K", "SLICES", "num_warps")
_PROGRAMS = 264  # two per streaming multiprocessor of an H100: enough loads in flight
_MAX_SLICES = 1024


def _layout(M, a_strides):
    """"n": rows contiguous, "t": columns contiguous (a transposed matrix), "s": neither."""
    return "n" if a_strides[1] == 1 else "t" if a_strides[0] == 1 and M > 1 else "s"


def _bucket(M, K, dtype, a_strides):
    return (tuning.next_power_of_2(M), tuning.next_power_of_2(K), str(dtype).replace("torch.", ""),
            _layout(M, a_strides))


def _at_most(n, cap):
    return min(cap, max(1, tuning.next_power_of_2(n)))


def default_config(M, K, dtype, a_strides):
    """(BLOCK_M, BLOCK_K, SLICES, num_warps): tiles that read along the contiguous dim, K
    split until about _PROGRAMS programs run."""
    if _layout(M, a_strides) == "t":
        block_m, block_k = _at_most(M, 128), _at_most(K, 32)
    else:
        block_m = _at_most(M, 8)
        block_k = _at_most(K, 2048 if M == 1 else 512)
    slices = max(1, min(cdiv(_PROGRAMS, cdiv(M, block_m)), cdiv(K, 8 * block_k), _MAX_SLICES))
    return block_m, block_k, slices, 4 if block_m * block_k <= 4096 else 8


def default_space():
    """Row tiles first (the common layout), then column tiles; pruning keeps those of a key's layout."""
    rows = [(m, k, s, w) for m in (1, 4, 8, 16) for k in (256, 512, 1024, 2048) for s in (1, 4, 16, 64, 256)
            for w in (4, 8)]
    columns = [(m, k, s, w) for m in (64, 128, 256) for k in (16, 32, 64) for s in (1, 4, 16, 64) for w in (4, 8)]
    return rows + columns


def _fits(key, config):
    m, k, _, layout = key
    block_m, block_k, slices, _ = config
    if (layout == "t") != (block_m >= 64):
        return False
    return block_m <= max(m, 1) and block_k <= max(k, 16) and (slices == 1 or slices * block_k <= k)


def _tuner(name):
    return ProductTuner(name, key=_bucket, heuristic=lambda *raw: default_config(*raw), space=default_space,
                        prune=_fits, sources=(gemv_kernel, gemv_finish_kernel, epilogue), fields=CONFIG_FIELDS)


class _Gemv(Product):
    """``alpha * a @ x + beta * bias`` for a matrix ``a`` (rank 2: mv, addmv) or a vector
    (rank 1: dot, vdot, a matrix of one row) and a vector ``x``."""

    def result_shape(self, a, x):
        return (a.shape[0],) if self.rank == 2 else ()

    def raw_key(self, a, x):
        if self.rank == 2:
            return a.shape[0], a.shape[1], a.dtype, a.stride()
        return 1, a.shape[0], a.dtype, (0, a.stride(0))

    def operands_reason(self, a, x):
        if a.dtype not in DTYPES or x.dtype != a.dtype:
            return f"dtypes {a.dtype}, {x.dtype} not supported"
        if a.dim() != self.rank or x.dim() != 1 or a.shape[-1] != x.shape[0]:
            return "not a matrix and a vector of its width" if self.rank == 2 else "not two vectors of one length"
        return "operands on different devices" if x.device != a.device else None

    def launch(self, config, y, a, x, bias, beta, alpha):
        M, K, dtype, a_strides = self.raw_key(a, x)
        bias_stride = 0 if bias is None else broadcast_strides(bias, (M,))[0]
        launch(config, y, a, a_strides, x, x.stride(0), M, K, bias=bias, bias_stride=bias_stride, alpha=alpha,
               beta=beta)


def _native_mv(result, a, x, bias, beta, alpha):
    return torch.mv(a, x, out=result)


def _native_addmv(result, a, x, bias, beta, alpha):
    return torch.addmv(bias, a, x, beta=beta, alpha=alpha, out=result)


def _native_dot(result, a, x, bias, beta, alpha):
    return torch.dot(a, x, out=result)


def _native_vdot(result, a, x, bias, beta, alpha):
    return torch.vdot(a, x, out=result)


_DOT_TUNER = _tuner("dot")

mv, _MV_ROWS = plain_operator("mv", _Gemv("mv", _native_mv, tuner=_tuner("mv")),
                              "``self @ vec``: a matrix times a vector.")
addmv, addmv_, _ADDMV_ROWS = bias_operator(
    "addmv", _Gemv("addmv", _native_addmv, tuner=_tuner("addmv")),
    "``beta * self + alpha * mat @ vec``; ``self`` broadcasts to the result.")
dot, _DOT_ROWS = plain_operator("dot", _Gemv("dot", _native_dot, rank=1, tuner=_DOT_TUNER),
                                "The dot product of two vectors of one length, accumulated in fp32 (fp64 for fp64).")
vdot, _VDOT_ROWS = plain_operator("vdot", _Gemv("vdot", _native_vdot, rank=1, tuner=_DOT_TUNER),
                                  "``dot`` with the first vector conjugated: ``dot`` for real dtypes.")

ATEN = (*_MV_ROWS, *_ADDMV_ROWS, *_DOT_ROWS, *_VDOT_ROWS)
