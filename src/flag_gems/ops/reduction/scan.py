"""Scans: cumsum, cumprod, cummax, cummin, logcumsumexp over any dim.

One kernel scans every op: the op is a constexpr code, which small helpers
turn into its combine function (named there: Triton 3.6 does not take a jit
function passed as a constexpr as a scan's combine), and its identity. The input is seen as
[M, N, K] through its strides (N scanned) and its M * K independent *lanes*
are split across programs; each program walks its lanes' N in tiles, scanning
a tile with ``tl.associative_scan`` and carrying the running value into the
next tile. When there are too few lanes to fill the device (a single long
row), N is cut into chunks: one launch computes each chunk's total, a second
one scans every chunk starting from the combined totals of the chunks before
it (so the input is read twice and written once).

cummax/cummin scan (value, index) pairs. NaN counts as larger (cummax) or
smaller (cummin) than everything, and among equal values the later index wins,
as PyTorch's kernels do.
"""

import builtins

import torch
import triton
import triton.language as tl

from ... import runtime
from ...codegen.launch import Launcher, Replay, layout_key, planned
from ...codegen.pointwise import TL_DTYPE
from ...codegen.tl_math import log1p  # by name: reached through the module, the libdevice stub would not compile
from ...utils.dtypes import accumulator
from ...utils.layout import INT32_LIMIT, cdiv, may_overlap_itself, merge_dims, next_power_of_2, partially_overlaps, shares_storage
from .common import rows_sharing_check

__all__ = ["cumsum", "cumsum_", "cumprod", "cumprod_", "cummax", "cummin", "cummax_helper", "cummin_helper",
           "logcumsumexp"]

_SUPPORTED = runtime.supported_dtypes()
_FLOATS = runtime.supported_float_dtypes()
_MAX_CHUNKS = 1024


@triton.jit
def _log_add_exp(a, b):
    hi = tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL)
    lo = tl.minimum(a, b, propagate_nan=tl.PropagateNan.ALL)
    # Equal infinities would give inf - inf: their sum is the infinity itself.
    gap = tl.where(lo == hi, 0.0, lo - hi)
    return hi + log1p(tl.exp(gap))


@triton.jit
def _pick(a, a_index, b, b_index, b_beats_a):
    """(value, index) of the winner; NaN beats numbers, equal values go to the later index."""
    a_nan = a != a
    b_nan = b != b
    wins = (b_beats_a & ~a_nan) | (b_nan & ~a_nan)
    ties = ((a == b) | (a_nan & b_nan)) & (b_index > a_index)
    take_b = wins | ties
    return tl.where(take_b, b, a), tl.where(take_b, b_index, a_index)


@triton.jit
def _max_with_index(a, a_index, b, b_index):
    return _pick(a, a_index, b, b_index, b > a)


@triton.jit
def _min_with_index(a, a_index, b, b_index):
    return _pick(a, a_index, b, b_index, b < a)


# Op codes: which combine the kernel's helpers apply.
_SUM_OP = tl.constexpr(0)
_PROD_OP = tl.constexpr(1)
_LOG_ADD_EXP_OP = tl.constexpr(2)
_MAX_OP = tl.constexpr(3)
_MIN_OP = tl.constexpr(4)


@triton.jit
def _combine(a, b, OP: tl.constexpr):
    if OP == _SUM_OP:
        result = a + b
    elif OP == _PROD_OP:
        result = a * b
    else:
        result = _log_add_exp(a, b)
    return result


@triton.jit
def _combine_pairs(a, a_index, b, b_index, OP: tl.constexpr):
    if OP == _MAX_OP:
        result, result_index = _max_with_index(a, a_index, b, b_index)
    else:
        result, result_index = _min_with_index(a, a_index, b, b_index)
    return result, result_index


