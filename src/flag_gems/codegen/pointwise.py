"""One generator for every elementwise operator.

An operator supplies a ``@triton.jit`` formula over values already converted
to its compute dtype, e.g. ``def _add(a, b, alpha): return a + b * alpha``.
``Pointwise(formula, "add")`` is then called with an output tensor, the compute
dtype and the operands: tensors broadcastable to the output (any strides,
zero strides included) or Python numbers. It generates, per pattern of
tensor/number operands:

- a flat kernel for the common case: every tensor has the output's shape and
  all share one dense layout (contiguous, or permuted alike);
- a strided kernel per rank left after collapsing mergeable dims, that tiles
  [outer rows x last dim] so index arithmetic is paid per row, not per element.

64-bit indexing is switched on only when an offset can pass 2**31. Block sizes
and warps come from two tuners (``pointwise_flat``, ``pointwise_strided``): an
untuned size runs the heuristic, a tuned one what the tuning cache holds.
"""

from functools import partial

import torch
import triton.language as tl

from .. import runtime, tuning
from .. import fastpath
from ..utils.layout import INT32_LIMIT, cdiv, next_power_of_2
from .cache import load_generated
from .launch import INTERPRETED, Launcher

TL_DTYPE = {
    torch.float16: tl.float16, torch.bfloat16: tl.bfloat16, torch.float32: tl.float32,
    torch.float64: tl.float64, torch.int8: tl.int8, torch.uint8: tl.uint8, torch.int16: tl.int16,
    torch.int32: tl.int32, torch.int64: tl.int64, torch.bool: tl.int1,
}



def _header(formula):
    fn = getattr(formula, "fn", formula)
    return [
        "import triton",
        "import triton.language as tl",
        f"from {fn.__module__} import {fn.__qualname__} as formula",
        "",
        "",
    ]


def _operand_lines(pattern, load):
    """Lines computing v0..vN in the compute dtype; ``load(i)`` is operand i's load."""
    return [
        f"    v{i} = {load(i)}.to(COMPUTE)" if kind == "T" else f"    v{i} = tl.cast(s{i}, COMPUTE)"
        for i, kind in enumerate(pattern)
    ]


def _params(pattern):
    return [f"in{i}" if kind == "T" else f"s{i}" for i, kind in enumerate(pattern)]


def _decorator(pattern):
    scalars = [f"s{i}" for i, kind in enumerate(pattern) if kind == "S"]
    return f"@triton.jit(do_not_specialize={scalars!r})" if scalars else "@triton.jit"


def _store(target):
    return [
        "    if OUT_BOOL:",
        f"        tl.store({target}, result != 0, mask=mask)",
        "    else:",
        f"        tl.store({target}, result.to(out.dtype.element_ty), mask=mask)",
    ]


def _formula_args(pattern, takes_result_dtype):
    return ", ".join([f"v{i}" for i in range(len(pattern))] + (["out.dtype.element_ty"] if takes_result_dtype else []))


def flat_source(formula, pattern, takes_result_dtype=False):
    values = _formula_args(pattern, takes_result_dtype)
    return "\n".join(
        _header(formula)
        + [
            _decorator(pattern),
            f"def kernel({', '.join(_params(pattern))}, out, n, BLOCK: tl.constexpr,",
            "           COMPUTE: tl.constexpr, OUT_BOOL: tl.constexpr, INDEX64: tl.constexpr):",
            "    pid = tl.program_id(0)",
            "    if INDEX64:",
            "        pid = pid.to(tl.int64)",
            "    offsets = pid * BLOCK + tl.arange(0, BLOCK)",
            "    mask = offsets < n",
        ]
        + _operand_lines(pattern, lambda i: f"tl.load(in{i} + offsets, mask=mask)")
        + [f"    result = formula({values})"]
        + _store("out + offsets")
    ) + "\n"


