"""``fused_linear_cross_entropy(input, weight, target, ...)``: the cross entropy of the
logits ``input @ weight.T + bias`` (a causal LM's lm_head and its loss, as Liger-Kernel's
``LigerFusedLinearCrossEntropyLoss``) without ever holding all the [N, V] logits; and
``FusedLinearCrossEntropyLoss``, its nn.Module.

Chunks. Rows go ``_chunk_rows`` at a time: a power of two near N / ceil(V / H), so that a
chunk's logits [rows, V] weigh about what the hidden states [N, H] weigh (Liger-Kernel's
choice). Per chunk, a GEMM writes the logits, in the input dtype, into one buffer every
chunk reuses; one pass of cross_entropy_kernels' forward kernel computes each row's loss
(online log-sum-exp, target logit, label smoothing, class weight, softcap) and overwrites
the logits with d loss / d logits; two GEMMs then make the chunk's rows of grad_input and
add its share to grad_weight (grad_bias: a column sum). The largest temporaries are that
buffer and grad_weight [V, H] itself.

When the loss is one number, the forward computes the gradients (as Liger-Kernel does)
and the backward scales them in place by its incoming gradient: no second [V, H] buffer,
at the price of a pass over them even when that gradient is 1 (telling would cost a host
sync). A second backward of a retained graph recomputes them. A loss per row ("none")
cannot be folded so (each row weighs its own way into grad_weight): its forward keeps each
row's log-sum-exp and sum(q), and its backward recomputes the chunks' logits and runs the
backward kernel with the incoming gradients.

grad_weight and grad_bias accumulate in the input dtype, as Liger-Kernel's default: each
chunk's GEMM sums its rows in fp32 and adds into grad_weight with one rounding (addmm,
beta=1), about V / H roundings in all; an fp32 accumulator would take 2 * V * H bytes more
(2 GiB for Llama 3's head). The loss is fp32 (fp64 for fp64 input), as Liger-Kernel's and
Hugging Face's causal-LM loss (which upcasts the logits) are. A mean divides by the
counted targets' weight over the whole batch, which a small kernel over the targets
writes first, on the device (no host sync).
"""

import math

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from ... import runtime
from ...codegen.pointwise import TL_DTYPE
from ...utils.dtypes import float_accumulator
from ...utils.layout import INT32_LIMIT, cdiv, next_power_of_2
from .common import CLASS_TARGETS, MEAN, NONE, REDUCTIONS, bad_class_targets, on_vendor_device
from .cross_entropy_kernels import (CE_BACKWARD, CE_FORWARD, CE_WEIGHT, cross_entropy_backward_config,
                                    cross_entropy_config, cross_entropy_with_grad_config)

__all__ = ["fused_linear_cross_entropy", "FusedLinearCrossEntropyLoss"]


def _chunk_rows(N, V, H):
    """Rows per chunk: a chunk's logits [rows, V] about the size of the hidden states [N, H]."""
    return min(next_power_of_2(cdiv(N, cdiv(V, H))), N)


