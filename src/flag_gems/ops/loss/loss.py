"""Losses, forward and backward, and the fused ``cross_entropy_loss``.

Rows (leaf aten overloads; autograd stays PyTorch's):

- ``nll_loss_forward`` / ``nll_loss_backward`` for input [C] or [N, C], and
  ``nll_loss2d_forward`` / ``nll_loss2d_backward`` for [N, C, H, W]. PyTorch's
  ``nll_loss_nd`` (what ``F.nll_loss`` and ``F.cross_entropy`` call) sends 1-d and
  2-d input to the first pair, 4-d input to the second, and reshapes 3-d or >4-d
  input to [N, C, 1, -1] for the second. The forward gathers one value per target
  and sums deterministically (per-program partial sums, then one program); the
  backward writes the whole gradient (zeros and the target column) in one pass.
- ``mse_loss``, ``smooth_l1_loss``, ``huber_loss``, ``binary_cross_entropy``,
  ``binary_cross_entropy_with_logits`` (CompositeExplicitAutograd with its own
  autograd formula, so a backend kernel may take it) and the backward rows of
  the first four. reduction='none' and the backward rows are ``Elementwise``
  operators of the loss formula; 'mean'/'sum' evaluate the same formula inside a
  reduction kernel, so the unreduced loss is never written.

``kl_div``, ``l1_loss``, ``cross_entropy_loss`` and ``nll_loss(_nd)`` are
CompositeImplicitAutograd in aten: they decompose into the rows above and
other operators (``_log_softmax``, ``mul``, ``sum``...), ours or native.

Targets outside [0, C) (other than ignore_index): native CPU raises IndexError and
native CUDA stops on a device assert. Here, on the CPU device, the targets are
checked on the host and such calls go native (so the IndexError is raised); on an
accelerator a check would cost a device synchronisation, so the kernels mask those
loads instead (no out-of-bounds access) and the loss they give is NaN (its weight
too, so a mean or total_weight is NaN as well); the gradient row of such a target
is left zero. ``binary_cross_entropy`` likewise checks inputs and targets in [0, 1]
on the CPU device only.

The mean of a single sample (input [C]) differs between aten's devices: CPU divides
the weighted loss by the weight (NaN when the target is ignored), CUDA gives the
unweighted loss (0 when ignored, NaN at a zero weight). Each device gets its own.

``cross_entropy_loss(input, target, weight, reduction, ignore_index,
label_smoothing)`` (FlagGems' signature) reads the logits once per row (running
max and sum of exponentials per lane), for class-index or probability targets, with
label smoothing, weight, ignore_index and every reduction, without writing
log-probabilities; its backward recomputes softmax from the logits and the saved
per-row log-sum-exp, writing the gradient in one pass.

When the logits need a gradient and the loss is one number, the forward kernel also
writes the gradient for an incoming gradient of 1 (what ``loss.backward()`` and
``autograd.grad(loss, ...)`` pass), reading each row a second time right after its
first pass (from L2): one kernel instead of a forward and a backward that each read
the logits from memory, and nothing left for the device to wait on across the
autograd engine's host hand-overs. A mean first gets its denominator (the counted
targets' weights) from a small kernel over the targets. The backward launches its
kernel with ``skip_when=1``: every program reads the real gradient and returns at
once when it is 1, and recomputes its rows otherwise (a scaled loss, a second
backward of a retained graph), so the result is always, bit for bit, the one the
backward kernel gives. The cost: a gradient-sized buffer held from the forward, and
the second pass wasted when no backward comes.
"""

import math

import numpy
import torch
import triton
import triton.language as tl
from torch.autograd.function import once_differentiable

from ... import runtime
from ... import fastpath
from ...codegen.elementwise import Elementwise
from ...utils.layout import broadcast_shape
from ...codegen.launch import Launcher, Replay, fp32_exact, layout_key, planned
from ...utils.layout import cdiv, next_power_of_2
from ...codegen.pointwise import TL_DTYPE
from ...utils.dtypes import COMPUTE_DTYPE
from ...dispatch import Row
from ...codegen.tl_math import ieee_div, log, log1p

__all__ = [
    "nll_loss_forward", "nll_loss_backward", "nll_loss2d_forward", "nll_loss2d_backward",
    "mse_loss", "mse_loss_backward", "smooth_l1_loss", "smooth_l1_loss_backward",
    "huber_loss", "huber_loss_backward", "binary_cross_entropy", "binary_cross_entropy_backward",
    "binary_cross_entropy_with_logits", "cross_entropy_loss",
]

_FLOATS = {torch.float16, torch.bfloat16, torch.float32, torch.float64} & runtime.supported_dtypes()
_CLASS_TARGETS = (torch.int64, torch.uint8)  # what native nll_loss takes
_NONE, _MEAN, _SUM = 0, 1, 2  # aten's Reduction enum
_REDUCTIONS = {"none": _NONE, "mean": _MEAN, "sum": _SUM}
_INT32_LIMIT = 2**31


# ---- shared pieces -----------------------------------------------------------------------


@triton.jit
def _store_reduced(out, total_weight, loss_sum, weight_sum, MEAN: tl.constexpr, STORE_WEIGHT: tl.constexpr):
    """out = loss_sum, divided by weight_sum for a mean; total_weight = weight_sum."""
    if STORE_WEIGHT:
        tl.store(total_weight, weight_sum.to(total_weight.dtype.element_ty))
    if MEAN:
        loss_sum = ieee_div(loss_sum, weight_sum)
    tl.store(out, loss_sum.to(out.dtype.element_ty))


@triton.jit
def _one_sample_mean(unweighted_loss, hit, weight):
    """aten's CUDA mean of a single sample (input [C]): the unweighted loss, NaN at a
    zero (or out-of-range) weight; the caller gives 0 when the target is ignored."""
    return tl.where(hit & (weight != 0), unweighted_loss, float("nan"))


def _one_sample_mean_rule(input, reduction):
    """Whether the mean of input [C] follows aten's CUDA kernel (the loss itself, 0 when
    the target is ignored) rather than its CPU one (loss * w / w, NaN when ignored)."""
    return input.dim() == 1 and reduction == _MEAN and input.device.type == "cuda"


