"""``nll_loss_forward`` / ``nll_loss_backward`` for input [C] or [N, C], and
``nll_loss2d_forward`` / ``nll_loss2d_backward`` for [N, C, H, W] (leaf aten rows;
autograd stays PyTorch's).

PyTorch's ``nll_loss_nd`` (what ``F.nll_loss`` and ``F.cross_entropy`` call) sends 1-d
and 2-d input to the first pair, 4-d input to the second, and reshapes 3-d or >4-d
input to [N, C, 1, -1] for the second. The forward gathers one value per target and
sums deterministically (per-program partial sums, then one program); the backward
writes the whole gradient (zeros and the target column) in one pass.

Targets outside [0, C) (other than ignore_index): native CPU raises IndexError and
native CUDA stops on a device assert. Here, on the CPU device, the targets are checked
on the host and such calls go native (so the IndexError is raised); on an accelerator
a check would cost a device synchronisation, so the kernels mask those loads instead
(no out-of-bounds access) and the loss they give is NaN (its weight too, so a mean or
total_weight is NaN as well); the gradient row of such a target is left zero.
"""

import torch
import triton
import triton.language as tl

from ... import runtime
from ...codegen.launch import Launcher, Replay, layout_key, planned
from ...codegen.pointwise import TL_DTYPE
from ...codegen.tl_math import ieee_div
from ...dispatch import aten_rows
from ...utils.dtypes import float_accumulator
from ...utils.layout import INT32_LIMIT, cdiv, next_power_of_2, span
from .common import (CLASS_TARGETS, MEAN, NONE, SECOND_PASS, SUM, bad_class_targets,
                     on_vendor_device, one_sample_mean_rule, second_pass_constexprs)
from .common import one_sample_mean as _one_sample_mean, store_reduced as _store_reduced  # as the kernels call them

__all__ = ["nll_loss_forward", "nll_loss_backward", "nll_loss2d_forward", "nll_loss2d_backward"]

@triton.jit
def _nll_forward_kernel(x, target, weight, out, total_weight, partials, pixels, C, H, W,
                        sx_n, sx_c, sx_h, sx_w, st_n, st_h, st_w, s_weight, ignore_index, per_program,
                        REDUCTION: tl.constexpr, HAS_WEIGHT: tl.constexpr, ONE_SAMPLE: tl.constexpr,
                        FINISH: tl.constexpr, BLOCK: tl.constexpr, ACC: tl.constexpr, INDEX64: tl.constexpr):
    """-weight[t] * x[n, t, h, w] per pixel (n, h, w); REDUCTION 0 stores each, else sums
    the loss and weight of this program's pixels. ONE_SAMPLE (with REDUCTION 2): the
    loss is ``_one_sample_mean``'s."""
    pid = tl.program_id(0)
    if INDEX64:
        pid = pid.to(tl.int64)
    start = pid * per_program
    loss_acc = tl.zeros([BLOCK], ACC)
    weight_acc = tl.zeros([BLOCK], ACC)
    for offset in range(0, per_program, BLOCK):
        p = start + offset + tl.arange(0, BLOCK)
        mask = p < pixels
        w_index = p % W
        rest = p // W
        h = rest % H
        n = rest // H
        t = tl.load(target + n * st_n + h * st_h + w_index * st_w, mask=mask, other=0).to(tl.int64)
        active = mask & (t != ignore_index)
        in_range = (t >= 0) & (t < C)
        hit = active & in_range
        v = tl.load(x + n * sx_n + t * sx_c + h * sx_h + w_index * sx_w, mask=hit, other=0).to(ACC)
        if HAS_WEIGHT:
            wt = tl.load(weight + t * s_weight, mask=hit, other=0).to(ACC)
        else:
            wt = hit.to(ACC)
        wt = tl.where(active & ~in_range, float("nan"), wt)  # see the module doc: no assert, a NaN
        if ONE_SAMPLE:
            loss = tl.where(active, _one_sample_mean(-v, hit, wt), 0)
        else:
            loss = tl.where(active, -(v * wt), 0)
        if REDUCTION == 0:
            tl.store(out + p, loss.to(out.dtype.element_ty), mask=mask)
        else:
            loss_acc += loss
            weight_acc += wt
    if REDUCTION == 0:
        if pid == 0:
            tl.store(total_weight, tl.zeros([], total_weight.dtype.element_ty))
    elif FINISH:
        _store_reduced(out, total_weight, tl.sum(loss_acc, 0), tl.sum(weight_acc, 0), REDUCTION == 1, True)
    else:
        tl.store(partials + pid, tl.sum(loss_acc, 0))
        tl.store(partials + tl.num_programs(0) + pid, tl.sum(weight_acc, 0))