class _Call:
    """One call's settings and sizes, and its sweeps over the chunks."""

    def __init__(self, input, weight, ce_weight, ignore_index, smoothing, reduction, softcap):
        self.N, H = input.shape
        self.V = weight.shape[0]
        self.rows = _chunk_rows(self.N, self.V, H)
        self.acc = float_accumulator(input.dtype)
        self.ce_weight = ce_weight
        self.ignore_index, self.smoothing, self.reduction = ignore_index, smoothing, reduction
        self.constexprs = dict(PROBS=False, SMOOTH=smoothing > 0, SPREAD=smoothing > 0,
                               HAS_WEIGHT=ce_weight is not None, SOFTCAP=softcap, ACC=TL_DTYPE[self.acc],
                               INDEX64=self.rows * self.V >= INT32_LIMIT)

    def forward(self, input, weight, target, bias, wanted, keep_stats=False):
        """(loss, gradients, stats): the gradients of (input, weight, bias) ``wanted`` for
        an incoming 1 (None for the others), when the loss is one number; ``keep_stats``:
        ``stats`` keeps every row's log-sum-exp and sum(q), for ``backward_rows``."""
        # Without keep_stats every chunk's stats sit right before the mean's denominator,
        # where the kernel reads it (stats[2 * rows] of its own view).
        stats = torch.empty(2 * (self.N if keep_stats else self.rows) + 1, dtype=self.acc, device=input.device)
        total = stats[-1]
        class_weight = input if self.ce_weight is None else self.ce_weight
        if self.reduction == MEAN:
            CE_WEIGHT((1,), target, class_weight, total, self.N, self.V, 1, target.stride(0), 0, self.ignore_index,
                      BLOCK=1024, num_warps=4, **self._constexprs("PROBS", "HAS_WEIGHT", "ACC", "INDEX64"))
        losses = torch.empty(self.N, dtype=self.acc, device=input.device)
        grad = any(wanted)
        if grad:
            config = runtime.config("cross_entropy_with_grad", cross_entropy_with_grad_config)
        else:
            config = runtime.config("cross_entropy", cross_entropy_config)

        def launch(logits, start, rows):
            block_m, block_c, warps, one_tile = config(rows, self.V, True)
            at = 2 * start if keep_stats else 2 * (self.rows - rows)
            CE_FORWARD((cdiv(rows, block_m),), logits, target[start:], class_weight, losses[start:], stats[at:],
                       stats, logits, rows, self.V, 1, self.V, 1, 0, target.stride(0), 0, 0, self.ignore_index,
                       self.smoothing, REDUCTION=NONE, ONE_SAMPLE=False, FINISH=False, ONE_TILE=one_tile, GRAD=grad,
                       GRAD_MEAN=grad and self.reduction == MEAN, BLOCK_M=block_m, BLOCK_C=block_c,
                       num_warps=warps, **self.constexprs)

        grads = self._sweep(input, weight, bias, wanted, launch)
        if self.reduction == NONE:
            loss = losses
        else:
            loss = losses.sum() / total if self.reduction == MEAN else losses.sum()
        return loss, grads, stats

    def backward_rows(self, grad_loss, input, weight, target, bias, stats, wanted):
        """The ``wanted`` gradients of a loss per row for the incoming ``grad_loss`` [N]."""
        config = runtime.config("cross_entropy_backward", cross_entropy_backward_config)
        class_weight = input if self.ce_weight is None else self.ce_weight

        def launch(logits, start, rows):
            block_m, block_c, warps = config(rows, self.V, True)
            CE_BACKWARD((cdiv(rows, block_m),), logits, target[start:], class_weight, grad_loss[start:],
                        stats[2 * start:], logits, rows, self.V, 1, self.V, 1, 0, target.stride(0), 0, 0,
                        grad_loss.stride(0), 0, self.ignore_index, self.smoothing, math.nan, MEAN=False,
                        BLOCK_M=block_m, BLOCK_C=block_c, num_warps=warps, **self._constexprs(
                            "PROBS", "SMOOTH", "SPREAD", "HAS_WEIGHT", "SOFTCAP", "ACC", "INDEX64"))

        return self._sweep(input, weight, bias, wanted, launch)

    def _constexprs(self, *names):
        return {name: self.constexprs[name] for name in names}

    def _sweep(self, input, weight, bias, wanted, launch):
        """Per chunk: its logits into a reused buffer, ``launch(logits, start, rows)`` (which
        overwrites them with their gradient where any is ``wanted``), then the chunk's
        share of the (input, weight, bias) gradients ``wanted``, returned (None where not)."""
        device = input.device
        grad_input = torch.empty(input.shape, dtype=input.dtype, device=device) if wanted[0] else None
        grad_weight = torch.empty(weight.shape, dtype=weight.dtype, device=device) if wanted[1] else None
        grad_bias = torch.empty(self.V, dtype=input.dtype, device=device) if wanted[2] else None
        buffer = torch.empty(self.rows, self.V, dtype=input.dtype, device=device)
        for start in range(0, self.N, self.rows):
            rows = min(self.rows, self.N - start)
            hidden = input[start:start + rows]
            logits = buffer[:rows]
            if bias is None:
                torch.mm(hidden, weight.t(), out=logits)
            else:
                torch.addmm(bias, hidden, weight.t(), out=logits)
            launch(logits, start, rows)
            if grad_input is not None:
                torch.mm(logits, weight, out=grad_input[start:start + rows])
            # the first chunk writes the sums, later ones add to them
            if grad_weight is not None:
                if start == 0:
                    torch.mm(logits.t(), hidden, out=grad_weight)
                else:
                    grad_weight.addmm_(logits.t(), hidden)
            if grad_bias is not None:
                if start == 0:
                    torch.sum(logits, 0, out=grad_bias)
                else:
                    grad_bias += logits.sum(0)
        return grad_input, grad_weight, grad_bias


class _FusedLinearCrossEntropy(torch.autograd.Function):
    """The autograd node (what its forward and backward compute: see the module doc)."""

    @staticmethod
    def forward(ctx, input, weight, target, bias, call):
        ctx.call = call
        ctx.wanted = ctx.needs_input_grad[0], ctx.needs_input_grad[1], bias is not None and ctx.needs_input_grad[3]
        if call.reduction == NONE:
            loss, _, stats = call.forward(input, weight, target, bias, (False, False, False), keep_stats=True)
            ctx.save_for_backward(input, weight, target, bias, stats)
        else:
            loss, ctx.grads, _ = call.forward(input, weight, target, bias, ctx.wanted)
            ctx.save_for_backward(input, weight, target, bias)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss):
        if ctx.call.reduction == NONE:
            grads = ctx.call.backward_rows(grad_loss, *ctx.saved_tensors, ctx.wanted)
        else:
            grads, ctx.grads = ctx.grads, None  # they serve one backward: a second one recomputes them
            if grads is None:
                grads = ctx.call.forward(*ctx.saved_tensors, ctx.wanted)[1]
            grads = [None if grad is None else grad.mul_(grad_loss) for grad in grads]
        grad_input, grad_weight, grad_bias = grads
        return grad_input, grad_weight, None, grad_bias, None