@triton.jit
def _finish_kernel(partials, out, total_weight, P, count, MEAN: tl.constexpr, WEIGHTED: tl.constexpr,
                   WEIGHED: tl.constexpr, BLOCK: tl.constexpr, ACC: tl.constexpr):
    """Second pass of a reduction: partials holds P loss sums, then (WEIGHTED) P
    weight sums; without weights a mean divides by ``count``; WEIGHED: by the total
    weight already in ``total_weight``."""
    loss = tl.zeros([BLOCK], ACC)
    weight = tl.zeros([BLOCK], ACC)
    for start in range(0, P, BLOCK):
        i = start + tl.arange(0, BLOCK)
        loss += tl.load(partials + i, mask=i < P, other=0)
        if WEIGHTED and not WEIGHED:
            weight += tl.load(partials + P + i, mask=i < P, other=0)
    if WEIGHED:
        _store_reduced(out, total_weight, tl.sum(loss, 0), tl.load(total_weight), MEAN, False)
    elif WEIGHTED:
        _store_reduced(out, total_weight, tl.sum(loss, 0), tl.sum(weight, 0), MEAN, True)
    else:
        _store_reduced(out, total_weight, tl.sum(loss, 0), tl.zeros([], ACC) + count, MEAN, False)


_FINISH = Launcher(_finish_kernel)


