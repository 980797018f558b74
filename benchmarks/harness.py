"""What a benchmark case is, and how one is timed and checked.

The case files (``cases_*.py``) only declare ``Case`` objects; everything
that measures lives here, so every family is timed the same way.
"""

import contextlib
import functools
import math
import os
import statistics
import tempfile
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Optional

import torch

import flag_gems
from flag_gems.dispatch import native_calls

DTYPE_NAMES = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32", torch.float64: "fp64",
               torch.int64: "int64"}

# Relative tolerance of the correctness check, by result dtype.
DEFAULT_RTOL = {torch.bfloat16: 2e-2, torch.float16: 2e-2, torch.float32: 1e-5, torch.float64: 1e-7, torch.int64: 0.0}

# On the GPU: do_bench's method (median, L2 flushed before each call; see gpu_latency_ms).
# On the CPU interpreter: perf_counter median of CPU_LATENCY_CALLS calls.
CPU_LATENCY_CALLS = 5
# Wall clock: back-to-back calls for about WALL_SECONDS, within these counts.
WALL_SECONDS = {"gpu": 1.0, "cpu": 0.1}
WALL_CALLS = {"gpu": (10, 100_000), "cpu": (3, 1_000)}


@dataclass
class Case:
    """One benchmark row: ``call(*make(shapes, dtype, device))``."""

    name: str  # unique; what --only selects
    dtype: torch.dtype
    shapes: tuple  # one shape per input, full size (GPU)
    quick: tuple  # the same inputs, tiny, for --quick
    call: Callable  # the torch call; "ours" is this very call under flag_gems.use_gems()
    make: Optional[Callable] = None  # (shapes, dtype, device) -> inputs; default: randn per shape
    flops: Optional[Callable] = None  # (*inputs) -> FLOPs; None: memory-bound, report GB/s
    rtol: Optional[float] = None  # default: DEFAULT_RTOL[dtype]
    atol_scale: str = "mean"  # atol = rtol * this statistic of |torch|: "mean" or "max"
    setup: Optional[Callable] = None  # () -> context manager around torch and ours alike
    # (*inputs) -> the exact result (e.g. in fp64, cast to dtype); default: the native call's.
    # For results that native rounds more than we do.
    reference: Optional[Callable] = None
    direct: bool = False  # ours calls a flag_gems function itself, reaching no aten row
    native_ok: bool = False  # a row may send the call to native by design (mm where no tuned entry wins)

    @property
    def family(self):
        return self.name.split("_", 1)[0]

    def shape_text(self, quick):
        return ", ".join("x".join(map(str, shape)) for shape in (self.quick if quick else self.shapes))

    def inputs(self, quick, device, seed=0):
        """Fresh random inputs, the same ones every time for one seed."""
        torch.manual_seed(seed)
        shapes = self.quick if quick else self.shapes
        if self.make is not None:
            return tuple(self.make(shapes, self.dtype, device))
        return tuple(randn(shape, self.dtype, device) for shape in shapes)

    def tolerance(self):
        return self.rtol if self.rtol is not None else DEFAULT_RTOL[self.dtype]

    def context(self):
        return self.setup() if self.setup is not None else contextlib.nullcontext()

    def work(self, inputs, output):
        """(amount, unit): FLOPs for compute-bound cases, else bytes moved
        (each input read once, the output written once)."""
        if self.flops is not None:
            return self.flops(*inputs), "TFLOP/s"
        tensors = [t for t in inputs if isinstance(t, torch.Tensor)] + [output]
        return sum(t.numel() * t.element_size() for t in tensors), "GB/s"


def randn(shape, dtype, device):
    return torch.randn(shape, dtype=dtype, device=device)


@functools.cache
def _mul_row():
    return next(row for row in flag_gems.ops.collect_rows() if row.name == "mul.Tensor")


def gems_active():
    """Whether this call runs under flag_gems.use_gems(), for a ``direct`` case that calls a fused
    flag_gems function there and its torch composition otherwise: one attribute read."""
    return _mul_row().active


