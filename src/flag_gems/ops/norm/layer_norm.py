"""Layer norm and RMS norm, forward and backward (their residual-add fusions: residual_norm).

The input is seen as [M, N], N being the normalized elements (the trailing
``normalized_shape`` dims, contiguous) and M the rest, read in place through
one row stride when the leading dims merge. One forward kernel serves layer
norm and RMS norm (constexpr CENTER), with an optional residual added first;
one backward kernel serves both. Rows that fit one tile are read once and
their variance is E[(x - mean)^2] over registers; longer rows combine
per-tile means and squared deviations (Chan et al.) and are read twice.
The backward writes per-program partial sums of dweight/dbias, reduced in a
second, deterministic pass (no atomics).
"""

import math

import torch
import triton
import triton.language as tl

from ... import runtime
from ...codegen.launch import Launcher, Replay, layout_key, planned, rows_config
from ...codegen.pointwise import TL_DTYPE
from ...codegen.tl_math import rsqrt
from ...dispatch import Row
from ...utils.dtypes import float_accumulator
from ...utils.layout import cdiv, merge_dims, next_power_of_2

__all__ = ["native_layer_norm", "native_layer_norm_backward", "fused_rms_norm", "fused_rms_norm_backward",
           "rms_norm"]

_FLOATS = runtime.supported_float_dtypes()


@triton.jit
def _load_row_tile(x_rows, r_rows, cols, mask, HAS_RES: tl.constexpr, ACC: tl.constexpr):
    """x (plus the residual, rounded to x's dtype as an unfused add would be) in ACC."""
    v = tl.load(x_rows + cols, mask=mask, other=0).to(ACC)
    if HAS_RES:
        v = (v + tl.load(r_rows + cols, mask=mask, other=0).to(ACC)).to(x_rows.dtype.element_ty).to(ACC)
    return v


@triton.jit
def _scale_shift_store(v, r, w, b, y_rows, cols, N, mask, HAS_W: tl.constexpr, HAS_B: tl.constexpr,
                       ACC: tl.constexpr):
    """y = v * rstd * w + b for a [BLOCK_M, BLOCK_N] tile of centred (raw, for RMS norm) values."""
    out = v * r[:, None]
    if HAS_W:
        out *= tl.load(w + cols, mask=cols < N, other=0).to(ACC)
    if HAS_B:
        out += tl.load(b + cols, mask=cols < N, other=0).to(ACC)
    tl.store(y_rows + cols, out.to(y_rows.dtype.element_ty), mask=mask)