def _acc(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


def _finish_constexprs(programs, mean, weighted, acc, weighed=False):
    return dict(MEAN=mean, WEIGHTED=weighted, WEIGHED=weighed, BLOCK=min(next_power_of_2(programs), 1024),
                ACC=TL_DTYPE[acc], num_warps=4)


def _finish(partials, programs, out, total_weight, count, mean, weighted):
    _FINISH((1,), partials, out, total_weight, programs, count,
            **_finish_constexprs(programs, mean, weighted, partials.dtype))


def _on_vendor_device(*tensors):
    device = runtime.selected_vendor().device
    return all(t.device.type == device for t in tensors) and len({t.device for t in tensors}) == 1


def _host_values(tensor):
    """A CPU tensor's values as numpy floats or ints, without dispatching an aten operator."""
    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
        bits = tensor.view(torch.int16).numpy().astype(numpy.int32) << 16
        return bits.view(numpy.float32)
    return tensor.numpy()


def _bad_class_targets(target, classes, ignore_index):
    """Whether a CPU target holds a class outside [0, classes) other than ignore_index."""
    values = _host_values(target)
    return bool(numpy.any((values != ignore_index) & ((values < 0) | (values >= classes))))


def _outside_unit_interval(tensor):
    values = _host_values(tensor)
    return not bool(numpy.all((values >= 0) & (values <= 1)))


def _row_strides(tensor, keep):
    """Strides (of dim 0, of the merged dims from ``keep`` on) that address ``tensor``
    as [size(0), rest], or None when those dims do not merge into one stride."""
    sizes, strides = tensor.shape[keep:], tensor.stride()[keep:]
    stride = 0
    expected = None
    for size, st in reversed(list(zip(sizes, strides))):
        if size == 1:
            continue
        if expected is None:
            stride = st
        elif st != expected:
            return None
        expected = st * size
    return tensor.stride(0), stride


def _span(tensor):
    return sum((s - 1) * abs(st) for s, st in zip(tensor.shape, tensor.stride()) if s > 0)


# ---- nll_loss / nll_loss2d -----------------------------------------------------------------


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
        elementwise = reduction == _NONE and self_.dim() >= 2
        one_sample = _one_sample_mean_rule(self_, reduction)
        if not elementwise and reduction == _NONE or one_sample:
            reduction = _SUM  # 1-d input: one sample, aten returns its loss as a 0-d tensor
        self.out_shape = target.shape if elementwise else ()
        self.acc = _acc(self_.dtype)
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
        index64 = max(_span(self_), _span(target), pixels + per_program) >= _INT32_LIMIT
        self.launch = Replay(_NLL_FORWARD, (programs,), dict(
            REDUCTION=reduction, HAS_WEIGHT=weight is not None, ONE_SAMPLE=one_sample, FINISH=finish, BLOCK=block,
            ACC=TL_DTYPE[self.acc], INDEX64=index64, num_warps=4))
        self.finish = None if self.partials is None else Replay(
            _FINISH, (1,), _finish_constexprs(programs, reduction == _MEAN, True, self.acc))

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
            g_strides = grad_output.stride() if reduction == _NONE else (0, 0, 0)
            geometry = (N, H, W, (C * H * W, H * W, 1))
        else:
            # [C] or [N, C]: the samples become the pixels of one image (a row of W = N).
            t_strides = (0, 0, t_strides[0])
            g_strides = (0, 0, grad_output.stride(0) if reduction == _NONE and self_.dim() == 2 else 0)
            geometry = (1, 1, N, (0, 1, C))
        images, H, W, i_strides = geometry
        K = H * W
        self.launch = None
        if self_.numel() > 0:
            block_c, block_k, warps = runtime.config("nll_loss_backward", nll_backward_config)(
                C, K, i_strides[1] == 1)
            index64 = max(self_.numel(), _span(target), _span(grad_output)) >= _INT32_LIMIT
            self.ints = (C, H, W, *g_strides, *t_strides, weight.stride(0) if weight is not None else 0, *i_strides,
                         ignore_index)
            self.launch = Replay(_NLL_BACKWARD, (images * cdiv(K, block_k), cdiv(C, block_c)), dict(
                MEAN=reduction == _MEAN, HAS_WEIGHT=weight is not None, BLOCK_C=block_c, BLOCK_K=block_k,
                ACC=TL_DTYPE[_acc(self_.dtype)], INDEX64=index64, num_warps=warps))

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
    if self.dtype not in _FLOATS:
        return f"dtype {self.dtype} is not supported"
    if target.dtype not in _CLASS_TARGETS:
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
    if not _on_vendor_device(self, target, *([weight] if weight is not None else [])):
        return "operands on another device"
    if reduction not in (_NONE, _MEAN, _SUM) or type(ignore_index) is not int:
        return "reduction or ignore_index not supported"
    classes = self.shape[self.dim() > 1]
    if classes == 0:
        return "no classes"
    if target.is_cpu and _bad_class_targets(target, classes, ignore_index):
        return "a target out of bounds (native raises)"
    return None


def _nll_forward_unsupported(image):
    def unsupported(self, target, weight, reduction, ignore_index, *, output=None, total_weight=None):
        reason = _nll_inputs_unsupported(self, target, weight, reduction, ignore_index, image)
        if reason is None and output is not None:
            shape = target.shape if reduction == _NONE and self.dim() >= 2 else ()
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
        if not all(isinstance(t, torch.Tensor) for t in tensors) or not _on_vendor_device(self, *tensors):
            return "grad_output or total_weight not a tensor on the input's device"
        if grad_output.dtype != self.dtype or total_weight.dtype != self.dtype or total_weight.numel() != 1:
            return "grad_output or total_weight of another dtype or size"
        expected = target.shape if reduction == _NONE and self.dim() >= 2 else ()
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


# ---- pointwise losses: formulas -----------------------------------------------------------


@triton.jit
def _mse(x, y):
    d = x - y
    return d * d


@triton.jit
def _smooth_l1(x, y, beta):
    z = tl.abs(x - y)
    return tl.where(z < beta, 0.5 * z * z / beta, z - 0.5 * beta)


@triton.jit
def _huber(x, y, delta):
    z = tl.abs(x - y)
    return tl.where(z < delta, 0.5 * z * z, delta * (z - 0.5 * delta))


@triton.jit
def _bce(x, y, w):
    # log clamped at -100 as in PyTorch, so that x = 0 or 1 gives a finite loss
    log_x = tl.maximum(log(x), -100.0)
    log_1mx = tl.maximum(log1p(-x), -100.0)
    return ((y - 1) * log_1mx - y * log_x) * w


@triton.jit
def _bce_logits(x, y, w, pos_weight):
    log_sigmoid = tl.minimum(x, 0.0) - log1p(tl.exp(-tl.abs(x)))
    return ((1 - y) * x - ((pos_weight - 1) * y + 1) * log_sigmoid) * w


@triton.jit
def _mse_backward(x, y, g, norm):
    return norm * (x - y) * g


@triton.jit
def _smooth_l1_backward(x, y, g, norm, beta):
    d = x - y
    return tl.where(d < -beta, -norm * g, tl.where(d > beta, norm * g, norm * d * g / beta))


@triton.jit
def _huber_backward(x, y, g, norm, delta):
    d = x - y
    return tl.where(d < -delta, -norm * delta * g, tl.where(d > delta, norm * delta * g, norm * d * g))


@triton.jit
def _bce_backward(x, y, g, w, norm):
    return g * (x - y) / tl.maximum((1 - x) * x, 1e-12) * w * norm


def _floating(dtype):
    return dtype.is_floating_point


def _op(formula, name):
    return Elementwise(formula, name, accepts=_floating)


# Loss id in the reduction kernel -> (Elementwise of the unreduced loss, its backward or None).
_LOSSES = {
    "mse": (0, _op(_mse, "mse_loss"), _op(_mse_backward, "mse_loss_backward")),
    "smooth_l1": (1, _op(_smooth_l1, "smooth_l1_loss"), _op(_smooth_l1_backward, "smooth_l1_loss_backward")),
    "huber": (2, _op(_huber, "huber_loss"), _op(_huber_backward, "huber_loss_backward")),
    "bce": (3, _op(_bce, "binary_cross_entropy"), _op(_bce_backward, "binary_cross_entropy_backward")),
    "bce_logits": (4, _op(_bce_logits, "binary_cross_entropy_with_logits"), None),
}
_SUM_OF_VALUES = 5  # the reduction kernel summing an already computed loss


@triton.jit
def _loss_value(x, y, w, pw, param, LOSS: tl.constexpr):
    if LOSS == 0:
        value = _mse(x, y)
    elif LOSS == 1:
        value = _smooth_l1(x, y, param)
    elif LOSS == 2:
        value = _huber(x, y, param)
    elif LOSS == 3:
        value = _bce(x, y, w)
    elif LOSS == 4:
        value = _bce_logits(x, y, w, pw)
    else:
        value = x
    return value


@triton.jit
def _loss_sum_kernel(x, y, w, pw, out, partials, n, per_program, w_period, pw_period, param,
                     LOSS: tl.constexpr, HAS_W: tl.constexpr, HAS_PW: tl.constexpr, MEAN: tl.constexpr,
                     FINISH: tl.constexpr, BLOCK: tl.constexpr, ACC: tl.constexpr, INDEX64: tl.constexpr):
    """Sum of a loss formula over contiguous operands; the weights repeat with their
    period (a weight of the input's trailing shape)."""
    pid = tl.program_id(0)
    if INDEX64:
        pid = pid.to(tl.int64)
    start = pid * per_program
    acc = tl.zeros([BLOCK], ACC)
    for offset in range(0, per_program, BLOCK):
        i = start + offset + tl.arange(0, BLOCK)
        mask = i < n
        xv = tl.load(x + i, mask=mask, other=0).to(ACC)
        yv = tl.load(y + i, mask=mask, other=0).to(ACC) if LOSS != 5 else 0.0
        wv = tl.load(w + i % w_period, mask=mask, other=0).to(ACC) if HAS_W else 1.0
        pwv = tl.load(pw + i % pw_period, mask=mask, other=0).to(ACC) if HAS_PW else 1.0
        acc += tl.where(mask, _loss_value(xv, yv, wv, pwv, param, LOSS), 0)
    if FINISH:
        _store_reduced(out, out, tl.sum(acc, 0), tl.zeros([], ACC) + n, MEAN, False)
    else:
        tl.store(partials + pid, tl.sum(acc, 0))


_LOSS_SUM = Launcher(_loss_sum_kernel)


def loss_sum_config(n, device):
    """(BLOCK, programs) of a fused loss reduction over ``n`` elements."""
    block = min(max(next_power_of_2(n), 16), 2048)
    if n <= 4 * block:
        return block, 1  # small: one program and no second launch
    return block, min(cdiv(n, block), 4 * runtime.multiprocessor_count(device.index or 0))


def _trailing_period(weight, like):
    """The period of ``weight`` read flat against contiguous ``like``, or None."""
    if weight is None:
        return 1
    shape = list(weight.shape)
    while shape and shape[0] == 1:
        shape.pop(0)
    if not weight.is_contiguous() or weight.dtype != like.dtype or len(shape) > like.dim() or (
            shape and list(like.shape[like.dim() - len(shape):]) != shape):
        return None
    return max(weight.numel(), 1)


def _sum_launch(kind_id, x, y, w, pw, periods, param, reduction, out):
    n = x.numel()
    acc = _acc(out.dtype)
    block, programs = runtime.config("loss_sum", loss_sum_config)(n, x.device)
    per_program = max(cdiv(cdiv(n, programs), block), 1) * block
    programs = max(cdiv(n, per_program), 1)
    finish = programs == 1
    partials = out if finish else torch.empty(programs, dtype=acc, device=x.device)
    _LOSS_SUM((programs,), x, y, x if w is None else w, x if pw is None else pw, out, partials, n, per_program,
              *periods, float(param), LOSS=kind_id, HAS_W=w is not None, HAS_PW=pw is not None,
              MEAN=reduction == _MEAN, FINISH=finish, BLOCK=block, ACC=TL_DTYPE[acc],
              INDEX64=n + per_program >= _INT32_LIMIT, num_warps=4)
    if not finish:
        _finish(partials, programs, out, out, n, reduction == _MEAN, False)
    return out


def _pointwise_loss(kind, x, y, w, pw, param, reduction, out):
    """The loss ``kind`` over (x, y[, w, pw]) reduced as asked; w/pw broadcast to x."""
    kind_id, op, _ = _LOSSES[kind]
    operands = (x, y) + ((1.0 if w is None else w,) if kind in ("bce", "bce_logits") else ()) + (
        (1.0 if pw is None else pw,) if kind == "bce_logits" else ())
    params = (param,) if kind in ("smooth_l1", "huber") else ()
    if reduction == _NONE:
        return op(operands, params, out)
    result = out if out is not None else torch.empty((), dtype=x.dtype, device=x.device)
    periods = (_trailing_period(w, x), _trailing_period(pw, x))
    if (x.shape == y.shape and x.is_contiguous() and y.is_contiguous() and None not in periods
            and (x.dtype != torch.float64 or fp32_exact(param))):
        return _sum_launch(kind_id, x, y, w, pw, periods, param, reduction, result)
    # Broadcast or strided operands: the unreduced loss in the compute dtype, then summed.
    compute = COMPUTE_DTYPE[x.dtype]
    values = op.pointwise(torch.empty(broadcast_shape(operands), dtype=compute, device=x.device), compute,
                          *operands, *params)
    return _sum_launch(_SUM_OF_VALUES, values, values, None, None, (1, 1), 0.0, reduction, result)


def _pair_unsupported(self, target, reduction, out, others=()):
    """Checks shared by the loss rows: one floating dtype and device, a known reduction,
    an out= of the result's shape and dtype."""
    tensors = (self, target) + tuple(t for t in others if t is not None)
    if not all(isinstance(t, torch.Tensor) for t in tensors):
        return "operand is not a tensor"
    if self.dtype not in _FLOATS or any(t.dtype != self.dtype for t in tensors):
        return "dtypes differ or are not supported"
    if not _on_vendor_device(*tensors):
        return "operands on another device"
    if reduction not in (_NONE, _MEAN, _SUM):
        return f"reduction {reduction!r}"
    try:
        shape = broadcast_shape(tensors)
    except RuntimeError:
        return "shapes do not broadcast"
    if out is not None:
        expected = shape if reduction == _NONE else ()
        if out.shape != expected or out.dtype != self.dtype or out.device != self.device:
            return "out needs a resize or a cast"
        if reduction == _NONE:
            return _LOSSES["mse"][1].unsupported(tensors, out)  # overlap and layout checks
    return None


def _scalar_unsupported(value, positive):
    if type(value) not in (int, float):
        return "scalar parameter of another type"
    if not (value > 0 if positive else value >= 0):
        return "parameter out of range (native raises)"
    return None


def mse_loss(self, target, reduction=_MEAN, *, out=None):
    return _pointwise_loss("mse", self, target, None, None, 0.0, reduction, out)


def _mse_loss_unsupported(self, target, reduction=_MEAN, *, out=None):
    return _pair_unsupported(self, target, reduction, out)


def smooth_l1_loss(self, target, reduction=_MEAN, beta=1.0, *, out=None):
    return _pointwise_loss("smooth_l1", self, target, None, None, beta, reduction, out)


def _smooth_l1_loss_unsupported(self, target, reduction=_MEAN, beta=1.0, *, out=None):
    return _pair_unsupported(self, target, reduction, out) or _scalar_unsupported(beta, False)


def huber_loss(self, target, reduction=_MEAN, delta=1.0, *, out=None):
    return _pointwise_loss("huber", self, target, None, None, delta, reduction, out)


def _huber_loss_unsupported(self, target, reduction=_MEAN, delta=1.0, *, out=None):
    return _pair_unsupported(self, target, reduction, out) or _scalar_unsupported(delta, True)


def binary_cross_entropy(self, target, weight=None, reduction=_MEAN, *, out=None):
    return _pointwise_loss("bce", self, target, weight, None, 0.0, reduction, out)


def _bce_inputs_unsupported(self, target, weight, reduction, out):
    reason = _pair_unsupported(self, target, reduction, out, (weight,))
    if reason is None:
        if target.shape != self.shape or broadcast_shape((self, target, *(w for w in (weight,) if w is not None))) \
                != self.shape:
            return "target or weight not of the input's shape"
        if self.is_cpu and (_outside_unit_interval(self) or _outside_unit_interval(target)):
            return "values outside [0, 1] (native raises)"
    return reason


def _bce_unsupported(self, target, weight=None, reduction=_MEAN, *, out=None):
    return _bce_inputs_unsupported(self, target, weight, reduction, out)


def binary_cross_entropy_with_logits(self, target, weight=None, pos_weight=None, reduction=_MEAN, *, out=None):
    return _pointwise_loss("bce_logits", self, target, weight, pos_weight, 0.0, reduction, out)


def _bce_logits_unsupported(self, target, weight=None, pos_weight=None, reduction=_MEAN, *, out=None):
    reason = _pair_unsupported(self, target, reduction, out, (weight, pos_weight))
    if reason is None and (target.shape != self.shape or broadcast_shape(
            (self, target, *(w for w in (weight, pos_weight) if w is not None))) != self.shape):
        return "target, weight or pos_weight not of the input's shape"
    return reason


# ---- pointwise losses: backward rows -------------------------------------------------------


def _norm(reduction, numel, scale):
    return scale / numel if reduction == _MEAN and numel else float(scale)


def _backward_unsupported(grad_output, self, target, reduction, grad_input, others=()):
    reason = _pair_unsupported(self, target, _NONE, None, (grad_output,) + tuple(others))
    if reason is None:
        if target.shape != self.shape or broadcast_shape(
                (self, target, grad_output, *(t for t in others if t is not None))) != self.shape:
            return "operands not of the input's shape"
        if reduction not in (_NONE, _MEAN, _SUM):
            return f"reduction {reduction!r}"
        if grad_input is not None:
            if grad_input.shape != self.shape or grad_input.dtype != self.dtype or grad_input.device != self.device:
                return "grad_input needs a resize or a cast"
            return _LOSSES["mse"][2].unsupported((self, target, grad_output), grad_input)
    return reason


def mse_loss_backward(grad_output, self, target, reduction, *, grad_input=None):
    return _LOSSES["mse"][2]((self, target, grad_output), (_norm(reduction, self.numel(), 2.0),), grad_input)


def _mse_loss_backward_unsupported(grad_output, self, target, reduction, *, grad_input=None):
    return _backward_unsupported(grad_output, self, target, reduction, grad_input)


def smooth_l1_loss_backward(grad_output, self, target, reduction, beta, *, grad_input=None):
    return _LOSSES["smooth_l1"][2]((self, target, grad_output), (_norm(reduction, self.numel(), 1.0), beta),
                                   grad_input)


def _smooth_l1_loss_backward_unsupported(grad_output, self, target, reduction, beta, *, grad_input=None):
    if type(beta) in (int, float) and beta == 0:
        return "beta == 0 (devices disagree at x == target)"
    return _backward_unsupported(grad_output, self, target, reduction, grad_input) or \
        _scalar_unsupported(beta, True)


def huber_loss_backward(grad_output, self, target, reduction, delta, *, grad_input=None):
    return _LOSSES["huber"][2]((self, target, grad_output), (_norm(reduction, self.numel(), 1.0), delta),
                               grad_input)


def _huber_loss_backward_unsupported(grad_output, self, target, reduction, delta, *, grad_input=None):
    return _backward_unsupported(grad_output, self, target, reduction, grad_input) or \
        _scalar_unsupported(delta, True)


def binary_cross_entropy_backward(grad_output, self, target, weight=None, reduction=_MEAN, *, grad_input=None):
    operands = (self, target, grad_output, 1.0 if weight is None else weight)
    return _LOSSES["bce"][2](operands, (_norm(reduction, self.numel(), 1.0),), grad_input)


def _bce_backward_unsupported(grad_output, self, target, weight=None, reduction=_MEAN, *, grad_input=None):
    reason = _backward_unsupported(grad_output, self, target, reduction, grad_input, (weight,))
    if reason is None and self.is_cpu and (_outside_unit_interval(self) or _outside_unit_interval(target)):
        return "values outside [0, 1] (native raises)"
    return reason


# ---- fused cross entropy -------------------------------------------------------------------


@triton.jit
def _online_lane(m, s, v):
    """Per-lane running max ``m`` and sum ``s`` of exp(value - m) after ``v``: one exp
    per value, exp(-|v - m|), scaling the old sum when v is the new max."""
    m_new = tl.maximum(m, v)
    e = tl.exp(tl.minimum(m, v) - m_new)
    e = tl.where(m_new == float("-inf"), 0.0, e)
    return m_new, tl.where(v > m, s * e + 1, s + e)


@triton.jit
def _ce_spread(q, qx, weight_lanes, v, mask, cols, col_mask, t_rows, st_c, weight, smoothing, C,
               PROBS: tl.constexpr, HAS_WEIGHT: tl.constexpr):
    """Adds a tile's share of sum(q) and sum(q * x) when q is spread over the classes
    (probability targets or label smoothing), and of the class weights."""
    if HAS_WEIGHT:
        wc = tl.load(weight + cols, mask=col_mask, other=0).to(v.dtype)
    else:
        wc = col_mask.to(v.dtype)
    finite_v = tl.where(mask, v, 0)
    if PROBS:
        p = tl.load(t_rows[:, None] + cols[None, :] * st_c, mask=mask, other=0).to(v.dtype)
        qc = wc[None, :] * (p * (1 - smoothing) + smoothing / C)
        q += qc
        qx += qc * finite_v
    else:
        qx += wc[None, :] * finite_v
        weight_lanes += wc
    return q, qx, weight_lanes


@triton.jit
def _ce_target_weight(t, weight, ignore_index, C, HAS_WEIGHT: tl.constexpr, ACC: tl.constexpr):
    """(counted, hit, w): whether each row's class target counts (not ignored), whether
    it is in [0, C), and its weight: 0 when not hit, NaN when counted but out of range
    (see the module doc: no assert, a NaN)."""
    counted = t != ignore_index
    in_range = (t >= 0) & (t < C)
    hit = counted & in_range
    if HAS_WEIGHT:
        w = tl.load(weight + t, mask=hit, other=0).to(ACC)
    else:
        w = hit.to(ACC)
    return counted, hit, tl.where(counted & ~in_range, float("nan"), w)


@triton.jit
def _ce_weight_kernel(target, weight, total, M, C, K, st_n, st_k, ignore_index, PROBS: tl.constexpr,
                      HAS_WEIGHT: tl.constexpr, BLOCK: tl.constexpr, ACC: tl.constexpr, INDEX64: tl.constexpr):
    """total = a mean's denominator, summed as the forward's rows would: the weights of
    the counted class targets, or the number of rows for probabilities."""
    lanes = tl.zeros([BLOCK], ACC)
    for start in range(0, M, BLOCK):
        rows = start + tl.arange(0, BLOCK)
        if INDEX64:
            rows = rows.to(tl.int64)
        row_mask = rows < M
        if PROBS:
            lanes += row_mask.to(ACC)
        else:
            t = tl.load(target + (rows // K) * st_n + (rows % K) * st_k, mask=row_mask, other=0).to(tl.int64)
            counted, hit, w = _ce_target_weight(t, weight, ignore_index, C, HAS_WEIGHT, ACC)
            lanes += tl.where(row_mask & counted, w, 0)
    tl.store(total, tl.sum(lanes, 0))


@triton.jit
def _ce_write_grad(x_rows, t_rows, i_rows, g, lse, sum_q, target_q, t, row_mask, weight, smoothing, C, K, sx_c,
                   st_c, PROBS: tl.constexpr, SMOOTH: tl.constexpr, SPREAD: tl.constexpr, HAS_WEIGHT: tl.constexpr,
                   BLOCK_C: tl.constexpr, ACC: tl.constexpr):
    """grad_in rows = g * (softmax(x) * sum(q) - q), BLOCK_C classes at a time; ``t`` and
    ``target_q`` (the target class's q) serve class targets only."""
    for offset in range(0, C, BLOCK_C):
        cols = offset + tl.arange(0, BLOCK_C)
        col_mask = cols < C
        mask = row_mask[:, None] & col_mask[None, :]
        v = tl.load(x_rows[:, None] + cols[None, :] * sx_c, mask=mask, other=0).to(ACC)
        grad = tl.exp(v - lse[:, None]) * sum_q[:, None]
        if SPREAD:
            if HAS_WEIGHT:
                wc = tl.load(weight + cols, mask=col_mask, other=0).to(ACC)
            else:
                wc = col_mask.to(ACC)
        if PROBS:
            p = tl.load(t_rows[:, None] + cols[None, :] * st_c, mask=mask, other=0).to(ACC)
            grad -= wc[None, :] * (p * (1 - smoothing) + smoothing / C)
        else:
            grad -= tl.where(cols[None, :] == t[:, None], target_q[:, None], 0)
            if SMOOTH:
                grad -= smoothing / C * wc[None, :]
        grad = tl.where(g[:, None] == 0, 0, g[:, None] * grad)
        tl.store(i_rows[:, None] + cols[None, :] * K, grad.to(i_rows.dtype.element_ty), mask=mask)


@triton.jit
def _ce_forward_kernel(x, target, weight, out, stats, partials, grad_in, M, C, K, sx_n, sx_c, sx_k,
                       st_n, st_c, st_k, ignore_index, smoothing,
                       REDUCTION: tl.constexpr, PROBS: tl.constexpr, SMOOTH: tl.constexpr,
                       SPREAD: tl.constexpr, HAS_WEIGHT: tl.constexpr, ONE_SAMPLE: tl.constexpr,
                       FINISH: tl.constexpr, ONE_TILE: tl.constexpr, GRAD: tl.constexpr, GRAD_MEAN: tl.constexpr,
                       BLOCK_M: tl.constexpr, BLOCK_C: tl.constexpr, ACC: tl.constexpr, INDEX64: tl.constexpr):
    """Loss of BLOCK_M rows (row r = sample r // K, position r % K) in one pass over the
    logits. With q the target distribution (smoothed, weighted), loss = lse * sum(q) -
    sum(q * x); SPREAD: q is not only the target class (probabilities or smoothing).
    stats[0, r] = log-sum-exp, stats[1, r] = sum(q), for the backward. ONE_SAMPLE (class
    target, no smoothing, REDUCTION 2): the loss is ``_one_sample_mean``'s. GRAD (a loss
    reduced to one number): then the rows' gradient for an incoming 1 into grad_in
    (contiguous), divided for GRAD_MEAN by the total weight: this program's own when it
    is the only one (FINISH), else stats[2M], which ``_ce_weight_kernel`` wrote first."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    if INDEX64:
        rows = rows.to(tl.int64)
    row_mask = rows < M
    x_rows = x + (rows // K) * sx_n + (rows % K) * sx_k
    t_rows = target + (rows // K) * st_n + (rows % K) * st_k
    qx = tl.zeros([BLOCK_M, BLOCK_C], ACC)
    q = tl.zeros([BLOCK_M, BLOCK_C], ACC)
    weight_lanes = tl.zeros([BLOCK_C], ACC)
    if ONE_TILE:  # the whole row in registers: read once, no running statistics
        cols = tl.arange(0, BLOCK_C)
        col_mask = cols < C
        mask = row_mask[:, None] & col_mask[None, :]
        v = tl.load(x_rows[:, None] + cols[None, :] * sx_c, mask=mask, other=float("-inf")).to(ACC)
        row_max = tl.max(v, axis=1)
        shift = tl.where(row_max == float("-inf"), 0.0, row_max)
        lse = shift + tl.log(tl.sum(tl.exp(v - shift[:, None]), axis=1))
        if SPREAD:
            q, qx, weight_lanes = _ce_spread(q, qx, weight_lanes, v, mask, cols, col_mask, t_rows, st_c, weight,
                                             smoothing, C, PROBS, HAS_WEIGHT)
    else:
        m = tl.full([BLOCK_M, BLOCK_C], float("-inf"), ACC)
        s = tl.zeros([BLOCK_M, BLOCK_C], ACC)
        for offset in range(0, C, BLOCK_C):
            cols = offset + tl.arange(0, BLOCK_C)
            col_mask = cols < C
            mask = row_mask[:, None] & col_mask[None, :]
            v = tl.load(x_rows[:, None] + cols[None, :] * sx_c, mask=mask, other=float("-inf")).to(ACC)
            m, s = _online_lane(m, s, v)
            if SPREAD:
                q, qx, weight_lanes = _ce_spread(q, qx, weight_lanes, v, mask, cols, col_mask, t_rows, st_c,
                                                 weight, smoothing, C, PROBS, HAS_WEIGHT)
        row_max = tl.max(m, axis=1)
        lanes = tl.where(m == float("-inf"), 0.0, s * tl.exp(m - row_max[:, None]))
        lse = row_max + tl.log(tl.sum(lanes, axis=1))
    if PROBS:
        sum_q = tl.sum(q, axis=1)
        loss = tl.where(row_mask, lse * sum_q - tl.sum(qx, axis=1), 0)
        denominator = row_mask.to(ACC)
        active = row_mask
        t = rows  # unused: probabilities give q per class
        target_q = sum_q
    else:
        t = tl.load(t_rows, mask=row_mask, other=0).to(tl.int64)
        counted, hit, w_t = _ce_target_weight(t, weight, ignore_index, C, HAS_WEIGHT, ACC)
        active = row_mask & counted
        hit = active & hit
        target_q = (1 - smoothing) * tl.where(hit, w_t, 0)
        x_t = tl.load(x_rows + t * sx_c, mask=hit, other=0).to(ACC)
        if ONE_SAMPLE:
            loss = _one_sample_mean(lse - x_t, hit, w_t)
        else:
            loss = (1 - smoothing) * w_t * (lse - x_t)
        sum_q = (1 - smoothing) * w_t
        if SMOOTH:
            weight_total = tl.sum(weight_lanes, axis=0)
            loss += smoothing / C * (weight_total * lse - tl.sum(qx, axis=1))
            sum_q += smoothing / C * weight_total
        loss = tl.where(active, loss, 0)
        sum_q = tl.where(active, sum_q, 0)
        denominator = tl.where(active, w_t, 0)
    tl.store(stats + rows, lse, mask=row_mask)
    tl.store(stats + M + rows, sum_q, mask=row_mask)
    total = tl.sum(denominator, 0)
    if REDUCTION == 0:
        tl.store(out + rows, loss.to(out.dtype.element_ty), mask=row_mask)
    elif FINISH:
        _store_reduced(out, stats + 2 * M, tl.sum(loss, 0), total, REDUCTION == 1, True)
    else:
        pid = tl.program_id(0)
        tl.store(partials + pid, tl.sum(loss, 0))
        tl.store(partials + tl.num_programs(0) + pid, total)
    if GRAD:  # as the backward kernel computes it for g = 1
        g = tl.zeros([BLOCK_M], ACC) + 1
        if GRAD_MEAN:
            if not FINISH:
                total = tl.load(stats + 2 * M)
            g = ieee_div(g, total)
        g = tl.where(active, g, 0)
        i_rows = grad_in + (rows // K) * C * K + rows % K
        _ce_write_grad(x_rows, t_rows, i_rows, g, lse, sum_q, target_q, t, row_mask, weight, smoothing, C, K, sx_c,
                       st_c, PROBS, SMOOTH, SPREAD, HAS_WEIGHT, BLOCK_C, ACC)


@triton.jit
def _ce_backward_kernel(x, target, weight, grad_out, stats, grad_in, M, C, K, sx_n, sx_c, sx_k,
                        st_n, st_c, st_k, sg_n, sg_k, ignore_index, smoothing, skip_when,
                        MEAN: tl.constexpr, PROBS: tl.constexpr, SMOOTH: tl.constexpr, SPREAD: tl.constexpr,
                        HAS_WEIGHT: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_C: tl.constexpr,
                        ACC: tl.constexpr, INDEX64: tl.constexpr):
    """grad = g * (softmax(x) * sum(q) - q) for BLOCK_M rows, one pass over the logits;
    nothing when g (its first element) equals ``skip_when``: grad_in already holds that
    gradient (a float, so one compiled kernel serves both; NaN never matches)."""
    if tl.load(grad_out) == skip_when:
        return
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    if INDEX64:
        rows = rows.to(tl.int64)
    row_mask = rows < M
    n = rows // K
    k = rows % K
    x_rows = x + n * sx_n + k * sx_k
    t_rows = target + n * st_n + k * st_k
    i_rows = grad_in + n * C * K + k  # the gradient is contiguous
    g = tl.load(grad_out + n * sg_n + k * sg_k, mask=row_mask, other=0).to(ACC)
    if MEAN:
        g = ieee_div(g, tl.load(stats + 2 * M).to(ACC))
    lse = tl.load(stats + rows, mask=row_mask, other=0)
    sum_q = tl.load(stats + M + rows, mask=row_mask, other=0)
    if PROBS:
        t = rows  # unused: probabilities give q per class
        target_q = sum_q
    else:
        t = tl.load(t_rows, mask=row_mask, other=0).to(tl.int64)
        counted, hit, w_t = _ce_target_weight(t, weight, ignore_index, C, HAS_WEIGHT, ACC)
        hit = row_mask & hit
        g = tl.where(row_mask & counted, g, 0)
        target_q = (1 - smoothing) * tl.where(hit, w_t, 0)
    _ce_write_grad(x_rows, t_rows, i_rows, g, lse, sum_q, target_q, t, row_mask, weight, smoothing, C, K, sx_c, st_c,
                   PROBS, SMOOTH, SPREAD, HAS_WEIGHT, BLOCK_C, ACC)


_CE_FORWARD = Launcher(_ce_forward_kernel)
_CE_WEIGHT = Launcher(_ce_weight_kernel)
_CE_BACKWARD = Launcher(_ce_backward_kernel)


def cross_entropy_config(M, C, class_contiguous):
    """(BLOCK_M, BLOCK_C, num_warps, ONE_TILE) of the forward. A contiguous row goes 2K
    classes at a time with per-lane running statistics: measured on an H100 (bf16
    4096 x 32000, kernel time), 8 warps over 2K-class tiles read at 2.4 TB/s, a whole
    row in registers at 1.9."""
    block_m, block_c, warps = _ce_tiles(M, C, class_contiguous, 2048)
    return block_m, block_c, warps, block_c >= C


def cross_entropy_with_grad_config(M, C, class_contiguous):
    """The forward's config when it also writes the gradient (a second pass over each
    row, from L2): 8K-class tiles of 16 warps. Measured on an H100 (bf16 4096 x 32000,
    kernel time, L2 flushed): 234 us against 283 with the forward's 2K tiles of 8 warps
    (a separate forward and backward: 296)."""
    block_m, block_c, warps = _ce_tiles(M, C, class_contiguous, 8192)
    return block_m, block_c, warps, block_c >= C


def cross_entropy_backward_config(M, C, class_contiguous):
    """(BLOCK_M, BLOCK_C, num_warps) of the backward, which keeps no state across tiles:
    8K-class tiles (measured: 2.9 TB/s read + write)."""
    return _ce_tiles(M, C, class_contiguous, 8192)


def _ce_tiles(M, C, class_contiguous, widest):
    """(BLOCK_M, BLOCK_C, num_warps): up to ``widest`` contiguous classes per tile; with
    strided classes ([N, C, d...] input) a tile spans the contiguous rows."""
    M = max(M, 1)
    if class_contiguous:
        block_c = min(next_power_of_2(C), widest)
        block_m = min(next_power_of_2(M), max(1, 2048 // block_c))
    else:
        block_m = min(next_power_of_2(M), 64)
        block_c = min(next_power_of_2(C), max(1, 2048 // block_m))
    return block_m, block_c, _row_warps(block_m * block_c)


def _row_warps(tile):
    return 4 if tile <= 1024 else 8 if tile <= 4096 else 16


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
        self.acc = _acc(input.dtype)
        if reduction == _NONE:
            self.out_shape = target.shape if not probs else input.shape[:1] + input.shape[2:] if input.dim() > 1 else ()
        else:
            self.out_shape = ()
        self.index64 = max(_span(laid_input), _span(laid_target), M * C) >= _INT32_LIMIT
        # the backward still divides by the weight the forward leaves in scratch, as for a mean
        one_sample = not probs and smoothing == 0 and _one_sample_mean_rule(input, reduction)
        self.ints = (M, C, K, *x_strides, *t_strides, ignore_index)
        mean, acc = reduction == _MEAN, TL_DTYPE[self.acc]

        def launches(name, default, grad):
            """(weigh, forward, finish, programs): the launches of a forward without or
            with (``grad``) the gradient for an incoming 1; see the module doc."""
            block_m, block_c, warps, one_tile = runtime.config(name, default)(M, C, x_strides[1] == 1)
            programs = max(cdiv(M, block_m), 1)
            finish = programs == 1
            forward = Replay(_CE_FORWARD, (programs,), dict(
                REDUCTION=_SUM if one_sample else reduction, PROBS=probs, SMOOTH=smoothing > 0 and not probs,
                SPREAD=probs or smoothing > 0, HAS_WEIGHT=weight is not None, ONE_SAMPLE=one_sample, FINISH=finish,
                ONE_TILE=one_tile, GRAD=grad, GRAD_MEAN=grad and mean, BLOCK_M=block_m, BLOCK_C=block_c, ACC=acc,
                INDEX64=self.index64, num_warps=warps))
            weigh = None if not (grad and mean and not finish) else Replay(_CE_WEIGHT, (1,), dict(
                PROBS=probs, HAS_WEIGHT=weight is not None, BLOCK=1024, ACC=acc, INDEX64=self.index64, num_warps=4))
            finish = None if reduction == _NONE or finish else Replay(
                _FINISH, (1,), _finish_constexprs(programs, mean, True, self.acc, weighed=weigh is not None))
            return weigh, forward, finish, programs

        self.plain = launches("cross_entropy", cross_entropy_config, False)
        self.with_grad = None if reduction == _NONE else launches(
            "cross_entropy_with_grad", cross_entropy_with_grad_config, True)
        programs = max(self.plain[3], self.with_grad[3] if self.with_grad else 0)
        extra = 2 * programs if reduction != _NONE and programs > 1 else 0
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
        if reduction == _NONE and grad.dim() > 0:
            g_strides = _row_strides(grad, 1)
            if g_strides is None:
                self.copy_grad = True
                g_strides = _row_strides(grad.contiguous(), 1)
        self.ints = (M, C, forward.K, *forward.x_strides, *forward.t_strides, *g_strides, ignore_index)
        self.launch = Replay(_CE_BACKWARD, (cdiv(M, block_m),), dict(
            MEAN=reduction == _MEAN, PROBS=probs, SMOOTH=smoothing > 0 and not probs, SPREAD=probs or smoothing > 0,
            HAS_WEIGHT=has_weight, BLOCK_M=block_m, BLOCK_C=block_c, ACC=TL_DTYPE[forward.acc],
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
    """The spec of a C++ autograd node that launches ``plan``'s kernel (csrc.register_backward)
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
    return register_backward(compiled, plan.launch.grid, args, (0, 1, 2, 4, 3, 5), grad, python_backward,
                             skip_at=len(args) - 1)


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
    if input.dtype not in _FLOATS or input.dim() == 0 or reduction not in (_NONE, _MEAN, _SUM):
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
    if not _on_vendor_device(input, target, *([weight] if weight is not None else [])):
        return "operands on another device"
    if target.is_floating_point():
        if target.shape != input.shape or target.dtype != input.dtype or ignore_index >= 0:
            return "probability target not of the input's shape and dtype"
        return None
    expected = input.shape[:1] + input.shape[2:] if input.dim() > 1 else ()
    if target.dtype not in _CLASS_TARGETS or target.shape != expected:
        return "class target not Long/Byte of the input's shape without the class dim"
    if target.is_cpu and _bad_class_targets(target, classes, ignore_index):
        return "a target out of bounds"
    return None


def cross_entropy_loss(input, target, weight=None, reduction="mean", ignore_index=-100, label_smoothing=0.0):
    """Cross entropy of logits ``input`` ([C], [N, C] or [N, C, d1, ...]) and class
    indices or class probabilities ``target``, as ``F.cross_entropy``, in one pass
    over the logits (differentiable in ``input``). ``reduction`` is "none", "mean",
    "sum" or aten's enum value. Inputs the kernels do not take go to
    ``F.cross_entropy``."""
    reduction_enum = _REDUCTIONS.get(reduction, reduction) if isinstance(reduction, str) else reduction
    if _cross_entropy_unsupported(input, target, weight, reduction_enum, ignore_index, label_smoothing) is not None:
        name = {v: k for k, v in _REDUCTIONS.items()}.get(reduction_enum, reduction)
        return torch.nn.functional.cross_entropy(input, target, weight, ignore_index=ignore_index, reduction=name,
                                                 label_smoothing=label_smoothing)
    smoothing = float(label_smoothing)
    plan = _ce_plan(input, target, weight, reduction_enum, ignore_index, smoothing)
    if not (torch.is_grad_enabled() and input.requires_grad):
        return plan(input, target, weight, smoothing)[0]
    if plan.cpp_backward is None or plan.cpp_backward < 0:
        return _CrossEntropy.apply(input, target, weight, plan, smoothing)
    # A C++ backward node: no Python in the autograd engine's thread (see csrc/kernel_backward.cpp).
    loss, saved, speculated = plan(input, target, weight, smoothing, with_grad=True)
    saved_input, saved_target, scratch, saved_weight = saved
    return prebuilt().attach_backward(
        loss, input, [saved_input, saved_target, saved_input if saved_weight is None else saved_weight, scratch],
        plan.cpp_backward, "FlagGemsCrossEntropyBackward", speculated)


# ---- aten rows -----------------------------------------------------------------------------


def _rows(name, impl, unsupported, overloads):
    return [Row(f"{name}.{o}" if o else name, impl, unsupported) for o in overloads]


ATEN = tuple(
    _rows("nll_loss_forward", nll_loss_forward, _nll_forward_unsupported(False), ("", "output"))
    + _rows("nll_loss_backward", nll_loss_backward, _nll_backward_unsupported(False), ("", "grad_input"))
    + _rows("nll_loss2d_forward", nll_loss2d_forward, _nll_forward_unsupported(True), ("", "output"))
    + _rows("nll_loss2d_backward", nll_loss2d_backward, _nll_backward_unsupported(True), ("", "grad_input"))
    + _rows("mse_loss", mse_loss, _mse_loss_unsupported, ("", "out"))
    + _rows("mse_loss_backward", mse_loss_backward, _mse_loss_backward_unsupported, ("", "grad_input"))
    + _rows("smooth_l1_loss", smooth_l1_loss, _smooth_l1_loss_unsupported, ("", "out"))
    + _rows("smooth_l1_loss_backward", smooth_l1_loss_backward, _smooth_l1_loss_backward_unsupported,
            ("", "grad_input"))
    + _rows("huber_loss", huber_loss, _huber_loss_unsupported, ("", "out"))
    + _rows("huber_loss_backward", huber_loss_backward, _huber_loss_backward_unsupported, ("", "out"))
    + _rows("binary_cross_entropy", binary_cross_entropy, _bce_unsupported, ("", "out"))
    + _rows("binary_cross_entropy_backward", binary_cross_entropy_backward, _bce_backward_unsupported,
            ("", "grad_input"))
    + _rows("binary_cross_entropy_with_logits", binary_cross_entropy_with_logits, _bce_logits_unsupported,
            ("", "out"))
)
