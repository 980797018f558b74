"""The GEMM-shaped operators, declared once: ``Product`` (a tuner, a condition and an
implementation of ``alpha * a @ b + beta * bias`` on the GEMM kernel) and the aten
functions and rows of an operator made from one (``plain_operator``: ``op(self, other,
*, out)``; ``bias_operator``: ``op(self, a, b, *, beta, alpha, out)`` and its in-place
form). The GEMV operators (``gemv.py``) declare theirs with the same two functions.
"""

import torch

from ...dispatch import aten_rows
from ...runtime.nesting import native_calls
from ...utils.layout import broadcast_strides
from .gemm import NATIVE, ProductTuner, batched_key, bias_reason, destination_reason, matrix_key, \
    operands_reason, precision, scalars_reason
from .gemm_kernels import NO_STRIDES, batch_strides, launch


class Product:
    """``alpha * a @ b + beta * bias`` for one aten operator on the GEMM kernel: its tuner,
    its condition and its implementation. ``rank`` 2 multiplies matrices (mm, addmm), 3
    batches of them (bmm, baddbmm); ``native(result, a, b, bias, beta, alpha)`` runs
    PyTorch's operator into ``result``. ``bias`` None adds nothing. A subclass may take
    other operands (addr's vectors) by overriding the four methods before ``__call__``."""

    def __init__(self, name, native, rank=2, tuner=None):
        self.rank = rank
        self.native = native
        self.tuner = tuner or ProductTuner(name, batched=rank == 3)

    def result_shape(self, a, b):
        return (*a.shape[:-1], b.shape[-1])

    def raw_key(self, a, b):
        return matrix_key(a, b) if self.rank == 2 else batched_key(a, b)

    def operands_reason(self, a, b):
        return operands_reason(a, b, self.rank)

    def launch(self, config, c, a, b, bias, beta, alpha):
        if bias is None:
            bias_strides = NO_STRIDES
        else:
            bias_strides = broadcast_strides(bias, c.shape)
            if self.rank == 2:
                bias_strides = (0, *bias_strides)
        launch(config, c, a, batch_strides(a), b, batch_strides(b), a.shape[-1], bias=bias,
               bias_strides=bias_strides, alpha=alpha, beta=beta, precision=precision(a.dtype))

    def __call__(self, a, b, bias=None, beta=1, alpha=1, out=None):
        shape = self.result_shape(a, b)
        result = torch.empty(shape, dtype=a.dtype, device=a.device) if out is None else out
        if result.numel() == 0:
            return result
        config = self.tuner.taken(a, b)
        if config is None:  # called on its own, not after ``unsupported``
            config = self.tuner.choice(self.raw_key(a, b), self._runner(shape, a, b, bias, beta, alpha))
            if config is NATIVE:
                with native_calls():
                    return self.native(result, a, b, bias, beta, alpha)
        self.launch(config, result, a, b, bias, beta, alpha)
        return result

    def unsupported(self, a, b, bias=None, beta=1, alpha=1, out=None, inplace=False):
        """Why the call goes native, or None; ``inplace``: ``out`` is ``bias``, of the result's shape."""
        reason = self.operands_reason(a, b)
        if reason is not None:
            return reason
        shape = self.result_shape(a, b)
        if bias is not None:
            reason = scalars_reason(alpha, beta, a.dtype) or bias_reason(bias, shape, a, exact=inplace)
        if reason is None and out is not None:
            reason = destination_reason(out, shape, a, a, b, bias)
        if reason is None and all(shape):
            reason = self.tuner.decide(a, b, self.raw_key(a, b), self._runner(shape, a, b, bias, beta, alpha))
        return reason

    def _runner(self, shape, a, b, bias, beta, alpha):
        """A factory of run(config) for tuning: one product into a scratch result."""
        def make():
            scratch = torch.empty(shape, dtype=a.dtype, device=a.device)

            def run(config):
                if config is NATIVE:
                    self.native(scratch, a, b, bias, beta, alpha)
                else:
                    self.launch(config, scratch, a, b, bias, beta, alpha)

            return run

        return make


def plain_operator(name, product, doc):
    """``name(self, other, *, out=None)``: ``product(self, other)``, and the rows of it and
    its ``out=`` form."""
    def functional(self, other, *, out=None):
        return product(self, other, out=out)

    def unsupported(self, other, *, out=None):
        return product.unsupported(self, other, out=out)

    _named(functional, name, doc)
    return functional, aten_rows(name, functional, unsupported, ("", "out"))


def bias_operator(name, product, doc):
    """``name(self, a, b, *, beta=1, alpha=1, out=None)``: ``beta * self + alpha * product(a,
    b)``, its in-place form (``self`` the result), and the rows of the three forms."""
    def functional(self, a, b, *, beta=1, alpha=1, out=None):
        return product(a, b, self, beta, alpha, out)

    def inplace(self, a, b, *, beta=1, alpha=1):
        return product(a, b, self, beta, alpha, out=self)

    def unsupported(self, a, b, *, beta=1, alpha=1, out=None):
        return product.unsupported(a, b, self, beta, alpha, out)

    def inplace_unsupported(self, a, b, *, beta=1, alpha=1):
        return product.unsupported(a, b, self, beta, alpha, out=self, inplace=True)

    _named(functional, name, doc)
    _named(inplace, f"{name}_", f"In place: {doc}")
    return functional, inplace, aten_rows(name, functional, unsupported, ("", "out"), inplace, inplace_unsupported)


def _named(function, name, doc):
    function.__name__ = function.__qualname__ = name
    function.__doc__ = doc