@triton.jit
def _nll_backward_kernel(grad_out, target, weight, total_weight, grad_in, C, H, W,
                         sg_n, sg_h, sg_w, st_n, st_h, st_w, s_weight, si_n, si_c, si_k, ignore_index,
                         MEAN: tl.constexpr, HAS_WEIGHT: tl.constexpr, BLOCK_C: tl.constexpr,
                         BLOCK_K: tl.constexpr, ACC: tl.constexpr, INDEX64: tl.constexpr):
    """A [BLOCK_C, BLOCK_K] tile of the gradient of sample n: zero but at each pixel's target."""
    pid = tl.program_id(0)
    K = H * W
    k_blocks = tl.cdiv(K, BLOCK_K)
    n = pid // k_blocks
    k = (pid % k_blocks) * BLOCK_K + tl.arange(0, BLOCK_K)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    if INDEX64:
        n = n.to(tl.int64)
        k = k.to(tl.int64)
        c = c.to(tl.int64)
    k_mask = k < K
    h = k // W
    w_index = k % W
    t = tl.load(target + n * st_n + h * st_h + w_index * st_w, mask=k_mask, other=0).to(tl.int64)
    hit = k_mask & (t != ignore_index) & (t >= 0) & (t < C)
    g = tl.load(grad_out + n * sg_n + h * sg_h + w_index * sg_w, mask=hit, other=0).to(ACC)
    if HAS_WEIGHT:
        g = g * tl.load(weight + t * s_weight, mask=hit, other=0).to(ACC)
    if MEAN:
        g = ieee_div(g, tl.load(total_weight).to(ACC))
    value = tl.where(hit, -g, 0)
    tile = tl.where(c[:, None] == t[None, :], value[None, :], 0)
    mask = (c < C)[:, None] & k_mask[None, :]
    tl.store(grad_in + n * si_n + c[:, None] * si_c + k[None, :] * si_k, tile.to(grad_in.dtype.element_ty),
             mask=mask)


_NLL_FORWARD = Launcher(_nll_forward_kernel)
_NLL_BACKWARD = Launcher(_nll_backward_kernel)


def _nll_geometry(self, target):
    """(N, C, H, W, input strides, target strides) for input [C], [N, C] or [N, C, H, W]."""
    if self.dim() == 1:
        return 1, self.shape[0], 1, 1, (0, self.stride(0), 0, 0), (0, 0, 0)
    if self.dim() == 2:
        return (*self.shape, 1, 1, (*self.stride(), 0, 0), (target.stride(0), 0, 0))
    return (*self.shape, self.stride(), target.stride())


def nll_forward_config(pixels, device):
    """(BLOCK, programs) of the nll forward for a reduction over ``pixels`` targets."""
    block = min(max(next_power_of_2(pixels), 16), 1024)
    if pixels <= 8 * block:
        return block, 1  # a gather this small: one program and no second launch
    return block, min(cdiv(pixels, block), 2 * runtime.multiprocessor_count(device.index or 0))


class _NllForward:
    """What an nll forward decides from its operands' layout (output shape, grid, partial
    sums, int arguments), replayed by later calls of that layout."""

    __slots__ = ("out_shape", "acc", "partials", "programs", "ints", "launch", "finish")

    def __init__(self, self_, target, weight, reduction, ignore_index):
        N, C, H, W, x_strides, t_strides = _nll_geometry(self_, target)
        pixels = N * H * W
        elementwise = reduction == NONE and self_.dim() >= 2
        one_sample = one_sample_mean_rule(self_, reduction)
        if not elementwise and reduction == NONE or one_sample:
            reduction = SUM  # 1-d input: one sample, aten returns its loss as a 0-d tensor
        self.out_shape = target.shape if elementwise else ()
        self.acc = float_accumulator(self_.dtype)
        if elementwise:
            block = min(max(next_power_of_2(pixels), 16), 1024)
            programs, per_program = max(cdiv(pixels, block), 1), block
        else:
            block, programs = runtime.config("nll_loss_forward", nll_forward_config)(pixels, self_.device)
            per_program = max(cdiv(cdiv(pixels, programs), block), 1) * block
            programs = max(cdiv(pixels, per_program), 1)
        finish = not elementwise and programs == 1
        self.programs = programs
        self.partials = None if elementwise or finish else 2 * programs  # into the output itself if None
        self.ints = (pixels, C, H, W, *x_strides, *t_strides, weight.stride(0) if weight is not None else 0,
                     ignore_index, per_program)
        index64 = max(span(self_), span(target), pixels + per_program) >= INT32_LIMIT
        self.launch = Replay(_NLL_FORWARD, (programs,), dict(
            REDUCTION=reduction, HAS_WEIGHT=weight is not None, ONE_SAMPLE=one_sample, FINISH=finish, BLOCK=block,
            ACC=TL_DTYPE[self.acc], INDEX64=index64, num_warps=4))
        self.finish = None if self.partials is None else Replay(
            SECOND_PASS, (1,), second_pass_constexprs(programs, reduction == MEAN, True, self.acc))

    def __call__(self, self_, target, weight, output, total_weight):
        if output is None:
            output = torch.empty(self.out_shape, dtype=self_.dtype, device=self_.device)
        if total_weight is None:
            total_weight = torch.empty((), dtype=self_.dtype, device=self_.device)
        partials = output if self.partials is None else torch.empty(self.partials, dtype=self.acc,
                                                                      device=self_.device)
        self.launch(self_, target, weight if weight is not None else self_, output, total_weight, partials,
                    *self.ints)
        if self.finish is not None:
            self.finish(partials, output, total_weight, self.programs, 0)
        return output, total_weight


