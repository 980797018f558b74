"""What the loss modules share: aten's reduction enum, the store of a reduced loss, the
second pass of a split reduction, the single-sample mean rule, and host-side checks.

The mean of a single sample (input [C]) differs between aten's devices: CPU divides
the weighted loss by the weight (NaN when the target is ignored), CUDA gives the
unweighted loss (0 when ignored, NaN at a zero weight). Each device gets its own
(``one_sample_mean_rule``; kernels apply CUDA's with ``one_sample_mean``).
"""

import numpy
import torch
import triton
import triton.language as tl

from ... import runtime
from ...codegen.launch import Launcher
from ...codegen.pointwise import TL_DTYPE
from ...codegen.tl_math import ieee_div
from ...utils.layout import next_power_of_2

CLASS_TARGETS = (torch.int64, torch.uint8)  # what native nll_loss takes
NONE, MEAN, SUM = 0, 1, 2  # aten's Reduction enum
REDUCTIONS = {"none": NONE, "mean": MEAN, "sum": SUM}


@triton.jit
def store_reduced(out, total_weight, loss_sum, weight_sum, MEAN: tl.constexpr, STORE_WEIGHT: tl.constexpr):
    """out = loss_sum, divided by weight_sum for a mean; total_weight = weight_sum."""
    if STORE_WEIGHT:
        tl.store(total_weight, weight_sum.to(total_weight.dtype.element_ty))
    if MEAN:
        loss_sum = ieee_div(loss_sum, weight_sum)
    tl.store(out, loss_sum.to(out.dtype.element_ty))


# The kernels below (and those of the other loss modules) call it by its former name.
_store_reduced = store_reduced


@triton.jit
def one_sample_mean(unweighted_loss, hit, weight):
    """aten's CUDA mean of a single sample (input [C]): the unweighted loss, NaN at a
    zero (or out-of-range) weight; the caller gives 0 when the target is ignored."""
    return tl.where(hit & (weight != 0), unweighted_loss, float("nan"))


def one_sample_mean_rule(input, reduction):
    """Whether the mean of input [C] follows aten's CUDA kernel (the loss itself, 0 when
    the target is ignored) rather than its CPU one (loss * w / w, NaN when ignored)."""
    return input.dim() == 1 and reduction == MEAN and input.device.type == "cuda"


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


SECOND_PASS = Launcher(_finish_kernel)


def second_pass_constexprs(programs, mean, weighted, acc, weighed=False):
    """``SECOND_PASS``'s constexprs for the partial sums of ``programs`` programs in ``acc``."""
    return dict(MEAN=mean, WEIGHTED=weighted, WEIGHED=weighed, BLOCK=min(next_power_of_2(programs), 1024),
                ACC=TL_DTYPE[acc], num_warps=4)


def second_pass(partials, programs, out, total_weight, count, mean, weighted):
    """The second pass over the partial sums of ``programs`` programs, into ``out``."""
    SECOND_PASS((1,), partials, out, total_weight, programs, count,
                **second_pass_constexprs(programs, mean, weighted, partials.dtype))


def on_vendor_device(*tensors):
    """Whether all ``tensors`` sit on one device of the selected vendor's kind."""
    device = runtime.selected_vendor().device
    return all(t.device.type == device for t in tensors) and len({t.device for t in tensors}) == 1


def host_values(tensor):
    """A CPU tensor's values as numpy floats or ints, without dispatching an aten operator."""
    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
        bits = tensor.view(torch.int16).numpy().astype(numpy.int32) << 16
        return bits.view(numpy.float32)
    return tensor.numpy()


def bad_class_targets(target, classes, ignore_index):
    """Whether a CPU target holds a class outside [0, classes) other than ignore_index."""
    values = host_values(target)
    return bool(numpy.any((values != ignore_index) & ((values < 0) | (values >= classes))))