@dataclass
class Result:
    """One row of the table, filled in by measure_torch and measure_ours."""

    name: str
    shape: str
    dtype: str
    torch_ms: Optional[float] = None
    ours_ms: Optional[float] = None
    torch_kernel_ms: Optional[float] = None
    ours_kernel_ms: Optional[float] = None
    torch_wall_us: Optional[float] = None
    ours_wall_us: Optional[float] = None
    first_call_ms: Optional[float] = None
    torch_peak_mib: Optional[float] = None  # memory one call allocates at its peak (GPU)
    ours_peak_mib: Optional[float] = None
    work: Optional[float] = None  # bytes or FLOPs per call
    unit: str = ""
    check: str = "-"  # ok, FAIL (mismatch), NATIVE (our kernel did not run), ERROR (exception)
    detail: str = ""

    def rate(self, ms):
        """Throughput in ``self.unit`` for one call taking ``ms``."""
        if self.work is None or not ms:
            return None
        return self.work / (ms * 1e-3) / (1e12 if self.unit == "TFLOP/s" else 1e9)

    def speedup(self):
        return self.torch_ms / self.ours_ms if self.torch_ms and self.ours_ms else None

    def kernel_speedup(self):
        if self.torch_kernel_ms and self.ours_kernel_ms:
            return self.torch_kernel_ms / self.ours_kernel_ms
        return None


L2_FLUSH_BYTES = 256 << 20  # as triton.testing.do_bench: more than any GPU's L2


def gpu_latency_ms(fn, warmup_ms=25, repeat_ms=100):
    """Median device time of ``fn`` between CUDA events, L2 flushed before each call:
    triton.testing.do_bench's method, except that the flush always runs PyTorch's native
    ``zero_``. Inside ``use_gems()`` do_bench's flush goes through our ``zero_``, whose
    host time then delays ``fn``'s launch and is counted against us, not against native."""
    flush_buffer = torch.empty(L2_FLUSH_BYTES, dtype=torch.int8, device="cuda")

    def flush():
        with native_calls():
            flush_buffer.zero_()

    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(5):
        flush()
        fn()
    end.record()
    torch.cuda.synchronize()
    estimate_ms = max(start.elapsed_time(end) / 5, 1e-6)
    for _ in range(max(1, int(warmup_ms / estimate_ms))):
        fn()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
              for _ in range(max(1, int(repeat_ms / estimate_ms)))]
    for start, end in events:
        flush()
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize()
    return statistics.median(start.elapsed_time(end) for start, end in events)


class Timer:
    """Latency, wall clock and first-call time on one device."""

    def __init__(self, device):
        self.device = device
        self.kind = "cpu" if device == "cpu" else "gpu"
        self.synchronize = getattr(torch, device).synchronize
        if self.kind == "gpu":
            # Imported here: under the interpreter triton's GPU driver is absent.
            import triton.testing

            self._do_bench_cudagraph = triton.testing.do_bench_cudagraph

    def latency_ms(self, fn):
        """Device time of one call, median."""
        if self.kind == "gpu":
            return gpu_latency_ms(fn)
        fn()  # warm-up
        times = []
        for _ in range(CPU_LATENCY_CALLS):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e3

    def kernel_ms(self, fn):
        """Device time of one call replayed from a CUDA graph, median: the kernels alone,
        without host work (no L2 flush either). None on the CPU or where the call cannot
        be captured (it synchronizes, or allocates pinned memory, ...)."""
        if self.kind != "gpu":
            return None
        try:
            return self._do_bench_cudagraph(fn, return_mode="median")
        except Exception:  # noqa: BLE001 - an uncapturable call simply has no kernel time
            torch.cuda.synchronize()
            return None

    def wall_us(self, fn):
        """Wall clock per call of back-to-back calls, synchronizing only at the
        end: host overhead shows here when it exceeds the device time."""
        fewest, most = WALL_CALLS[self.kind]
        self.synchronize()
        start = time.perf_counter()
        for _ in range(3):
            fn()
        self.synchronize()
        estimate = (time.perf_counter() - start) / 3
        calls = int(min(most, max(fewest, WALL_SECONDS[self.kind] / max(estimate, 1e-9))))
        self.synchronize()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        self.synchronize()
        return (time.perf_counter() - start) / calls * 1e6

    def peak_mib(self, fn):
        """The most memory one call holds at once beyond what was allocated before it, in
        MiB (its result included); None on the CPU."""
        if self.kind != "gpu":
            return None
        self.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        self.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20

    def first_call(self, fn):
        """(result, ms) of one call, synchronized on both sides."""
        self.synchronize()
        start = time.perf_counter()
        result = fn()
        self.synchronize()
        return result, (time.perf_counter() - start) * 1e3