_nll_plans = {}


def _nll_forward(self, target, weight, reduction, ignore_index, output, total_weight):
    key = ("forward", layout_key(self), self.device, layout_key(target), layout_key(weight), reduction, ignore_index,
           layout_key(output), layout_key(total_weight))
    plan = planned(_nll_plans, key, lambda: _NllForward(self, target, weight, reduction, ignore_index))
    return plan(self, target, weight, output, total_weight)


def nll_backward_config(C, K, class_contiguous):
    """(BLOCK_C, BLOCK_K, num_warps) of a gradient tile; the contiguous dim gets the long side."""
    if class_contiguous:
        block_c = min(next_power_of_2(C), 1024)
        return block_c, min(next_power_of_2(K), max(1, 4096 // block_c)), 4
    block_k = min(next_power_of_2(K), 256)
    return min(next_power_of_2(C), max(1, 4096 // block_k)), block_k, 4


class _NllBackward:
    """The nll backward's launch for one operand layout."""

    __slots__ = ("into_given", "launch", "ints")

    def __init__(self, grad_output, self_, target, weight, reduction, ignore_index, grad_input):
        N, C, H, W, _, t_strides = _nll_geometry(self_, target)
        self.into_given = grad_input is not None and grad_input.is_contiguous()
        if self_.dim() == 4:
            g_strides = grad_output.stride() if reduction == NONE else (0, 0, 0)
            geometry = (N, H, W, (C * H * W, H * W, 1))
        else:
            # [C] or [N, C]: the samples become the pixels of one image (a row of W = N).
            t_strides = (0, 0, t_strides[0])
            g_strides = (0, 0, grad_output.stride(0) if reduction == NONE and self_.dim() == 2 else 0)
            geometry = (1, 1, N, (0, 1, C))
        images, H, W, i_strides = geometry
        K = H * W
        self.launch = None
        if self_.numel() > 0:
            block_c, block_k, warps = runtime.config("nll_loss_backward", nll_backward_config)(
                C, K, i_strides[1] == 1)
            index64 = max(self_.numel(), span(target), span(grad_output)) >= INT32_LIMIT
            self.ints = (C, H, W, *g_strides, *t_strides, weight.stride(0) if weight is not None else 0, *i_strides,
                         ignore_index)
            self.launch = Replay(_NLL_BACKWARD, (images * cdiv(K, block_k), cdiv(C, block_c)), dict(
                MEAN=reduction == MEAN, HAS_WEIGHT=weight is not None, BLOCK_C=block_c, BLOCK_K=block_k,
                ACC=TL_DTYPE[float_accumulator(self_.dtype)], INDEX64=index64, num_warps=warps))

    def __call__(self, grad_output, self_, target, weight, total_weight, grad_input):
        result = grad_input if self.into_given else torch.empty(self_.shape, dtype=self_.dtype,
                                                                 device=self_.device)
        if self.launch is not None:
            self.launch(grad_output, target, weight if weight is not None else self_, total_weight, result,
                        *self.ints)
        if grad_input is not None and result is not grad_input:
            return grad_input.copy_(result)
        return result


def _nll_backward(grad_output, self, target, weight, reduction, ignore_index, total_weight, grad_input):
    key = ("backward", layout_key(grad_output), layout_key(self), self.device, layout_key(target), layout_key(weight),
           reduction, ignore_index, layout_key(total_weight), layout_key(grad_input))
    plan = planned(_nll_plans, key, lambda: _NllBackward(grad_output, self, target, weight, reduction, ignore_index,
                                                         grad_input))
    return plan(grad_output, self, target, weight, total_weight, grad_input)


def nll_loss_forward(self, target, weight, reduction, ignore_index, *, output=None, total_weight=None):
    """(loss, total_weight) of input [C] or [N, C] (log-probabilities) and class targets."""
    return _nll_forward(self, target, weight, reduction, ignore_index, output, total_weight)


def nll_loss2d_forward(self, target, weight, reduction, ignore_index, *, output=None, total_weight=None):
    """(loss, total_weight) of input [N, C, H, W] and targets [N, H, W]."""
    return _nll_forward(self, target, weight, reduction, ignore_index, output, total_weight)


def nll_loss_backward(grad_output, self, target, weight, reduction, ignore_index, total_weight, *,
                      grad_input=None):
    return _nll_backward(grad_output, self, target, weight, reduction, ignore_index, total_weight, grad_input)


def nll_loss2d_backward(grad_output, self, target, weight, reduction, ignore_index, total_weight, *,
                        grad_input=None):
    return _nll_backward(grad_output, self, target, weight, reduction, ignore_index, total_weight, grad_input)


def _nll_inputs_unsupported(self, target, weight, reduction, ignore_index, image):
    if not all(isinstance(t, torch.Tensor) for t in (self, target)):
        return "operand is not a tensor"
    if self.dtype not in runtime.supported_float_dtypes():
        return f"dtype {self.dtype} is not supported"
    if target.dtype not in CLASS_TARGETS:
        return "target dtype is not Long or Byte (native raises)"
    if image:
        if self.dim() != 4 or target.dim() != 3 or target.shape != (self.shape[0], *self.shape[2:]):
            return "input/target shapes are not [N, C, H, W] / [N, H, W]"
    elif self.dim() not in (1, 2) or target.dim() != self.dim() - 1 or (
            self.dim() == 2 and target.shape[0] != self.shape[0]):
        return "input/target shapes are not [C] / [] or [N, C] / [N]"
    if weight is not None and (not isinstance(weight, torch.Tensor) or weight.dim() != 1
                               or weight.numel() != self.shape[self.dim() > 1] or weight.dtype != self.dtype):
        return "weight is not a vector of the class count and input dtype"
    if not on_vendor_device(self, target, *([weight] if weight is not None else [])):
        return "operands on another device"
    if reduction not in (NONE, MEAN, SUM) or type(ignore_index) is not int:
        return "reduction or ignore_index not supported"
    classes = self.shape[self.dim() > 1]
    if classes == 0:
        return "no classes"
    if target.is_cpu and bad_class_targets(target, classes, ignore_index):
        return "a target out of bounds (native raises)"
    return None


def _nll_forward_unsupported(image):
    def unsupported(self, target, weight, reduction, ignore_index, *, output=None, total_weight=None):
        reason = _nll_inputs_unsupported(self, target, weight, reduction, ignore_index, image)
        if reason is None and output is not None:
            shape = target.shape if reduction == NONE and self.dim() >= 2 else ()
            for given, expected in ((output, shape), (total_weight, ())):
                if given.shape != expected or given.dtype != self.dtype or given.device != self.device:
                    return "output or total_weight needs a resize or a cast"
        return reason

    return unsupported


def _nll_backward_unsupported(image):
    def unsupported(grad_output, self, target, weight, reduction, ignore_index, total_weight, *,
                    grad_input=None):
        reason = _nll_inputs_unsupported(self, target, weight, reduction, ignore_index, image)
        if reason is not None:
            return reason
        tensors = (grad_output, total_weight)
        if not all(isinstance(t, torch.Tensor) for t in tensors) or not on_vendor_device(self, *tensors):
            return "grad_output or total_weight not a tensor on the input's device"
        if grad_output.dtype != self.dtype or total_weight.dtype != self.dtype or total_weight.numel() != 1:
            return "grad_output or total_weight of another dtype or size"
        expected = target.shape if reduction == NONE and self.dim() >= 2 else ()
        if grad_output.shape != expected and not (expected == () and grad_output.numel() == 1
                                                  and grad_output.dim() <= 1):
            return "grad_output of an unexpected shape"
        if grad_output.dim() == 1 and expected == ():
            return "grad_output of shape [1]"
        if grad_input is not None and (grad_input.shape != self.shape or grad_input.dtype != self.dtype
                                       or grad_input.device != self.device):
            return "grad_input needs a resize or a cast"
        return None

    return unsupported


ATEN = tuple(
    aten_rows("nll_loss_forward", nll_loss_forward, _nll_forward_unsupported(False), ("", "output"))
    + aten_rows("nll_loss_backward", nll_loss_backward, _nll_backward_unsupported(False), ("", "grad_input"))
    + aten_rows("nll_loss2d_forward", nll_loss2d_forward, _nll_forward_unsupported(True), ("", "output"))
    + aten_rows("nll_loss2d_backward", nll_loss2d_backward, _nll_backward_unsupported(True), ("", "grad_input"))
)