def _unsupported(input, weight, target, bias, ce_weight, ignore_index, label_smoothing, reduction, softcap):
    """Why the fused path does not take a call (None when it does)."""
    optional = [t for t in (bias, ce_weight) if t is not None]
    tensors = [input, weight, target, *optional]
    if not all(isinstance(t, torch.Tensor) for t in tensors):
        return "operand is not a tensor"
    if input.dim() != 2 or weight.dim() != 2 or input.shape[1] != weight.shape[1] or 0 in (*input.shape, *weight.shape):
        return "not non-empty hidden states [N, H] and weight [V, H]"
    N, V = input.shape[0], weight.shape[0]
    if input.dtype not in runtime.supported_float_dtypes() or weight.dtype != input.dtype:
        return "input and weight not of one supported float dtype"
    if bias is not None and (bias.shape != (V,) or bias.dtype != input.dtype):
        return "bias not a vector of V values of the input dtype"
    if target.dtype not in CLASS_TARGETS or target.shape != (N,):
        return "target not N class indices"
    if ce_weight is not None and (ce_weight.shape != (V,) or ce_weight.dtype != float_accumulator(input.dtype)
                                  or ce_weight.requires_grad):
        return "ce_weight not a constant vector of V values of the loss dtype"
    if not (isinstance(reduction, str) and reduction in REDUCTIONS and type(ignore_index) is int
            and type(label_smoothing) in (int, float) and 0 <= label_smoothing <= 1):
        return "reduction, ignore_index or label_smoothing not supported"
    if softcap is not None and not (type(softcap) in (int, float) and 0 < softcap < math.inf):
        return "softcap not a positive number"
    if not on_vendor_device(*tensors):
        return "operands on another device"
    if target.is_cpu and bad_class_targets(target, V, ignore_index):
        return "a target out of bounds"
    return None


def _unfused(input, weight, target, bias, ce_weight, ignore_index, label_smoothing, reduction, softcap):
    """What the fused path computes, composed of PyTorch's operators (its errors too)."""
    logits = F.linear(input, weight, bias)
    if logits.is_floating_point():
        logits = logits.to(float_accumulator(logits.dtype))
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    return F.cross_entropy(logits, target, ce_weight, ignore_index=ignore_index, reduction=reduction,
                           label_smoothing=label_smoothing)


def fused_linear_cross_entropy(input, weight, target, bias=None, *, ce_weight=None, ignore_index=-100,
                               label_smoothing=0.0, reduction="mean", softcap=None):
    """``F.cross_entropy(logits, target, ce_weight, ...)`` of ``logits = F.linear(input,
    weight, bias)`` upcast to fp32 (fp64 for fp64) and, with ``softcap``, capped to
    ``softcap * tanh(logits / softcap)``, for hidden states ``input`` [N, H], the lm_head
    ``weight`` [V, H] and class indices ``target`` [N]; without holding the [N, V] logits
    (see the module doc). Differentiable in input, weight and bias. Calls it does not take
    (other shapes or dtypes, ...) run that composition. The options are keyword-only:
    their names are Liger-Kernel's, their positions could not be (it has more)."""
    args = (input, weight, target, bias, ce_weight, ignore_index, label_smoothing, reduction, softcap)
    if _unsupported(*args) is not None:
        return _unfused(*args)
    if ce_weight is not None:
        ce_weight = ce_weight.contiguous()  # the kernels index it densely
    call = _Call(input, weight, ce_weight, ignore_index, float(label_smoothing), REDUCTIONS[reduction],
                 None if softcap is None else float(softcap))
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (input, weight, bias)):
        return _FusedLinearCrossEntropy.apply(input, weight, target, bias, call)
    return call.forward(input, weight, target, bias, (False, False, False))[0]


class FusedLinearCrossEntropyLoss(torch.nn.Module):
    """``fused_linear_cross_entropy`` as a loss module. Called as Liger-Kernel's
    ``LigerFusedLinearCrossEntropyLoss`` is: ``loss(lin_weight, input, target, bias=None)``."""

    def __init__(self, *, ce_weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean", softcap=None):
        super().__init__()
        self.register_buffer("ce_weight", ce_weight)
        self.ignore_index, self.label_smoothing, self.reduction, self.softcap = (
            ignore_index, label_smoothing, reduction, softcap)

    def forward(self, lin_weight, input, target, bias=None):
        return fused_linear_cross_entropy(input, lin_weight, target, bias, ce_weight=self.ce_weight,
                                          ignore_index=self.ignore_index, label_smoothing=self.label_smoothing,
                                          reduction=self.reduction, softcap=self.softcap)

    def extra_repr(self):
        return (f"ignore_index={self.ignore_index}, label_smoothing={self.label_smoothing}, "
                f"reduction={self.reduction!r}, softcap={self.softcap}")