def mismatch(ours, ref, rtol, atol_scale="mean"):
    """None when ``ours`` matches ``ref``, else what differs.

    Elementwise |ours - ref| <= atol + rtol * |ref|, where atol = rtol times
    the mean (or max) of |ref| judges elements near zero (cancellation in
    sums) on the scale of the whole result. The mean stays meaningful when a
    few elements are huge (quotients by numbers near zero); the max is the
    usual norm-wise check of matrix products, where two correct TF32 results
    of 4096-long dot products differ by about 3e-3 times their mean."""
    if not isinstance(ours, torch.Tensor):
        return f"ours returned {type(ours).__name__}, torch a tensor"
    for what in ("shape", "dtype", "device"):
        if getattr(ours, what) != getattr(ref, what):
            return f"{what}: ours {getattr(ours, what)}, torch {getattr(ref, what)}"
    if ref.numel() == 0:
        return None
    if ref.is_complex():  # both parts compared
        ours, ref = torch.view_as_real(ours), torch.view_as_real(ref)
    ours32, ref32 = ours.double(), ref.double()
    atol = rtol * {"mean": torch.mean, "max": torch.amax}[atol_scale](ref32.abs()).item()
    close = torch.isclose(ours32, ref32, rtol=rtol, atol=atol, equal_nan=True)
    bad = close.numel() - int(close.sum().item())
    if bad == 0:
        return None
    diff = torch.where(close, 0.0, (ours32 - ref32).abs().nan_to_num(math.inf))
    worst = int(diff.argmax().item())
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(worst), ref.shape)) if ref.dim() else ()
    return (f"{bad} of {ref.numel()} elements differ (rtol {rtol:g}, atol {atol:.3g}); worst at {index}: "
            f"ours {ours32.flatten()[worst].item():.6g}, torch {ref32.flatten()[worst].item():.6g}")


def not_ours(fn):
    """None when every aten call ``fn`` makes ran a flag_gems kernel, else
    which calls went to the native kernel and why (from the record log)."""
    fd, path = tempfile.mkstemp(prefix="flag_gems_bench_", suffix=".log")
    os.close(fd)
    try:
        with flag_gems.use_gems(record=True, path=path):
            fn()
        with open(path) as log:
            lines = [line.rstrip("\n").split("\t") for line in log if line.strip()]
    finally:
        os.remove(path)
    if not lines:
        return "no aten call reached flag_gems"
    native = [f"{op} {impl}" for op, impl, *_ in lines
              if impl.startswith("native") and "called from inside flag_gems" not in impl]
    return "; ".join(native) or None


def measure_torch(case, result, timer, quick):
    """Torch's latency and wall clock; flag_gems must be disabled."""
    inputs = case.inputs(quick, timer.device)

    def call():
        return case.call(*inputs)

    result.work, result.unit = case.work(inputs, call())
    result.torch_ms = timer.latency_ms(call)
    result.torch_kernel_ms = timer.kernel_ms(call)
    result.torch_wall_us = timer.wall_us(call)
    result.torch_peak_mib = timer.peak_mib(call)


def measure_ours(case, result, timer, quick):
    """The same call under flag_gems.use_gems(): first call, correctness
    against native, which kernels ran, then latency and wall clock."""
    inputs = case.inputs(quick, timer.device)

    def call():
        return case.call(*inputs)

    with flag_gems.use_gems():
        ours, result.first_call_ms = timer.first_call(call)
    # outside the block: the native kernel
    reference = case.reference(*inputs) if case.reference is not None else call()
    problem = mismatch(ours, reference, case.tolerance(), case.atol_scale)
    del ours, reference
    if problem:
        result.check, result.detail = "FAIL", problem
    elif case.direct:
        result.check, result.detail = "ok", ""
    else:
        native = None if case.native_ok else not_ours(call)
        result.check, result.detail = ("NATIVE", native) if native else ("ok", "")
    with flag_gems.use_gems():
        result.ours_ms = timer.latency_ms(call)
        result.ours_kernel_ms = timer.kernel_ms(call)
        result.ours_wall_us = timer.wall_us(call)
        result.ours_peak_mib = timer.peak_mib(call)


def run_case(step, case, result, timer, quick):
    """``step`` on one case; an exception marks the row ERROR instead of ending the run."""
    try:
        with case.context():
            step(case, result, timer, quick)
    except Exception as error:
        side = "torch" if step is measure_torch else "ours"
        message = " ".join(str(error).split())  # one line; the traceback goes to stderr
        result.check, result.detail = "ERROR", f"{side}: {type(error).__name__}: {message[:300]}"
        traceback.print_exc()
    if timer.device == "cuda":
        torch.cuda.empty_cache()