@triton.jit
def _norm_forward_kernel(x, residual, h, w, b, y, mean, rstd, M, N, stride_m, eps, BLOCK_M: tl.constexpr,
                         BLOCK_N: tl.constexpr, ONE_TILE: tl.constexpr, CENTER: tl.constexpr,
                         HAS_W: tl.constexpr, HAS_B: tl.constexpr, HAS_RES: tl.constexpr,
                         STORE_H: tl.constexpr, ACC: tl.constexpr):
    """y = (h - mean) * rstd * w + b per row of h = x (+ residual); RMS norm when not CENTER.
    Stores h when STORE_H (it may overwrite the residual), mean (if CENTER) and rstd per row."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_mask = rows < M
    rows64 = rows.to(tl.int64)[:, None]
    x_rows = x + rows64 * stride_m
    r_rows = residual + rows64 * N
    h_rows = h + rows64 * N
    y_rows = y + rows64 * N
    lanes = tl.arange(0, BLOCK_N)[None, :]
    if ONE_TILE:
        mask = row_mask[:, None] & (lanes < N)
        v = _load_row_tile(x_rows, r_rows, lanes, mask, HAS_RES, ACC)
        if STORE_H:
            tl.store(h_rows + lanes, v.to(h.dtype.element_ty), mask=mask)
        if CENTER:
            mu = tl.sum(v, axis=1) / N
            v = tl.where(mask, v - mu[:, None], 0.0)
        r = rsqrt(tl.sum(v * v, axis=1) / N + eps)
        _scale_shift_store(v, r, w, b, y_rows, lanes, N, mask, HAS_W, HAS_B, ACC)
    else:
        # Each tile's mean and squared deviations, merged into the row's (Chan et al.).
        mu = tl.zeros([BLOCK_M], ACC)
        m2 = tl.zeros([BLOCK_M], ACC)
        for offset in range(0, N, BLOCK_N):
            cols = offset + lanes
            mask = row_mask[:, None] & (cols < N)
            v = _load_row_tile(x_rows, r_rows, cols, mask, HAS_RES, ACC)
            if STORE_H:
                tl.store(h_rows + cols, v.to(h.dtype.element_ty), mask=mask)
            if CENTER:
                count = tl.minimum(N - offset, BLOCK_N).to(ACC)
                tile_mean = tl.sum(v, axis=1) / count
                dev = tl.where(mask, v - tile_mean[:, None], 0.0)
                delta = tile_mean - mu
                share = count / (offset + count)
                mu += delta * share
                m2 += tl.sum(dev * dev, axis=1) + delta * delta * offset * share
            else:
                m2 += tl.sum(v * v, axis=1)
        r = rsqrt(m2 / N + eps)
        for offset in range(0, N, BLOCK_N):
            cols = offset + lanes
            mask = row_mask[:, None] & (cols < N)
            if STORE_H:  # the residual may be h's storage now: read back h itself
                v = tl.load(h_rows + cols, mask=mask, other=0).to(ACC)
            else:
                v = _load_row_tile(x_rows, r_rows, cols, mask, HAS_RES, ACC)
            if CENTER:
                v = v - mu[:, None]
            _scale_shift_store(v, r, w, b, y_rows, cols, N, mask, HAS_W, HAS_B, ACC)
    if CENTER:
        tl.store(mean + rows, mu.to(mean.dtype.element_ty), mask=row_mask)
    tl.store(rstd + rows, r.to(rstd.dtype.element_ty), mask=row_mask)


@triton.jit
def _load_grad_tile(dy_rows, x_rows, w, cols, N, mask, mu, r, CENTER: tl.constexpr, HAS_W: tl.constexpr,
                    ACC: tl.constexpr):
    """(dy, w * dy, xhat) of a tile of rows."""
    g = tl.load(dy_rows + cols, mask=mask, other=0).to(ACC)
    v = tl.load(x_rows + cols, mask=mask, other=0).to(ACC)
    if CENTER:
        v = v - mu
    wg = g * tl.load(w + cols, mask=cols < N, other=0).to(ACC) if HAS_W else g
    return g, wg, v * r


@triton.jit
def _store_dx(dx_rows, dh_rows, cols, mask, wg, xhat, c1, c2, r, CENTER: tl.constexpr, HAS_DH: tl.constexpr,
              ACC: tl.constexpr):
    """dx = (w * dy - xhat * c1 - c2) * rstd (no c2 for RMS norm), plus dh."""
    grad = wg - xhat * c1
    if CENTER:
        grad -= c2
    grad *= r
    if HAS_DH:
        grad += tl.load(dh_rows + cols, mask=mask, other=0).to(ACC)
    tl.store(dx_rows + cols, grad.to(dx_rows.dtype.element_ty), mask=mask)


@triton.jit
def _norm_backward_kernel(dy, x, w, mean, rstd, dh, dx, partial, M, N, dy_stride_m, x_stride_m, rows_per_program,
                          BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, ONE_TILE: tl.constexpr,
                          CENTER: tl.constexpr, HAS_W: tl.constexpr, HAS_DH: tl.constexpr,
                          NEED_DX: tl.constexpr, NEED_PARTIAL: tl.constexpr, ACC: tl.constexpr):
    """dx of layer norm (RMS norm when not CENTER) over this program's rows, plus dh (a gradient
    reaching h = x + residual directly); partial[pid] = (sum of dy * xhat, sum of dy) over them."""
    pid = tl.program_id(0)
    start = pid * rows_per_program
    end = tl.minimum(start + rows_per_program, M)
    lanes = tl.arange(0, BLOCK_N)[None, :]
    partial_w = partial + pid.to(tl.int64) * 2 * N + lanes
    partial_b = partial_w + N
    if ONE_TILE:
        dw_acc = tl.zeros([1, BLOCK_N], ACC)
        db_acc = tl.zeros([1, BLOCK_N], ACC)
    for row0 in range(start, end, BLOCK_M):
        rows = row0 + tl.arange(0, BLOCK_M)
        row_mask = rows < end
        rows64 = rows.to(tl.int64)[:, None]
        dy_rows = dy + rows64 * dy_stride_m
        x_rows = x + rows64 * x_stride_m
        dx_rows = dx + rows64 * N
        dh_rows = dh + rows64 * N
        r = tl.load(rstd + rows, mask=row_mask, other=0).to(ACC)[:, None]
        mu = tl.load(mean + rows, mask=row_mask, other=0).to(ACC)[:, None] if CENTER else 0.0
        if ONE_TILE:
            mask = row_mask[:, None] & (lanes < N)
            g, wg, xhat = _load_grad_tile(dy_rows, x_rows, w, lanes, N, mask, mu, r, CENTER, HAS_W, ACC)
            c1 = tl.sum(wg * xhat, axis=1)[:, None] / N
            c2 = tl.sum(wg, axis=1)[:, None] / N
            if NEED_DX:
                _store_dx(dx_rows, dh_rows, lanes, mask, wg, xhat, c1, c2, r, CENTER, HAS_DH, ACC)
            if NEED_PARTIAL:
                dw_acc += tl.sum(g * xhat, axis=0)[None, :]
                db_acc += tl.sum(g, axis=0)[None, :]
        else:
            # c1 = mean(w * dy * xhat) and c2 = mean(w * dy) first, then dx: the row is read twice.
            c1 = tl.zeros([BLOCK_M, 1], ACC)
            c2 = tl.zeros([BLOCK_M, 1], ACC)
            for offset in range(0, N, BLOCK_N):
                mask = row_mask[:, None] & (offset + lanes < N)
                g, wg, xhat = _load_grad_tile(dy_rows, x_rows, w, offset + lanes, N, mask, mu, r, CENTER, HAS_W,
                                              ACC)
                c1 += tl.sum(wg * xhat, axis=1)[:, None]
                c2 += tl.sum(wg, axis=1)[:, None]
            c1 = c1 / N
            c2 = c2 / N
            for offset in range(0, N, BLOCK_N):
                cols = offset + lanes
                mask = row_mask[:, None] & (cols < N)
                g, wg, xhat = _load_grad_tile(dy_rows, x_rows, w, cols, N, mask, mu, r, CENTER, HAS_W, ACC)
                if NEED_DX:
                    _store_dx(dx_rows, dh_rows, cols, mask, wg, xhat, c1, c2, r, CENTER, HAS_DH, ACC)
                if NEED_PARTIAL:  # this program's own slice of partial: no other program touches it
                    col_mask = cols < N
                    tl.store(partial_w + offset, tl.load(partial_w + offset, mask=col_mask)
                             + tl.sum(g * xhat, axis=0)[None, :], mask=col_mask)
                    tl.store(partial_b + offset, tl.load(partial_b + offset, mask=col_mask)
                             + tl.sum(g, axis=0)[None, :], mask=col_mask)
    if NEED_PARTIAL and ONE_TILE:
        tl.store(partial_w, dw_acc, mask=lanes < N)
        tl.store(partial_b, db_acc, mask=lanes < N)


@triton.jit
def _weight_bias_grads_kernel(partial, dw, db, P, N, NEED_W: tl.constexpr, NEED_B: tl.constexpr,
                              BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr, ACC: tl.constexpr):
    """dweight and dbias, BLOCK_N columns each: the P programs' partial sums added up
    (one launch for both, where a generic reduction would take two)."""
    cols = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)[None, :]
    col_mask = cols < N
    sums_w = tl.zeros([BLOCK_P, BLOCK_N], ACC)
    sums_b = tl.zeros([BLOCK_P, BLOCK_N], ACC)
    for start in range(0, P, BLOCK_P):
        programs = start + tl.arange(0, BLOCK_P)[:, None]
        mask = (programs < P) & col_mask
        at = partial + programs.to(tl.int64) * 2 * N + cols
        if NEED_W:
            sums_w += tl.load(at, mask=mask, other=0)
        if NEED_B:
            sums_b += tl.load(at + N, mask=mask, other=0)
    if NEED_W:
        tl.store(dw + cols, tl.sum(sums_w, axis=0)[None, :].to(dw.dtype.element_ty), mask=col_mask)
    if NEED_B:
        tl.store(db + cols, tl.sum(sums_b, axis=0)[None, :].to(db.dtype.element_ty), mask=col_mask)


_FORWARD = Launcher(_norm_forward_kernel)
_BACKWARD = Launcher(_norm_backward_kernel)
_WEIGHT_BIAS_GRADS = Launcher(_weight_bias_grads_kernel)


def backward_config(M, N, one_tile_limit):
    """(BLOCK_M, BLOCK_N, num_warps, programs per multiprocessor) of the backward kernel."""
    block_m, block_n, _ = rows_config(M, N, one_tile_limit)
    # A program holds dy, x, w and its dweight/dbias sums: more warps keep that in registers.
    tile = block_m * block_n
    warps = 4 if tile <= 1024 else 8 if tile <= 2048 else 16
    # Each program walks many rows; two per multiprocessor keep the partial sums
    # (programs x 2N) small next to the rows themselves.
    return block_m, block_n, warps, 2


def _one_tile_limit(dtype, arrays):
    """Row elements kept in registers at once by a kernel holding ``arrays`` tiles of them."""
    return (32768 if arrays == 1 else 16384) >> (dtype == torch.float64)


def _rows_layout(tensor, ndim):
    """(copy, row stride): ``tensor`` is read as [M, N] rows, N its last ``ndim`` dims, in place
    when those are dense and the leading dims merge into one stride; else (``copy``) as a
    contiguous copy."""
    lead = tensor.dim() - ndim
    outer = merge_dims(tensor.shape[:lead], tensor.stride()[:lead])
    inner = merge_dims(tensor.shape[lead:], tensor.stride()[lead:])
    if outer is None or inner is None or (inner[0] > 1 and inner[1] != 1):
        return True, math.prod(tensor.shape[lead:])
    return False, outer[1]


def _stat_shape(x, ndim):
    return (*x.shape[:x.dim() - ndim], *(1,) * ndim)


# Launch plans by call layout (shapes, strides, dtypes, alignment, flags): the first call of a
# layout decides views, configs and grids; later ones replay them.
_plans = {}


def _forward_plan(x, ndim, M, N, center, weight, bias, residual, h):
    copy, stride_m = _rows_layout(x, ndim)
    block_m, block_n, warps = runtime.config("norm_forward", rows_config)(M, N, _one_tile_limit(x.dtype, 1))
    return copy, stride_m, Replay(_FORWARD, (cdiv(M, block_m),), dict(
        BLOCK_M=block_m, BLOCK_N=block_n, ONE_TILE=block_n >= N, CENTER=center, HAS_W=weight is not None,
        HAS_B=bias is not None, HAS_RES=residual is not None, STORE_H=h is not None,
        ACC=TL_DTYPE[float_accumulator(x.dtype)], num_warps=warps))


def _norm_forward(x, ndim, weight, bias, eps, center, stat_dtype, residual=None, h=None, out=None):
    """(y, mean or None, rstd) of layer norm (RMS norm unless ``center``) over the last ``ndim`` dims
    of x (+ residual, then stored into ``h`` when given); y goes into ``out`` when given."""
    N = math.prod(x.shape[x.dim() - ndim:])
    M = x.numel() // N
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device) if out is None else out
    stat_shape = _stat_shape(x, ndim)
    mean = torch.empty(stat_shape, dtype=stat_dtype, device=x.device) if center else None
    rstd = torch.empty(stat_shape, dtype=stat_dtype, device=x.device)
    if M == 0:
        return y, mean, rstd
    weight, bias = (None if p is None else p.contiguous() for p in (weight, bias))
    key = ("forward", layout_key(x), x.device, ndim, center, stat_dtype, layout_key(weight), layout_key(bias),
           layout_key(residual), layout_key(h), layout_key(out))
    copy, stride_m, replay = planned(
        _plans, key, lambda: _forward_plan(x, ndim, M, N, center, weight, bias, residual, h))
    rows = x.contiguous() if copy else x
    replay(rows, rows if residual is None else residual, rows if h is None else h, rows if weight is None else weight,
           rows if bias is None else bias, y, rstd if mean is None else mean, rstd, M, N, stride_m, float(eps))
    return y, mean, rstd


def _backward_plan(dy, x, ndim, M, N, center, weight, need_dx, need_dw, need_db, dh):
    dy_copy, dy_stride = _rows_layout(dy, ndim)
    x_copy, x_stride = _rows_layout(x, ndim)
    acc_dtype = float_accumulator(x.dtype)
    acc = TL_DTYPE[acc_dtype]
    block_m, block_n, warps, per_sm = runtime.config("norm_backward", backward_config)(
        M, N, _one_tile_limit(x.dtype, 2))
    one_tile = block_n >= N
    blocks = cdiv(M, block_m)
    rows_per_program = cdiv(blocks, min(blocks, runtime.multiprocessor_count(x.device.index or 0) * per_sm))
    rows_per_program *= block_m
    programs = cdiv(M, rows_per_program)
    need_partial = need_dw or need_db
    backward = Replay(_BACKWARD, (programs,), dict(
        BLOCK_M=block_m, BLOCK_N=block_n, ONE_TILE=one_tile, CENTER=center, HAS_W=weight is not None,
        HAS_DH=dh is not None, NEED_DX=need_dx, NEED_PARTIAL=need_partial, ACC=acc, num_warps=warps))
    # Looped rows add each tile's sums into the partial sums in memory: they start from zero.
    partial = ((torch.empty if one_tile else torch.zeros), (programs, 2, N), acc_dtype) if need_partial else None
    grads = None
    if need_partial:
        block_n = min(next_power_of_2(N), 32)
        grads = Replay(_WEIGHT_BIAS_GRADS, (cdiv(N, block_n),), dict(
            NEED_W=need_dw, NEED_B=need_db, BLOCK_P=min(next_power_of_2(programs), 64), BLOCK_N=block_n, ACC=acc,
            num_warps=4))
    return dy_copy, dy_stride, x_copy, x_stride, rows_per_program, programs, partial, backward, grads


def _norm_backward(dy, x, ndim, mean, rstd, weight, need_dx, need_dw, need_db, dh=None):
    """(dx, dweight, dbias), each None unless asked for, of layer norm (RMS norm when ``mean`` is
    None) over the last ``ndim`` dims; ``dh`` (contiguous) is added to dx."""
    N = math.prod(x.shape[x.dim() - ndim:])
    M = x.numel() // N
    params = x.shape[x.dim() - ndim:]
    dx = torch.empty(x.shape, dtype=x.dtype, device=x.device) if need_dx else None
    dw = torch.empty(params, dtype=weight.dtype, device=x.device) if need_dw else None
    db = torch.empty(params, dtype=x.dtype, device=x.device) if need_db else None
    if M == 0:
        return dx, None if dw is None else dw.zero_(), None if db is None else db.zero_()
    weight = None if weight is None else weight.contiguous()
    # the kernels read the statistics as M contiguous values
    mean, rstd = (None if s is None else s.contiguous() for s in (mean, rstd))
    key = ("backward", layout_key(x), layout_key(dy), x.device, ndim, layout_key(mean), layout_key(rstd),
           layout_key(weight), layout_key(dh), need_dx, need_dw, need_db)
    dy_copy, dy_stride, x_copy, x_stride, rows_per_program, programs, partial, backward, grads = planned(
        _plans, key, lambda: _backward_plan(dy, x, ndim, M, N, mean is not None, weight, need_dx, need_dw, need_db, dh))
    dy_rows = dy.contiguous() if dy_copy else dy
    x_rows = x.contiguous() if x_copy else x
    if partial is not None:
        allocate, shape, dtype = partial
        partial = allocate(shape, dtype=dtype, device=x.device)
    backward(dy_rows, x_rows, x_rows if weight is None else weight, rstd if mean is None else mean, rstd,
             dy_rows if dh is None else dh, x_rows if dx is None else dx, rstd if partial is None else partial, M, N,
             dy_stride, x_stride, rows_per_program)
    if grads is not None:
        grads(partial, partial if dw is None else dw, partial if db is None else db, programs, N)
    return dx, dw, db


def _layer_norm_stat_dtype(x):
    if x.dtype == torch.float64:
        return torch.float64
    # PyTorch's CPU kernel keeps mean and rstd in the input's dtype; the GPU ones in fp32.
    return x.dtype if x.device.type == "cpu" else torch.float32


def native_layer_norm(input, normalized_shape, weight, bias, eps):
    """(y, mean, rstd) of layer norm over the trailing ``normalized_shape`` dims."""
    return _norm_forward(input, len(normalized_shape), weight, bias, eps, True, _layer_norm_stat_dtype(input))


def native_layer_norm_backward(grad_out, input, normalized_shape, mean, rstd, weight, bias, output_mask):
    """(dinput, dweight, dbias) of layer norm, each only where ``output_mask`` asks."""
    return _norm_backward(grad_out, input, len(normalized_shape), mean, rstd, weight, *output_mask)


def _default_rms_eps(eps, dtype):
    """PyTorch's default: the machine epsilon of the type it computes in."""
    return torch.finfo(float_accumulator(dtype)).eps if eps is None else eps


