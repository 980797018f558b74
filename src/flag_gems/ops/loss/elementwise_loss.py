"""``mse_loss``, ``smooth_l1_loss``, ``huber_loss``, ``binary_cross_entropy``,
``binary_cross_entropy_with_logits`` and the backward rows of the first four (leaf aten
rows; ``binary_cross_entropy_with_logits`` is CompositeExplicitAutograd with its own
autograd formula, so a backend kernel may take it).

reduction='none' and the backward rows are ``Elementwise`` operators of the loss
formula; 'mean'/'sum' evaluate the same formula inside a reduction kernel, so the
unreduced loss is never written. ``binary_cross_entropy`` checks inputs and targets in
[0, 1] on the CPU device only (native CUDA asserts on the device).
"""

import numpy
import torch
import triton
import triton.language as tl

from ... import runtime
from ...codegen.elementwise import Elementwise
from ...codegen.launch import Launcher, fp32_exact
from ...codegen.pointwise import TL_DTYPE
from ...codegen.tl_math import log, log1p
from ...dispatch import aten_rows
from ...utils.dtypes import COMPUTE_DTYPE, float_accumulator
from ...utils.layout import INT32_LIMIT, broadcast_shape, cdiv, next_power_of_2
from .common import MEAN, NONE, SUM, host_values, on_vendor_device, second_pass
from .common import store_reduced as _store_reduced  # as the kernels call it

__all__ = [
    "mse_loss", "mse_loss_backward", "smooth_l1_loss", "smooth_l1_loss_backward", "huber_loss", "huber_loss_backward",
    "binary_cross_entropy", "binary_cross_entropy_backward", "binary_cross_entropy_with_logits",
]


# ---- formulas ------------------------------------------------------------------------------


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
    acc = float_accumulator(out.dtype)
    block, programs = runtime.config("loss_sum", loss_sum_config)(n, x.device)
    per_program = max(cdiv(cdiv(n, programs), block), 1) * block
    programs = max(cdiv(n, per_program), 1)
    finish = programs == 1
    partials = out if finish else torch.empty(programs, dtype=acc, device=x.device)
    _LOSS_SUM((programs,), x, y, x if w is None else w, x if pw is None else pw, out, partials, n, per_program,
              *periods, float(param), LOSS=kind_id, HAS_W=w is not None, HAS_PW=pw is not None,
              MEAN=reduction == MEAN, FINISH=finish, BLOCK=block, ACC=TL_DTYPE[acc],
              INDEX64=n + per_program >= INT32_LIMIT, num_warps=4)
    if not finish:
        second_pass(partials, programs, out, out, n, reduction == MEAN, False)
    return out


def _pointwise_loss(kind, x, y, w, pw, param, reduction, out):
    """The loss ``kind`` over (x, y[, w, pw]) reduced as asked; w/pw broadcast to x."""
    kind_id, op, _ = _LOSSES[kind]
    operands = (x, y) + ((1.0 if w is None else w,) if kind in ("bce", "bce_logits") else ()) + (
        (1.0 if pw is None else pw,) if kind == "bce_logits" else ())
    params = (param,) if kind in ("smooth_l1", "huber") else ()
    if reduction == NONE:
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


def _outside_unit_interval(tensor):
    values = host_values(tensor)
    return not bool(numpy.all((values >= 0) & (values <= 1)))


def _pair_unsupported(self, target, reduction, out, others=()):
    """Checks shared by the loss rows: one floating dtype and device, a known reduction,
    an out= of the result's shape and dtype."""
    tensors = (self, target) + tuple(t for t in others if t is not None)
    if not all(isinstance(t, torch.Tensor) for t in tensors):
        return "operand is not a tensor"
    if self.dtype not in runtime.supported_float_dtypes() or any(t.dtype != self.dtype for t in tensors):
        return "dtypes differ or are not supported"
    if not on_vendor_device(*tensors):
        return "operands on another device"
    if reduction not in (NONE, MEAN, SUM):
        return f"reduction {reduction!r}"
    try:
        shape = broadcast_shape(tensors)
    except RuntimeError:
        return "shapes do not broadcast"
    if out is not None:
        expected = shape if reduction == NONE else ()
        if out.shape != expected or out.dtype != self.dtype or out.device != self.device:
            return "out needs a resize or a cast"
        if reduction == NONE:
            return _LOSSES["mse"][1].unsupported(tensors, out)  # overlap and layout checks
    return None


def _scalar_unsupported(value, positive):
    if type(value) not in (int, float):
        return "scalar parameter of another type"
    if not (value > 0 if positive else value >= 0):
        return "parameter out of range (native raises)"
    return None


