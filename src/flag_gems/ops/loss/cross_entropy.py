"""``cross_entropy_loss(input, target, weight, reduction, ignore_index, label_smoothing)``
(FlagGems' signature, called explicitly: aten's ``cross_entropy_loss`` is
CompositeImplicitAutograd and decomposes into ``_log_softmax`` and the nll rows), fused:
one pass over the logits forward, one backward (kernels in cross_entropy_kernels.py).

When the logits need a gradient and the loss is one number, the forward kernel also
writes the gradient for an incoming gradient of 1 (what ``loss.backward()`` and
``autograd.grad(loss, ...)`` pass): one kernel instead of a forward and a backward that
each read the logits from memory, and nothing left for the device to wait on across the
autograd engine's host hand-overs. A mean first gets its denominator (the counted
targets' weights) from a small kernel over the targets. The backward launches its
kernel with ``skip_when=1``: every program reads the real gradient and returns at once
when it is 1, and recomputes its rows otherwise (a scaled loss, a second backward of a
retained graph), so the result is always, bit for bit, the one the backward kernel
gives. The cost: a gradient-sized buffer held from the forward, and the second pass
wasted when no backward comes.

The backward runs in a Python ``autograd.Function`` until its kernel is known; then
later forwards of that layout attach a C++ node (``fastpath.attach_backward``), which
launches it with no Python in the autograd engine's thread.
"""

import math

import torch
from torch.autograd.function import once_differentiable

from ... import fastpath, runtime
from ...codegen.launch import Replay, layout_key, planned
from ...codegen.pointwise import TL_DTYPE
from ...utils.dtypes import float_accumulator
from ...utils.layout import INT32_LIMIT, cdiv, merge_dims, span
from .common import (CLASS_TARGETS, MEAN, NONE, REDUCTIONS, SECOND_PASS, SUM, bad_class_targets,
                     on_vendor_device, one_sample_mean_rule, second_pass_constexprs)
from .cross_entropy_kernels import (CE_BACKWARD, CE_FORWARD, CE_WEIGHT, cross_entropy_backward_config,
                                    cross_entropy_config, cross_entropy_with_grad_config)

__all__ = ["cross_entropy_loss"]


def _row_strides(tensor, keep):
    """Strides (of dim 0, of the merged dims from ``keep`` on) that address ``tensor``
    as [size(0), rest], or None when those dims do not merge into one stride."""
    merged = merge_dims(tensor.shape[keep:], tensor.stride()[keep:])
    return None if merged is None else (tensor.stride(0), merged[1])


def _ce_layout(input, target, probs):
    """(input, target, N, C, K, input strides (n, c, k), target strides (n, c, k)); the
    dims after the class dim merged into one (a copy only where they cannot be)."""
    if input.dim() == 1:
        return input, target, 1, input.shape[0], 1, (0, input.stride(0), 0), (0, target.stride(0) if probs else 0, 0)
    N, C = input.shape[:2]
    K = math.prod(input.shape[2:])

    def strides(tensor, class_dim):
        merged = _row_strides(tensor.movedim(class_dim, 0)[0] if class_dim is not None else tensor, 1)
        if merged is None:
            return None
        return merged[0], tensor.stride(class_dim) if class_dim is not None else 0, merged[1]

    x_strides = strides(input, 1)
    if x_strides is None:
        input = input.contiguous()
        x_strides = strides(input, 1)
    t_strides = strides(target, 1 if probs else None)
    if t_strides is None:
        target = target.contiguous()
        t_strides = strides(target, 1 if probs else None)
    return input, target, N, C, K, x_strides, t_strides