def _fused_rms_norm(input, normalized_shape, weight, eps):
    y, _, rstd = _norm_forward(input, len(normalized_shape), weight, None, _default_rms_eps(eps, input.dtype),
                               False, float_accumulator(input.dtype))
    return y, rstd


def _fused_rms_norm_backward(grad_out, input, normalized_shape, rstd, weight, output_mask):
    dx, dw, _ = _norm_backward(grad_out, input, len(normalized_shape), None, rstd, weight, output_mask[0],
                               output_mask[1], False)
    return dx, dw


def _params_unsupported(input, normalized_shape, *params):
    if input.dtype not in _FLOATS:
        return f"dtype {input.dtype} is not supported"
    shape = list(normalized_shape)
    if not shape or len(shape) > input.dim() or list(input.shape[input.dim() - len(shape):]) != shape:
        return "input does not end with normalized_shape"
    if math.prod(shape) == 0:
        return "nothing to normalize"
    if math.prod(shape) >= 2**31:
        return "rows of 2**31 elements or more"
    for param in params:
        if param is not None and (param.dtype != input.dtype or list(param.shape) != shape
                                  or param.device != input.device):
            return "weight or bias differs from the input in dtype, shape or device"
    return None


def _grad_unsupported(grad_out, input, normalized_shape, stats):
    if grad_out.dtype != input.dtype or grad_out.shape != input.shape or grad_out.device != input.device:
        return "grad_out differs from the input in dtype, shape or device"
    rows = input.numel() // math.prod(normalized_shape)
    for stat in stats:
        if not stat.is_floating_point() or stat.numel() != rows or stat.device != input.device:
            return "mean or rstd do not match the input"
    return None