def tile_lines(rank, tensors):
    """The opening of a kernel over [rows x last dim] tiles of a ``rank``-dim shape
    (``size0``..., ``n_rows``, ``BLOCK_R``, ``BLOCK_C``, ``INDEX64``): ``rows``, ``cols``,
    ``row_mask``, ``mask``, and per tensor ``t`` (strides ``t_st0``...) the offset of each
    row's first element, ``t_row``. The row number is split into the outer dims, innermost first."""
    last = rank - 1
    lines = [
        "    pid = tl.program_id(0)",
        f"    col_blocks = tl.cdiv(size{last}, BLOCK_C)",
        "    rows = (pid // col_blocks) * BLOCK_R + tl.arange(0, BLOCK_R)",
        "    cols = (pid % col_blocks) * BLOCK_C + tl.arange(0, BLOCK_C)",
        "    if INDEX64:",
        "        rows = rows.to(tl.int64)",
        "        cols = cols.to(tl.int64)",
        "    row_mask = rows < n_rows",
        f"    mask = row_mask[:, None] & (cols < size{last})[None, :]",
    ]
    lines += [f"    {t}_row = rows * 0" for t in tensors]
    if rank > 1:
        lines.append("    rest = rows")
        for d in range(rank - 2, -1, -1):
            if d > 0:
                lines += [f"    index = rest % size{d}", f"    rest = rest // size{d}"]
            else:
                lines.append("    index = rest")
            lines += [f"    {t}_row += index * {t}_st{d}" for t in tensors]
    return lines


def strided_source(formula, pattern, rank, takes_result_dtype=False):
    tensors = [f"in{i}" for i, kind in enumerate(pattern) if kind == "T"] + ["out"]
    last = rank - 1
    sizes = [f"size{d}" for d in range(rank)]
    strides = [f"{t}_st{d}" for t in tensors for d in range(rank)]
    values = _formula_args(pattern, takes_result_dtype)
    lines = _header(formula) + [
        _decorator(pattern),
        f"def kernel({', '.join(_params(pattern))}, out, {', '.join(sizes + strides)}, n_rows,",
        "           BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,",
        "           COMPUTE: tl.constexpr, OUT_BOOL: tl.constexpr, INDEX64: tl.constexpr):",
    ] + tile_lines(rank, tensors)
    for t in tensors:
        lines.append(f"    {t}_at = {t} + ({t}_row[:, None] + cols[None, :] * {t}_st{last})")
    lines += _operand_lines(pattern, lambda i: f"tl.load(in{i}_at, mask=mask)")
    lines.append(f"    result = formula({values})")
    lines += _store("out_at")
    return "\n".join(lines) + "\n"


def broadcast_strides(tensor, shape):
    """``tensor``'s strides seen through broadcasting to ``shape``."""
    pad = len(shape) - tensor.dim()
    own_sizes, own_strides = tensor.shape, tensor.stride()
    return [
        0 if d < pad or own_sizes[d - pad] == 1 else own_strides[d - pad]
        for d in range(len(shape))
    ]


def collapse(shape, strides_per_tensor):
    """Drop size-1 dims and merge neighbours that are contiguous in every tensor."""
    keep = [d for d, size in enumerate(shape) if size != 1] or [len(shape) - 1] if shape else []
    if not keep:
        return [1], [[0] for _ in strides_per_tensor]
    sizes = [shape[keep[0]]]
    strides = [[st[keep[0]]] for st in strides_per_tensor]
    for d in keep[1:]:
        if all(st_out[-1] == st[d] * shape[d] for st_out, st in zip(strides, strides_per_tensor)):
            sizes[-1] *= shape[d]
            for st_out, st in zip(strides, strides_per_tensor):
                st_out[-1] = st[d]
        else:
            sizes.append(shape[d])
            for st_out, st in zip(strides, strides_per_tensor):
                st_out.append(st[d])
    return sizes, strides


def _is_dense(shape, strides):
    """True when the elements fill a block of memory with no gaps or overlaps."""
    expected = 1
    for size, stride in sorted(zip(shape, strides), key=lambda p: p[1]):
        if size != 1 and stride != expected:
            return False
        expected *= size
    return True