@triton.jit
def _fold(v, AXIS: tl.constexpr, OP: tl.constexpr, SCAN: tl.constexpr):
    """Running values (SCAN) or total of tile ``v`` along AXIS."""
    # Triton's own sum and product combines: the interpreter folds these with numpy.
    if OP == _SUM_OP:
        if SCAN:
            result = tl.associative_scan(v, AXIS, tl.standard._sum_combine)
        else:
            result = tl.reduce(v, AXIS, tl.standard._sum_combine)
    elif OP == _PROD_OP:
        if SCAN:
            result = tl.associative_scan(v, AXIS, tl.standard._prod_combine)
        else:
            result = tl.reduce(v, AXIS, tl.standard._prod_combine)
    else:
        if SCAN:
            result = tl.associative_scan(v, AXIS, _log_add_exp)
        else:
            result = tl.reduce(v, AXIS, _log_add_exp)
    return result


@triton.jit
def _fold_pairs(v, index, AXIS: tl.constexpr, OP: tl.constexpr, SCAN: tl.constexpr):
    """Running (value, index) pairs (SCAN) or the winning pair of tile ``v`` along AXIS."""
    if OP == _MAX_OP:
        if SCAN:
            result, result_index = tl.associative_scan((v, index), AXIS, _max_with_index)
        else:
            result, result_index = tl.reduce((v, index), AXIS, _max_with_index)
    else:
        if SCAN:
            result, result_index = tl.associative_scan((v, index), AXIS, _min_with_index)
        else:
            result, result_index = tl.reduce((v, index), AXIS, _min_with_index)
    return result, result_index


@triton.jit
def _negative_zero(dtype: tl.constexpr):
    """-0.0 (0 for integers): adding it changes nothing, not even a zero's sign.
    A -0.0 literal compiles to +0.0 (Triton builds zero constants as null
    values), so the sign comes from a multiplication."""
    return tl.zeros([], dtype) * -1


@triton.jit
def _identity(OP: tl.constexpr, IDENTITY: tl.constexpr, ACC: tl.constexpr):
    """The op's identity as a scalar; a sum's is -0.0, as -0.0 + -0.0 is -0.0."""
    if OP == _SUM_OP:
        result = _negative_zero(ACC)
    else:
        result = tl.full([], IDENTITY, ACC)
    return result


@triton.jit
def _last_along(s, AXIS: tl.constexpr, BLOCK_N: tl.constexpr):
    """The entries of tile ``s`` at the last position along AXIS (a -0.0 kept)."""
    at_last = tl.expand_dims(tl.arange(0, BLOCK_N) == BLOCK_N - 1, 1 - AXIS)
    return tl.sum(tl.where(at_last, s, _negative_zero(s.dtype)), AXIS)