def _layer_norm_unsupported(input, normalized_shape, weight, bias, eps):
    return _params_unsupported(input, normalized_shape, weight, bias)


def _layer_norm_backward_unsupported(grad_out, input, normalized_shape, mean, rstd, weight, bias, output_mask):
    if (output_mask[1] and weight is None) or (output_mask[2] and bias is None):
        return "a gradient asked for a missing weight or bias"
    return (_params_unsupported(input, normalized_shape, weight, bias)
            or _grad_unsupported(grad_out, input, normalized_shape, (mean, rstd)))


def _rms_norm_unsupported(input, normalized_shape, weight, eps):
    return _params_unsupported(input, normalized_shape, weight)


def _rms_norm_backward_unsupported(grad_out, input, normalized_shape, rstd, weight, output_mask):
    if output_mask[1] and weight is None:
        return "a gradient asked for a missing weight"
    return (_params_unsupported(input, normalized_shape, weight)
            or _grad_unsupported(grad_out, input, normalized_shape, (rstd,)))


def fused_rms_norm(input, normalized_shape, weight=None, eps=None):
    """aten::_fused_rms_norm: (y, rstd) of RMS norm over the trailing ``normalized_shape`` dims."""
    if _rms_norm_unsupported(input, normalized_shape, weight, eps) is not None:
        return torch.ops.aten._fused_rms_norm(input, normalized_shape, weight, eps)
    return _fused_rms_norm(input, normalized_shape, weight, eps)