class _CeForward:
    """What a cross-entropy forward decides from its operands' layout (which copies, the
    kernels' view and config, grids, buffer sizes), replayed by later calls of that
    layout; ``backward`` keeps the backward's plans per gradient layout."""

    __slots__ = ("copy_input", "copy_target", "acc", "scratch_size", "partials_at", "out_shape", "ints",
                 "plain", "with_grad", "M", "C", "K", "x_strides", "t_strides", "index64", "backward", "cpp_backward",
                 "params")

    def __init__(self, input, target, weight, reduction, ignore_index, smoothing):
        probs = target.is_floating_point()
        laid_input, laid_target, N, C, K, x_strides, t_strides = _ce_layout(input, target, probs)
        self.copy_input, self.copy_target = laid_input is not input, laid_target is not target
        M = N * K
        self.M, self.C, self.K, self.x_strides, self.t_strides = M, C, K, x_strides, t_strides
        self.acc = float_accumulator(input.dtype)
        if reduction == NONE:
            self.out_shape = target.shape if not probs else input.shape[:1] + input.shape[2:] if input.dim() > 1 else ()
        else:
            self.out_shape = ()
        self.index64 = max(span(laid_input), span(laid_target), M * C) >= INT32_LIMIT
        # the backward still divides by the weight the forward leaves in scratch, as for a mean
        one_sample = not probs and smoothing == 0 and one_sample_mean_rule(input, reduction)
        self.ints = (M, C, K, *x_strides, *t_strides, ignore_index)
        mean, acc = reduction == MEAN, TL_DTYPE[self.acc]

        def launches(name, default, grad):
            """(weigh, forward, finish, programs): the launches of a forward without or
            with (``grad``) the gradient for an incoming 1; see the module doc."""
            block_m, block_c, warps, one_tile = runtime.config(name, default)(M, C, x_strides[1] == 1)
            programs = max(cdiv(M, block_m), 1)
            finish = programs == 1
            forward = Replay(CE_FORWARD, (programs,), dict(
                REDUCTION=SUM if one_sample else reduction, PROBS=probs, SMOOTH=smoothing > 0 and not probs,
                SPREAD=probs or smoothing > 0, HAS_WEIGHT=weight is not None, ONE_SAMPLE=one_sample, FINISH=finish,
                ONE_TILE=one_tile, GRAD=grad, GRAD_MEAN=grad and mean, SOFTCAP=None, BLOCK_M=block_m, BLOCK_C=block_c,
                ACC=acc, INDEX64=self.index64, num_warps=warps))
            weigh = None if not (grad and mean and not finish) else Replay(CE_WEIGHT, (1,), dict(
                PROBS=probs, HAS_WEIGHT=weight is not None, BLOCK=1024, ACC=acc, INDEX64=self.index64, num_warps=4))
            finish = None if reduction == NONE or finish else Replay(SECOND_PASS, (1,), second_pass_constexprs(
                programs, mean, True, self.acc, weighed=weigh is not None))
            return weigh, forward, finish, programs

        self.plain = launches("cross_entropy", cross_entropy_config, False)
        self.with_grad = None if reduction == NONE else launches(
            "cross_entropy_with_grad", cross_entropy_with_grad_config, True)
        programs = max(self.plain[3], self.with_grad[3] if self.with_grad else 0)
        extra = 2 * programs if reduction != NONE and programs > 1 else 0
        # per-row log-sum-exp and sum(q), the mean's denominator, then the partial sums
        self.scratch_size = 2 * M + 1 + extra
        self.partials_at = 2 * M + 1 if extra else 0
        self.backward = {}
        self.cpp_backward = None  # the C++ backward node's spec (see _cpp_backward); -1: none can be had
        self.params = (reduction, ignore_index, smoothing)

    def __call__(self, input, target, weight, smoothing, with_grad=False):
        """(loss, what the backward reads: input, target, scratch, weight as the kernels
        saw them, and with_grad where the loss is one number: its gradient for an incoming
        1, else None)."""
        if self.copy_input:
            input = input.contiguous()
        if self.copy_target:
            target = target.contiguous()
        if weight is not None:
            weight = weight.contiguous()  # C values: the kernels index it densely
        scratch = torch.empty(self.scratch_size, dtype=self.acc, device=input.device)
        partials = scratch[self.partials_at:] if self.partials_at else scratch
        out = torch.empty(self.out_shape, dtype=input.dtype, device=input.device)
        w = weight if weight is not None else input
        grad = None
        weigh, launch, finish, programs = self.plain
        if with_grad and self.with_grad is not None:
            weigh, launch, finish, programs = self.with_grad
            grad = torch.empty(input.shape, dtype=input.dtype, device=input.device)
        if finish is not None:  # (a view costs host time: made only where read; weigh comes with finish)
            M = self.M
            total_weight = scratch[2 * M:2 * M + 1]
            if weigh is not None:
                weigh(target, w, total_weight, M, self.C, self.K, self.t_strides[0], self.t_strides[2],
                      self.ints[-1])
        launch(input, target, w, out, scratch, partials, input if grad is None else grad, *self.ints, smoothing)
        if finish is not None:
            finish(partials, out, total_weight, programs, 0)
        return out, (input, target, scratch, weight), grad