@triton.jit
def _scan_kernel(x, y, y_index, totals, totals_index, L, N, K,
                 x_sm, x_sn, x_sk, y_sm, y_sn, y_sk, chunk_len, chunks,
                 OP: tl.constexpr, IDENTITY: tl.constexpr, WITH_INDEX: tl.constexpr,
                 PHASE: tl.constexpr, AXIS: tl.constexpr, BLOCK_L: tl.constexpr,
                 BLOCK_N: tl.constexpr, BLOCK_CHUNKS: tl.constexpr, CAST: tl.constexpr,
                 ACC: tl.constexpr, INDEX64: tl.constexpr):
    """Scan lanes [pid0 * BLOCK_L, +BLOCK_L) of x (seen as [M, N, K], L = M * K
    lanes) along N, within chunk pid1 of ``chunk_len``.

    PHASE 0: the whole scan (one chunk). PHASE 1: only each chunk's total,
    into ``totals[lane, chunk]``. PHASE 2: scan each chunk, starting from the
    totals of the chunks before it. Tiles put N on axis AXIS (1 when lanes are
    rows, K == 1; 0 when the lanes are the contiguous K), so that the
    contiguous dim is always the tile's last.
    """
    lanes = tl.program_id(0) * BLOCK_L + tl.arange(0, BLOCK_L)
    chunk = tl.program_id(1)
    if INDEX64:
        lanes = lanes.to(tl.int64)
        index_type = tl.int64
    else:
        index_type = tl.int32
    lane_ok = tl.expand_dims(lanes < L, AXIS)
    m = lanes // K
    k = lanes % K
    x_lane = tl.expand_dims(m * x_sm + k * x_sk, AXIS)
    y_lane = tl.expand_dims(m * y_sm + k * y_sk, AXIS)
    identity = _identity(OP, IDENTITY, ACC)
    carry = tl.broadcast_to(identity, [BLOCK_L])
    carry_index = tl.full([BLOCK_L], -1, index_type)
    if PHASE == 2:
        earlier = tl.expand_dims(tl.arange(0, BLOCK_CHUNKS), 1 - AXIS)
        at = tl.expand_dims(lanes * chunks, AXIS) + earlier
        valid = lane_ok & (earlier < chunk)
        before = tl.where(valid, tl.load(totals + at, mask=valid, other=0), identity)
        if WITH_INDEX:
            before_index = tl.load(totals_index + at, mask=valid, other=-1).to(index_type)
            carry, carry_index = _fold_pairs(before, before_index, AXIS, OP, False)
        else:
            carry = _fold(before, AXIS, OP, False)
    start = chunk * chunk_len
    end = tl.minimum(start + chunk_len, N)
    for offset in range(start, end, BLOCK_N):
        n = offset + tl.arange(0, BLOCK_N)
        if INDEX64:
            n = n.to(tl.int64)
        n = tl.expand_dims(n, 1 - AXIS)
        mask = lane_ok & (n < end)
        v = tl.load(x + x_lane + n * x_sn, mask=mask, other=0).to(CAST).to(ACC)
        v = tl.where(mask, v, identity)
        if WITH_INDEX:
            index = tl.where(mask, n, -1)
            if PHASE == 1:
                tile, tile_index = _fold_pairs(v, index, AXIS, OP, False)
                carry, carry_index = _combine_pairs(carry, carry_index, tile, tile_index, OP)
            else:
                s, s_index = _fold_pairs(v, index, AXIS, OP, True)
                s, s_index = _combine_pairs(tl.expand_dims(carry, AXIS), tl.expand_dims(carry_index, AXIS), s, s_index,
                                            OP)
                tl.store(y + y_lane + n * y_sn, s.to(y.dtype.element_ty), mask=mask)
                tl.store(y_index + y_lane + n * y_sn, s_index.to(tl.int64), mask=mask)
                # Padding holds the identity, so the tile's last position is the running value.
                carry = _last_along(s, AXIS, BLOCK_N)
                carry_index = _last_along(s_index, AXIS, BLOCK_N)
        else:
            if PHASE == 1:
                carry = _combine(carry, _fold(v, AXIS, OP, False), OP)
            else:
                s = _combine(tl.expand_dims(carry, AXIS), _fold(v, AXIS, OP, True), OP)
                tl.store(y + y_lane + n * y_sn, s.to(y.dtype.element_ty), mask=mask)
                carry = _last_along(s, AXIS, BLOCK_N)
    if PHASE == 1:
        at = lanes * chunks + chunk
        tl.store(totals + at, carry, mask=lanes < L)
        if WITH_INDEX:
            tl.store(totals_index + at, carry_index.to(tl.int64), mask=lanes < L)


_SCAN = Launcher(_scan_kernel)


class _Scan:
    """A scan op: its op code, identities, and whether it yields indices."""

    def __init__(self, code, float_identity, int_identity, with_index=False):
        self.code = code
        self.float_identity = float_identity
        self.int_identity = int_identity
        self.with_index = with_index

    def identity(self, acc_dtype):
        return self.float_identity if acc_dtype.is_floating_point else self.int_identity


_SUM = _Scan(_SUM_OP.value, 0.0, 0)
_PROD = _Scan(_PROD_OP.value, 1.0, 1)
_MAX = _Scan(_MAX_OP.value, float("-inf"), -(2**63), with_index=True)
_MIN = _Scan(_MIN_OP.value, float("inf"), 2**63 - 1, with_index=True)
_LOG_ADD_EXP = _Scan(_LOG_ADD_EXP_OP.value, float("-inf"), None)