def fused_rms_norm_backward(grad_out, input, normalized_shape, rstd, weight, output_mask):
    """aten::_fused_rms_norm_backward: (dinput, dweight), each only where ``output_mask`` asks."""
    if _rms_norm_backward_unsupported(grad_out, input, normalized_shape, rstd, weight, output_mask) is not None:
        return torch.ops.aten._fused_rms_norm_backward(grad_out, input, normalized_shape, rstd, weight, output_mask)
    return _fused_rms_norm_backward(grad_out, input, normalized_shape, rstd, weight, output_mask)


def _normalized_shape(normalized_shape):
    return (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)


def _needs_grad(*tensors):
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


class _RMSNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, normalized_shape, weight, eps):
        y, rstd = _fused_rms_norm(x, normalized_shape, weight, eps)
        ctx.save_for_backward(x, weight, rstd)
        ctx.ndim = len(normalized_shape)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, rstd = ctx.saved_tensors
        dx, dw, _ = _norm_backward(dy, x, ctx.ndim, None, rstd, weight, ctx.needs_input_grad[0],
                                   ctx.needs_input_grad[2], False)
        return dx, None, dw, None


def rms_norm(x, normalized_shape, weight=None, eps=1e-5):
    """RMS norm of ``x`` over the trailing ``normalized_shape`` dims, times ``weight``; differentiable.
    ``rms_norm(x, weight, eps)`` (FlagGems' C++ operator's form) normalizes over weight's shape."""
    if isinstance(normalized_shape, torch.Tensor):
        normalized_shape, weight, eps = normalized_shape.shape, normalized_shape, 1e-5 if weight is None else weight
    normalized_shape = _normalized_shape(normalized_shape)
    if _params_unsupported(x, normalized_shape, weight) is not None:
        return torch.nn.functional.rms_norm(x, normalized_shape, weight, eps)
    if _needs_grad(x, weight):
        return _RMSNorm.apply(x, normalized_shape, weight, eps)
    return _fused_rms_norm(x, normalized_shape, weight, eps)[0]


def _has_native_kernel(name):
    return torch._C._dispatch_has_kernel_for_dispatch_key(name, runtime.selected_vendor().dispatch_key)


ATEN = (
    Row("native_layer_norm", native_layer_norm, _layer_norm_unsupported),
    Row("native_layer_norm_backward", native_layer_norm_backward, _layer_norm_backward_unsupported),
) + ((
    # Only where the backend has its own backward: once any kernel is registered for
    # _fused_rms_norm, autograd calls _fused_rms_norm_backward instead of decomposing.
    Row("_fused_rms_norm", _fused_rms_norm, _rms_norm_unsupported),
    Row("_fused_rms_norm_backward", _fused_rms_norm_backward, _rms_norm_backward_unsupported),
) if _has_native_kernel("aten::_fused_rms_norm_backward") else ())