class _CeBackward:
    """The backward's launch for one forward plan and one gradient layout."""

    __slots__ = ("copy_grad", "empty", "launch", "ints")

    def __init__(self, forward, grad, reduction, ignore_index, smoothing, probs, has_weight):
        M, C = forward.M, forward.C
        block_m, block_c, warps = runtime.config("cross_entropy_backward", cross_entropy_backward_config)(
            M, C, forward.x_strides[1] == 1)
        self.empty = M == 0 or C == 0
        self.copy_grad = False
        g_strides = (0, 0)
        if reduction == NONE and grad.dim() > 0:
            g_strides = _row_strides(grad, 1)
            if g_strides is None:
                self.copy_grad = True
                g_strides = _row_strides(grad.contiguous(), 1)
        self.ints = (M, C, forward.K, *forward.x_strides, *forward.t_strides, *g_strides, ignore_index)
        self.launch = Replay(CE_BACKWARD, (cdiv(M, block_m),), dict(
            MEAN=reduction == MEAN, PROBS=probs, SMOOTH=smoothing > 0 and not probs, SPREAD=probs or smoothing > 0,
            HAS_WEIGHT=has_weight, SOFTCAP=None, BLOCK_M=block_m, BLOCK_C=block_c, ACC=TL_DTYPE[forward.acc],
            INDEX64=forward.index64, num_warps=warps))

    def __call__(self, grad, input, target, scratch, weight, smoothing, speculated=None):
        """The gradient; ``speculated``: the forward's gradient for an incoming 1, made
        right where ``grad`` is not 1."""
        if speculated is not None:
            grad_input, skip_when = speculated, 1.0
        else:
            grad_input, skip_when = torch.empty(input.shape, dtype=input.dtype, device=input.device), math.nan
        if self.empty:
            return grad_input
        if self.copy_grad:
            grad = grad.contiguous()
        self.launch(input, target, weight if weight is not None else input, grad, scratch, grad_input, *self.ints,
                    smoothing, skip_when)
        return grad_input


_ce_plans = {}


def _ce_plan(input, target, weight, reduction, ignore_index, smoothing):
    key = (layout_key(input), input.device, layout_key(target), layout_key(weight), reduction, ignore_index, smoothing)
    return planned(_ce_plans, key, lambda: _CeForward(input, target, weight, reduction, ignore_index, smoothing))


def _ce_backward(grad, forward, saved, speculated=None):
    """The gradient of ``forward``'s loss for the incoming ``grad``, completing
    ``speculated`` (the forward's gradient for an incoming 1; the loss is then one
    number, and so is ``grad``) where given."""
    input, target, scratch, weight = saved
    reduction, ignore_index, smoothing = forward.params
    plan = planned(forward.backward, layout_key(grad), lambda: _CeBackward(
        forward, grad, reduction, ignore_index, smoothing, target.is_floating_point(), weight is not None))
    grad_input = plan(grad, input, target, scratch, weight, smoothing, speculated)
    if forward.cpp_backward is None:
        spec = _cpp_backward(forward, plan, grad, grad_input, saved)
        forward.cpp_backward = -1 if spec is None else spec
    return grad_input


def _once_differentiable(grad_input, grad):
    """``grad_input`` as torch.autograd.function.once_differentiable returns it from a
    backward that builds a graph: differentiating it again raises."""
    if not (torch.is_grad_enabled() and grad.requires_grad):
        return grad_input
    error = torch._C._functions.DelayedError(
        b"trying to differentiate twice a function that was marked with @once_differentiable", 1)
    return error(grad_input.detach().requires_grad_())


def _cpp_backward(forward, plan, grad, grad_input, saved):
    """The spec of a C++ autograd node that launches ``plan``'s kernel (fastpath.register_backward)
    for forward calls of ``forward``'s layout, which ``plan`` just served, its ``skip_when``
    set per launch; None where the wrappers are not built, or the call is one the node
    would not cover: a loss with one value per sample, or a forward that copied its
    operands (then the copy is a graph node)."""
    input, target, scratch, weight = saved
    if grad.dim() != 0 or plan.empty or forward.copy_input or forward.copy_target:
        return None
    has_weight = weight is not None
    args = (input, target, weight if has_weight else input, grad, scratch, grad_input, *plan.ints, forward.params[2],
            math.nan)
    compiled = plan.launch.launcher.compiled_for(args, plan.launch.constexprs)
    if compiled is None:
        return None

    def python_backward(grad, input, target, weight, scratch):
        grad_input = _ce_backward(grad, forward, (input, target, scratch, weight if has_weight else None))
        return _once_differentiable(grad_input, grad)

    # kernel_backward.cpp's slots: the saved input, target, weight, scratch (0-3), the gradient, the result
    return fastpath.register_backward(compiled, plan.launch.grid, args, (0, 1, 2, 4, 3, 5), grad,
                                      python_backward, skip_at=len(args) - 1)