def _mnk(t, dim):
    """((M, stride), (N, stride), (K, stride)) of ``t`` scanned along ``dim``,
    or None when the dims before or after ``dim`` do not merge."""
    if t.dim() == 0:
        return (1, 0), (1, 0), (1, 0)
    sizes, strides = t.shape, t.stride()
    before = merge_dims(sizes[:dim], strides[:dim])
    after = merge_dims(sizes[dim + 1:], strides[dim + 1:])
    if before is None or after is None:
        return None
    return before, (sizes[dim], strides[dim]), after


def scan_config(L, N, K, lanes_contiguous, with_index, multiprocessors):
    """(BLOCK_L, BLOCK_N, num_warps) for L lanes of length N (K > 1: the lanes
    are a dim after N, contiguous when ``lanes_contiguous``)."""
    budget = 2048 if with_index else 4096  # tile elements held in registers
    if K == 1:
        block_n = builtins.min(next_power_of_2(N), budget)
        block_l = builtins.min(next_power_of_2(L), builtins.max(1, budget // block_n))
    else:
        block_l = builtins.min(next_power_of_2(K), 64 if lanes_contiguous else 16)
        # Narrower tiles (down to 64-byte rows) before splitting N: more programs, one pass.
        while block_l > 16 and cdiv(L, block_l) < 4 * multiprocessors:
            block_l //= 2
        block_n = builtins.min(next_power_of_2(N), builtins.max(1, budget // block_l))
    return block_l, block_n, 4 if block_l * block_n <= 1024 else 8


def _chunking(programs, N, block_l, block_n, multiprocessors):
    """(chunks, chunk_len): split N when too few programs would fill the device."""
    if programs >= multiprocessors or N <= 2 * block_n:
        return 1, N
    most = builtins.min(_MAX_CHUNKS, builtins.max(1, 8192 // block_l), cdiv(N, block_n))
    chunks = builtins.min(cdiv(4 * multiprocessors, programs), most)
    chunk_len = cdiv(cdiv(N, chunks), block_n) * block_n
    return cdiv(N, chunk_len), chunk_len


def _span(view):
    return builtins.sum((size - 1) * stride for size, stride in view)


class _ScanPlan:
    """What a scan decides from its operands' layout (the input's view or copy, whether the
    outputs are written in place, config, chunking, int arguments), replayed by later
    calls of that layout."""

    __slots__ = ("copy", "direct", "with_index", "acc", "totals", "ints", "launches")

    def __init__(self, op, x, dim, outputs, cast_dtype):
        view = _mnk(x, dim)
        self.copy = view is None
        if self.copy:
            view = _mnk(x.contiguous(), dim)
        out_views = [_mnk(t, dim) for t in outputs]
        self.direct = out_views[0] is not None and all(v == out_views[0] for v in out_views)
        (M, x_sm), (N, x_sn), (K, x_sk) = view
        y_view = out_views[0] if self.direct else _mnk(torch.empty(x.shape, device="meta"), dim)
        (_, y_sm), (_, y_sn), (_, y_sk) = y_view
        L = M * K
        self.acc = accumulator(cast_dtype)
        self.with_index = op.with_index
        index64 = builtins.max(_span(view), _span(((M, y_sm), (N, y_sn), (K, y_sk))), L * N) >= INT32_LIMIT
        multiprocessors = runtime.multiprocessor_count(x.device.index or 0)
        block_l, block_n, warps = runtime.config("scan", scan_config)(L, N, K, x_sk == 1, op.with_index,
                                                                      multiprocessors)
        programs = cdiv(L, block_l)
        chunks, chunk_len = _chunking(programs, N, block_l, block_n, multiprocessors)
        common = dict(OP=op.code, IDENTITY=op.identity(self.acc), WITH_INDEX=op.with_index,
                      AXIS=1 if K == 1 else 0, BLOCK_L=block_l, BLOCK_N=block_n, CAST=TL_DTYPE[cast_dtype],
                      ACC=TL_DTYPE[self.acc], INDEX64=index64, num_warps=warps)
        self.ints = (L, N, K, x_sm, x_sn, x_sk, y_sm, y_sn, y_sk, chunk_len, chunks)
        self.totals = None if chunks == 1 else (L, chunks)
        phases = (0,) if chunks == 1 else (1, 2)
        self.launches = [Replay(_SCAN, (programs, chunks), dict(common, PHASE=phase,
                                                                 BLOCK_CHUNKS=next_power_of_2(chunks)))
                         for phase in phases]

    def __call__(self, x, outputs):
        if self.copy:
            x = x.contiguous()
        targets = outputs if self.direct else [torch.empty(x.shape, dtype=t.dtype, device=x.device) for t in outputs]
        values = targets[0]
        indices = targets[1] if self.with_index else values
        totals, totals_index = values, indices  # one pass: its totals arguments are never read
        if self.totals is not None:
            totals = torch.empty(self.totals, dtype=self.acc, device=x.device)
            totals_index = torch.empty(self.totals, dtype=torch.int64, device=x.device) if self.with_index else totals
        for launch in self.launches:
            launch(x, values, indices, totals, totals_index, *self.ints)
        if not self.direct:
            for output, target in zip(outputs, targets):
                output.copy_(target)


_plans = {}


def _scan(op, x, dim, outputs, cast_dtype):
    """Scan ``x`` along ``dim`` into ``outputs`` (values, and indices for
    cummax/cummin), tensors of x's shape with any strides."""
    if x.numel() == 0:
        return
    dim = dim % builtins.max(x.dim(), 1)
    key = (op.code, layout_key(x), x.device, dim, cast_dtype, *map(layout_key, outputs))
    planned(_plans, key, lambda: _ScanPlan(op, x, dim, outputs, cast_dtype))(x, outputs)


def _default_dtype(dtype):
    return dtype if dtype.is_floating_point else torch.int64


def _cumulative(op, self, dim, dtype, out):
    result_dtype = dtype if dtype is not None else out.dtype if out is not None else _default_dtype(self.dtype)
    result = out if out is not None else torch.empty(self.shape, dtype=result_dtype, device=self.device)
    # PyTorch casts the input to the result dtype first, then accumulates.
    _scan(op, self, dim, (result,), result_dtype)
    return result


def cumsum(self, dim, *, dtype=None, out=None):
    """Running sum along ``dim``; integer and bool input give int64 unless ``dtype``."""
    return _cumulative(_SUM, self, dim, dtype, out)


def cumsum_(self, dim, *, dtype=None):
    """In-place running sum along ``dim``."""
    return _cumulative(_SUM, self, dim, dtype, self)


def cumprod(self, dim, *, dtype=None, out=None):
    """Running product along ``dim``; integer and bool input give int64 unless ``dtype``."""
    return _cumulative(_PROD, self, dim, dtype, out)


def cumprod_(self, dim, *, dtype=None):
    """In-place running product along ``dim``."""
    return _cumulative(_PROD, self, dim, dtype, self)


def cummax_helper(self, values, indices, dim):
    """aten::_cummax_helper: running maximum and its index into ``values``, ``indices``."""
    _scan(_MAX, self, dim, (values, indices), self.dtype)


def cummin_helper(self, values, indices, dim):
    """aten::_cummin_helper: running minimum and its index into ``values``, ``indices``."""
    _scan(_MIN, self, dim, (values, indices), self.dtype)


def _values_and_indices(op, name, self, dim):
    values = torch.empty(self.shape, dtype=self.dtype, device=self.device)
    indices = torch.empty(self.shape, dtype=torch.int64, device=self.device)
    if _helper_unsupported(self, values, indices, dim) is not None:
        return getattr(torch.ops.aten, name)(self, dim)
    _scan(op, self, dim, (values, indices), self.dtype)
    return getattr(torch.return_types, name)((values, indices))


def cummax(self, dim):
    """torch.cummax for explicit calls (routed calls reach ``cummax_helper``)."""
    return _values_and_indices(_MAX, "cummax", self, dim)


def cummin(self, dim):
    """torch.cummin for explicit calls (routed calls reach ``cummin_helper``)."""
    return _values_and_indices(_MIN, "cummin", self, dim)


def logcumsumexp(self, dim, *, out=None):
    """log(cumsum(exp(self))) along ``dim``, computed stably (running maximum)."""
    result = out if out is not None else torch.empty(self.shape, dtype=self.dtype, device=self.device)
    _scan(_LOG_ADD_EXP, self, dim, (result,), self.dtype)
    return result


# ---------------------------------------------------------------- which calls our kernels take

def _invalid_dim(dim, tensor):
    rank = builtins.max(tensor.dim(), 1)
    return not -rank <= dim < rank


def _destination_reason(out, self):
    """Why ``out`` cannot receive a scan of ``self``, or None."""
    if out.device != self.device:
        return "out on another device"
    if out.shape != self.shape:
        return "out needs resizing"
    if may_overlap_itself(out):
        return "out overlaps itself"
    if partially_overlaps(out, self):
        return "out partly overlaps the input"
    return None


def _cumulative_reason(self, dim, dtype, result_dtype):
    if self.dtype not in _SUPPORTED:
        return f"dtype {self.dtype} is not supported"
    if _invalid_dim(dim, self):
        return "invalid dim"
    if dtype is not None and dtype != result_dtype:
        return "dtype= differs from the destination's dtype"
    if result_dtype not in _SUPPORTED or result_dtype == torch.bool:
        return f"result dtype {result_dtype} is not supported"
    if not result_dtype.is_floating_point and torch.int64 not in _SUPPORTED:
        return "integer scans accumulate in int64"
    if self.dtype.is_floating_point and result_dtype == torch.uint8:
        return "negative floats have no defined uint8 value"
    return None


def _cumulative_unsupported(self, dim, *, dtype=None, out=None):
    if out is None:
        return _cumulative_reason(self, dim, dtype, dtype if dtype is not None else _default_dtype(self.dtype))
    return _cumulative_reason(self, dim, dtype, out.dtype) or _destination_reason(out, self)


def _inplace_unsupported(self, dim, *, dtype=None):
    return _cumulative_reason(self, dim, dtype, self.dtype) or ("self overlaps itself" if may_overlap_itself(self)
                                                               else None)


def _helper_unsupported(self, values, indices, dim):
    if self.dtype not in _SUPPORTED or torch.int64 not in _SUPPORTED:
        return f"dtype {self.dtype} is not supported"
    if values.dtype != self.dtype or indices.dtype != torch.int64:
        return "values or indices of another dtype"
    if _invalid_dim(dim, self):
        return "invalid dim"
    if shares_storage(values, indices):
        return "values and indices share memory"
    return _destination_reason(values, self) or _destination_reason(indices, self)


def _logcumsumexp_unsupported(self, dim, *, out=None):
    if self.dtype not in _FLOATS:
        return f"dtype {self.dtype} is not supported"
    if _invalid_dim(dim, self):
        return "invalid dim"
    if out is not None:
        if out.dtype != self.dtype:
            return "out of another dtype"
        return _destination_reason(out, self)
    return None


ATEN = (
    rows_sharing_check(_cumulative_unsupported, (cumsum, "cumsum", "cumsum.out"))
    + rows_sharing_check(_inplace_unsupported, (cumsum_, "cumsum_"))
    + rows_sharing_check(_cumulative_unsupported, (cumprod, "cumprod", "cumprod.out"))
    + rows_sharing_check(_inplace_unsupported, (cumprod_, "cumprod_"))
    + rows_sharing_check(_helper_unsupported, (cummax_helper, "_cummax_helper"), (cummin_helper, "_cummin_helper"))
    + rows_sharing_check(_logcumsumexp_unsupported, (logcumsumexp, "_logcumsumexp", "_logcumsumexp.out"))
)