# ---- configs: a heuristic per kernel (a vendor may override it), then the tuners

# Up to this many elements a call always runs the heuristic: it takes a few
# microseconds whatever the config, so timing candidates would only cost compiles.
SMALL_TENSOR = 65536


def flat_config(size, itemsize, tensors):
    """(BLOCK, num_warps) of the flat kernel for ``size`` elements rounded up to a power
    of two (at least 128), ``itemsize`` bytes in the widest element, ``tensors`` tensor
    operands."""
    return (size if size <= 1024 else 2048), 4


def strided_config(rows, last, transposed, itemsize):
    """(BLOCK_R, BLOCK_C, num_warps) of the strided kernel for ``rows`` x ``last`` (both
    rounded up to powers of two); ``transposed``: some operand's last dim is not its
    contiguous one, so square tiles serve both layouts."""
    block_c = min(last, 64 if transposed else 1024)
    return min(rows, max(1, 4096 // block_c)), block_c, 4


def flat_space():
    """Candidates, likeliest first: 4 to 32 elements a thread."""
    return [(4096, 4), (4096, 8), (8192, 8), (2048, 8), (1024, 4), (8192, 16), (16384, 16), (4096, 16),
            (2048, 16), (1024, 8), (2048, 4)]


def strided_space():
    """Candidates, likeliest first: tiles of 2k to 8k elements, of every row length."""
    tiles = [(4096, 4), (8192, 8), (4096, 8), (2048, 4)]
    return [(tile // c, c, warps) for tile, warps in tiles for c in (1024, 512, 256, 128, 64, 32, 16, 2048, 4096)
            if c <= tile]


def _widest(out_dtype, first_dtype):
    return max(out_dtype.itemsize, first_dtype.itemsize)


# Raw keys, built per call from values at hand: flat (size, pattern, out dtype, first
# tensor's dtype); strided (rows, last, transposed, out dtype, first tensor's dtype),
# sizes rounded up to powers of two. The first tensor and the output cover the widest
# operand of every same-dtype or promoting call.
def _flat_key(size, pattern, out_dtype, first_dtype):
    return size, _widest(out_dtype, first_dtype), pattern.count("T")


def _strided_key(rows, last, transposed, out_dtype, first_dtype):
    return rows, last, transposed, _widest(out_dtype, first_dtype)


def _flat_heuristic(*raw):
    return runtime.config("pointwise_flat", flat_config)(*_flat_key(*raw))


def _strided_heuristic(*raw):
    return runtime.config("pointwise_strided", strided_config)(*_strided_key(*raw))


def _flat_fits(key, config):
    return config[0] <= key[0]


def _strided_fits(key, config):
    return config[0] <= key[0] and config[1] <= key[1]


_GENERATOR = [_header, _params, _decorator, _operand_lines, _formula_args, _store]
FLAT_TUNER = tuning.Tuner("pointwise_flat", heuristic=_flat_heuristic, space=flat_space, key=_flat_key,
                          prune=_flat_fits, sources=[flat_source, *_GENERATOR], fields=("BLOCK", "num_warps"),
                          on_forget=fastpath.forget_pointwise_kernels)
STRIDED_TUNER = tuning.Tuner("pointwise_strided", heuristic=_strided_heuristic, space=strided_space,
                             key=_strided_key, prune=_strided_fits, sources=[strided_source, tile_lines, *_GENERATOR],
                             fields=("BLOCK_R", "BLOCK_C", "num_warps"))


def _launch_flat(launcher, args, numel, compute, out_bool, config, target):
    block, warps = config
    return launcher((cdiv(numel, block),), *args, target, numel, BLOCK=block, COMPUTE=compute, OUT_BOOL=out_bool,
                    INDEX64=numel >= INT32_LIMIT, num_warps=warps)


def _launch_strided(launcher, args, sizes, strides, n_rows, compute, out_bool, index64, config, target):
    block_r, block_c, warps = config
    grid = (cdiv(n_rows, block_r) * cdiv(sizes[-1], block_c),)
    launcher(grid, *args, target, *sizes, *strides, n_rows, BLOCK_R=block_r, BLOCK_C=block_c, COMPUTE=compute,
             OUT_BOOL=out_bool, INDEX64=index64, num_warps=warps)


def _scratch_runner(out, launch):
    """run(config) for a tuner: ``launch(config, target)`` into a scratch tensor laid out
    as ``out``; never into ``out``, which is the caller's and may be an input too."""
    scratch = []

    def run(config):
        if not scratch:
            scratch.append(torch.empty_strided(out.shape, out.stride(), dtype=out.dtype, device=out.device))
        launch(config, scratch[0])

    return run


class Pointwise:
    """An elementwise operator generated from a scalar formula."""

    def __init__(self, formula, name, takes_result_dtype=False, launch_from_cpp=False, flush_denormals=False):
        self.formula = formula
        self.name = name
        self.flush_denormals = flush_denormals  # see runtime.compile_options
        # The formula's last parameter is the output's element type (a constexpr).
        self.takes_result_dtype = takes_result_dtype
        # Whether flag_gems.c_operators may launch this operator's flat kernels; only
        # for operators whose result dtype follows from their input dtype alone.
        self.cpp = fastpath.CppPointwise() if launch_from_cpp else None
        self._kernels = {}

    def fast(self, *args):
        """The operator over ``args`` (as the kernel takes them) launched from C++,
        or None when the C++ wrappers do not cover the call."""
        return None if self.cpp is None else self.cpp.run(args)

    def _launcher(self, pattern, rank):
        key = (pattern, rank)
        launcher = self._kernels.get(key)
        if launcher is None:
            if rank is None:
                source = flat_source(self.formula, pattern, self.takes_result_dtype)
                module_name = f"{self.name}_{pattern}_flat"
            else:
                source = strided_source(self.formula, pattern, rank, self.takes_result_dtype)
                module_name = f"{self.name}_{pattern}_rank{rank}"
            launcher = Launcher(load_generated("pointwise", module_name, source).kernel, self.flush_denormals)
            self._kernels[key] = launcher
        return launcher

    def __call__(self, out, compute_dtype, *operands, teach_cpp=False):
        """Write ``formula(*operands)`` into ``out`` (its shape and strides as given).
        ``teach_cpp``: ``out`` is a fresh result of the operator's own dtype, so the
        kernel may be handed to the C++ wrappers for later such calls."""
        numel = out.numel()
        if numel == 0:
            return out
        args, tensors, pattern = [], [], ""
        for value in operands:
            if isinstance(value, torch.Tensor):
                if value.is_cpu and not out.is_cpu:  # a 0-d CPU tensor: a number
                    value = value.item()
                else:
                    tensors.append(value)
                    args.append(value)
                    pattern += "T"
                    continue
            if compute_dtype == torch.float64 and isinstance(value, float):
                # Triton passes Python floats as fp32: keep fp64 numbers exact.
                value = torch.tensor(value, dtype=torch.float64, device=out.device)
                tensors.append(value)
                args.append(value)
                pattern += "T"
                continue
            args.append(int(value) if isinstance(value, bool) else value)
            pattern += "S"
        out_dtype = out.dtype
        if INTERPRETED and out_dtype == torch.bfloat16:
            compute_dtype = torch.float32  # the interpreter garbles integer and fp64 -> bf16 casts
        compute = TL_DTYPE[compute_dtype]
        out_bool = out_dtype == torch.bool
        first_dtype = tensors[0].dtype if tensors else out_dtype
        shape, out_strides = out.shape, out.stride()
        if all(t.shape == shape and t.stride() == out_strides for t in tensors) and (
            out.is_contiguous() or _is_dense(shape, out_strides)
        ):
            launcher = self._launcher(pattern, None)
            # numel rounded up to a power of two, at least 128 (csrc/pointwise_fast.cpp's size class)
            raw = (1 << ((numel - 1) | 127).bit_length(), pattern, out_dtype, first_dtype)
            config = FLAT_TUNER.cached(raw)
            if config is None:
                launch = partial(_launch_flat, launcher, args, numel, compute, out_bool)
                config = FLAT_TUNER.resolve(raw, _scratch_runner(out, launch) if raw[0] > SMALL_TENSOR else None)
            compiled = _launch_flat(launcher, args, numel, compute, out_bool, config, out)
            if teach_cpp and self.cpp is not None and compiled is not None:
                self.cpp.teach(compiled, pattern, tensors, out, args, numel, raw[0], config[0])
            return out
        all_strides = [broadcast_strides(t, shape) for t in tensors] + [list(out_strides)]
        sizes, strides = collapse(list(shape), all_strides)
        rank = len(sizes)
        n_rows = numel // sizes[-1]
        span = max(sum((s - 1) * abs(st[d]) for d, s in enumerate(sizes)) for st in strides)
        flat_strides = [st[d] for st in strides for d in range(rank)]
        index64 = max(span, numel) >= INT32_LIMIT
        launcher = self._launcher(pattern, rank)
        transposed = rank > 1 and any(st[-1] != 1 for st in strides)
        raw = (next_power_of_2(n_rows), next_power_of_2(sizes[-1]), transposed, out_dtype, first_dtype)
        config = STRIDED_TUNER.cached(raw)
        if config is None:
            launch = partial(_launch_strided, launcher, args, sizes, flat_strides, n_rows, compute, out_bool, index64)
            tunable = raw[0] * raw[1] > SMALL_TENSOR
            config = STRIDED_TUNER.resolve(raw, _scratch_runner(out, launch) if tunable else None)
        _launch_strided(launcher, args, sizes, flat_strides, n_rows, compute, out_bool, index64, config, out)
        return out


def output_like(shape, dtype, device, tensors):
    """A new output laid out as PyTorch's TensorIterator would lay it out."""
    first = tensors[0]
    if first.shape == shape and first.dtype == dtype and first.is_contiguous():
        return torch.empty_like(first)  # the cheapest allocation PyTorch offers
    if all(t.is_contiguous() for t in tensors):
        return torch.empty(shape, dtype=dtype, device=device)
    strides = [_iterator_strides(t, shape) for t in tensors if t.dim() > 0]
    order = _fastest_first(shape, strides)
    result_strides = [0] * len(shape)
    step = 1
    for d in order:
        result_strides[d] = step
        step *= shape[d]
    return torch.empty_strided(shape, result_strides, dtype=dtype, device=device)


def _iterator_strides(tensor, shape):
    """Strides as TensorIterator sees them: zero only where ``tensor`` is broadcast
    (a size-1 dim of the output keeps the tensor's own stride)."""
    pad = len(shape) - tensor.dim()
    return [0 if d < pad or (tensor.shape[d - pad] == 1 and shape[d] != 1) else tensor.stride(d - pad)
            for d in range(len(shape))]


def _fastest_first(shape, strides):
    """The output's dims, fastest-varying first, as TensorIterator orders them: an
    insertion sort where the first operand whose strides differ on two dims decides,
    broadcast (zero) strides abstain, and equal strides put the larger dim outside.
    (torch._prims_common has this too, but its first call imports sympy: ~2.5 s.)"""

    def outer(d0, d1):  # >0: d0 varies slower than d1; <0: faster; 0: undecided
        for st in strides:
            if st[d0] == 0 or st[d1] == 0:
                continue
            if st[d0] != st[d1]:
                return 1 if st[d0] > st[d1] else -1
            if shape[d0] > shape[d1]:
                return 1
        return 0

    order = list(range(len(shape) - 1, -1, -1))
    for i in range(1, len(order)):
        moving = i
        for j in range(i - 1, -1, -1):
            decision = outer(order[j], order[moving])
            if decision > 0:
                order[j], order[moving] = order[moving], order[j]
                moving = j
            elif decision < 0:
                break
    return order