class _CrossEntropy(torch.autograd.Function):
    """The Python node, for a ``plan`` (``_ce_plan``) until its backward kernel is known to C++."""

    @staticmethod
    def forward(ctx, input, target, weight, plan, smoothing):
        loss, saved, ctx.speculated = plan(input, target, weight, smoothing, with_grad=True)
        ctx.plan = plan
        ctx.save_for_backward(*saved)  # input, target, scratch, weight as the kernels read them
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        speculated, ctx.speculated = ctx.speculated, None  # serves one backward: a second one recomputes
        grad_input = _ce_backward(grad, ctx.plan, ctx.saved_tensors, speculated)
        return grad_input, None, None, None, None


def _cross_entropy_unsupported(input, target, weight, reduction, ignore_index, smoothing):
    if not (isinstance(input, torch.Tensor) and isinstance(target, torch.Tensor)):
        return "operand is not a tensor"
    if (input.dtype not in runtime.supported_float_dtypes() or input.dim() == 0
            or reduction not in (NONE, MEAN, SUM)):
        return "input dtype, rank or reduction not supported"
    if type(ignore_index) is not int or type(smoothing) not in (int, float) or not 0 <= smoothing <= 1:
        return "ignore_index or label_smoothing not supported"
    classes = input.shape[input.dim() > 1]
    if classes == 0 or target.requires_grad:
        return "no classes, or a target that needs a gradient"
    if weight is not None and (not isinstance(weight, torch.Tensor) or weight.dim() != 1
                               or weight.numel() != classes or weight.dtype != input.dtype
                               or weight.requires_grad):
        return "weight is not a constant vector of the class count and input dtype"
    if not on_vendor_device(input, target, *([weight] if weight is not None else [])):
        return "operands on another device"
    if target.is_floating_point():
        if target.shape != input.shape or target.dtype != input.dtype or ignore_index >= 0:
            return "probability target not of the input's shape and dtype"
        return None
    expected = input.shape[:1] + input.shape[2:] if input.dim() > 1 else ()
    if target.dtype not in CLASS_TARGETS or target.shape != expected:
        return "class target not Long/Byte of the input's shape without the class dim"
    if target.is_cpu and bad_class_targets(target, classes, ignore_index):
        return "a target out of bounds"
    return None


def cross_entropy_loss(input, target, weight=None, reduction="mean", ignore_index=-100, label_smoothing=0.0):
    """Cross entropy of logits ``input`` ([C], [N, C] or [N, C, d1, ...]) and class
    indices or class probabilities ``target``, as ``F.cross_entropy``, in one pass
    over the logits (differentiable in ``input``). ``reduction`` is "none", "mean",
    "sum" or aten's enum value. Inputs the kernels do not take go to
    ``F.cross_entropy``."""
    reduction_enum = REDUCTIONS.get(reduction, reduction) if isinstance(reduction, str) else reduction
    if _cross_entropy_unsupported(input, target, weight, reduction_enum, ignore_index, label_smoothing) is not None:
        name = {v: k for k, v in REDUCTIONS.items()}.get(reduction_enum, reduction)
        return torch.nn.functional.cross_entropy(input, target, weight, ignore_index=ignore_index, reduction=name,
                                                 label_smoothing=label_smoothing)
    smoothing = float(label_smoothing)
    plan = _ce_plan(input, target, weight, reduction_enum, ignore_index, smoothing)
    if not (torch.is_grad_enabled() and input.requires_grad):
        return plan(input, target, weight, smoothing)[0]
    if plan.cpp_backward is None or plan.cpp_backward < 0:
        return _CrossEntropy.apply(input, target, weight, plan, smoothing)
    # A C++ backward node: no Python in the autograd engine's thread (see fastpath/csrc/kernel_backward.cpp).
    loss, saved, speculated = plan(input, target, weight, smoothing, with_grad=True)
    saved_input, saved_target, scratch, saved_weight = saved
    return fastpath.attach_backward(
        loss, input, [saved_input, saved_target, saved_input if saved_weight is None else saved_weight, scratch],
        plan.cpp_backward, "FlagGemsCrossEntropyBackward", speculated)