def mse_loss(self, target, reduction=MEAN, *, out=None):
    return _pointwise_loss("mse", self, target, None, None, 0.0, reduction, out)


def _mse_loss_unsupported(self, target, reduction=MEAN, *, out=None):
    return _pair_unsupported(self, target, reduction, out)


def smooth_l1_loss(self, target, reduction=MEAN, beta=1.0, *, out=None):
    return _pointwise_loss("smooth_l1", self, target, None, None, beta, reduction, out)


def _smooth_l1_loss_unsupported(self, target, reduction=MEAN, beta=1.0, *, out=None):
    return _pair_unsupported(self, target, reduction, out) or _scalar_unsupported(beta, False)


def huber_loss(self, target, reduction=MEAN, delta=1.0, *, out=None):
    return _pointwise_loss("huber", self, target, None, None, delta, reduction, out)


def _huber_loss_unsupported(self, target, reduction=MEAN, delta=1.0, *, out=None):
    return _pair_unsupported(self, target, reduction, out) or _scalar_unsupported(delta, True)


def binary_cross_entropy(self, target, weight=None, reduction=MEAN, *, out=None):
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


def _bce_unsupported(self, target, weight=None, reduction=MEAN, *, out=None):
    return _bce_inputs_unsupported(self, target, weight, reduction, out)


def binary_cross_entropy_with_logits(self, target, weight=None, pos_weight=None, reduction=MEAN, *, out=None):
    return _pointwise_loss("bce_logits", self, target, weight, pos_weight, 0.0, reduction, out)


def _bce_logits_unsupported(self, target, weight=None, pos_weight=None, reduction=MEAN, *, out=None):
    reason = _pair_unsupported(self, target, reduction, out, (weight, pos_weight))
    if reason is None and (target.shape != self.shape or broadcast_shape(
            (self, target, *(w for w in (weight, pos_weight) if w is not None))) != self.shape):
        return "target, weight or pos_weight not of the input's shape"
    return reason


# ---- backward rows -------------------------------------------------------------------------


def _norm(reduction, numel, scale):
    return scale / numel if reduction == MEAN and numel else float(scale)


def _backward_unsupported(grad_output, self, target, reduction, grad_input, others=()):
    reason = _pair_unsupported(self, target, NONE, None, (grad_output,) + tuple(others))
    if reason is None:
        if target.shape != self.shape or broadcast_shape(
                (self, target, grad_output, *(t for t in others if t is not None))) != self.shape:
            return "operands not of the input's shape"
        if reduction not in (NONE, MEAN, SUM):
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


def binary_cross_entropy_backward(grad_output, self, target, weight=None, reduction=MEAN, *, grad_input=None):
    operands = (self, target, grad_output, 1.0 if weight is None else weight)
    return _LOSSES["bce"][2](operands, (_norm(reduction, self.numel(), 1.0),), grad_input)


def _bce_backward_unsupported(grad_output, self, target, weight=None, reduction=MEAN, *, grad_input=None):
    reason = _backward_unsupported(grad_output, self, target, reduction, grad_input, (weight,))
    if reason is None and self.is_cpu and (_outside_unit_interval(self) or _outside_unit_interval(target)):
        return "values outside [0, 1] (native raises)"
    return reason



ATEN = tuple(
    aten_rows("mse_loss", mse_loss, _mse_loss_unsupported, ("", "out"))
    + aten_rows("mse_loss_backward", mse_loss_backward, _mse_loss_backward_unsupported, ("", "grad_input"))
    + aten_rows("smooth_l1_loss", smooth_l1_loss, _smooth_l1_loss_unsupported, ("", "out"))
    + aten_rows("smooth_l1_loss_backward", smooth_l1_loss_backward, _smooth_l1_loss_backward_unsupported,
                ("", "grad_input"))
    + aten_rows("huber_loss", huber_loss, _huber_loss_unsupported, ("", "out"))
    + aten_rows("huber_loss_backward", huber_loss_backward, _huber_loss_backward_unsupported, ("", "out"))
    + aten_rows("binary_cross_entropy", binary_cross_entropy, _bce_unsupported, ("", "out"))
    + aten_rows("binary_cross_entropy_backward", binary_cross_entropy_backward, _bce_backward_unsupported,
                ("", "grad_input"))
    + aten_rows("binary_cross_entropy_with_logits", binary_cross_entropy_with_logits, _bce_logits_unsupported,
                ("", "out"))
)
