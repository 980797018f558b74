"""mm: fp16 / bf16 / fp32 / fp64 matrices of any strides, on the GEMM kernel
(``gemm_kernels``) with no epilogue.

fp32 uses TF32 tensor cores only when ``torch.backends.cuda.matmul.allow_tf32``
says so, as PyTorch does; fp64 and strict fp32 run in full precision. Tiles come
from mm's tuner (``gemm.GemmTuner``): a bucket with no tuned entry runs PyTorch's
mm where native is a candidate (GPUs), our kernel with heuristic tiles elsewhere.
"""

import torch

from ...dispatch import Row
from ...runtime.nesting import native_calls
from . import gemm
from .gemm import NATIVE
from .gemm_kernels import batch_strides, launch

__all__ = ["mm"]

_TUNER = gemm.GemmTuner("mm")


def _runner(a, b):
    """A factory of run(config) for tuning: one product into a scratch result."""
    def make():
        scratch = torch.empty((a.shape[0], b.shape[1]), dtype=a.dtype, device=a.device)

        def run(config):
            if config is NATIVE:
                torch.mm(a, b, out=scratch)
            else:
                _launch(a, b, scratch, config)

        return run

    return make


def _launch(a, b, c, config):
    launch(config, c, a, batch_strides(a), b, batch_strides(b), a.shape[1], precision=gemm.precision(a.dtype))


def mm(self, mat2, *, out=None):
    """``self @ mat2`` for 2-D matrices."""
    result = torch.empty((self.shape[0], mat2.shape[1]), dtype=self.dtype, device=self.device) if out is None else out
    if result.numel() == 0:
        return result
    config = _TUNER.config(self, mat2, gemm.matrix_key(self, mat2), _runner(self, mat2))
    if config is NATIVE:  # called on its own, not after _mm_unsupported
        with native_calls():
            return torch.mm(self, mat2, out=result)
    _launch(self, mat2, result, config)
    return result


def _mm_unsupported(self, mat2, *, out=None):
    reason = gemm.operands_reason(self, mat2)
    if reason is None and out is not None:
        reason = gemm.destination_reason(out, (self.shape[0], mat2.shape[1]), self, self, mat2)
    if reason is None and self.shape[0] and mat2.shape[1]:
        reason = _TUNER.decide(self, mat2, gemm.matrix_key(self, mat2), _runner(self, mat2))
    return reason


ATEN = (
    Row("mm", mm, _mm_unsupported),
    Row("mm.out", mm, _mm_unsupported),
)
