"""What the GEMM-shaped operators share on the host: tiles, their tuners, and the checks
of their operands.

Every operator (mm, addmm, bmm, baddbmm, addr) has its own ``ProductTuner`` (its own cache
entries: PyTorch's own kernel for that operator is the native candidate) over one config
space: (BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, num_warps, num_stages, SPLIT_K). The key buckets M, N,
K (and the batch) to powers of two and adds the dtype, the layout of each operand and
TF32; tuning times the space, pruned to what fits shared memory and registers, and
PyTorch's kernel. A bucket with no tuned entry (in the local cache or shipped with the
package, ``tuning/shipped``) runs PyTorch's kernel where it is a candidate (GPUs: ours
runs where tuning saw it win), else ``default_config`` (the interpreter,
``GEMS_TUNE_NATIVE=0``, mode ``off``). A vendor's ``configs["mm"]`` (heuristic) and
``configs["mm.space"]`` serve every one of them. The GEMV operators (``gemv.py``) use
``ProductTuner`` and the checks below with their own kernels and tiles.
"""

import threading

import torch

from ... import runtime, tuning
from ...codegen.launch import fp32_exact
from ...utils.dtypes import itemsize
from ...utils.layout import partially_overlaps, separate_output_reason
from . import gemm_kernels

DTYPES = runtime.supported_float_dtypes()
CONFIG_FIELDS = ("BLOCK_M", "BLOCK_N", "BLOCK_K", "GROUP_M", "num_warps", "num_stages", "SPLIT_K")
NATIVE = tuning.NATIVE


def default_config(M, N, K, dtype):
    """(BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, num_warps, num_stages) for a shape; K unsplit."""
    if dtype in (torch.float64,) or (dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32):
        return 64, 64, 32, 8, 4, 3
    if dtype == torch.float32:  # TF32: 4-byte tiles, so half the K depth fits shared memory
        return 128, 256, 32, 8, 8, 3
    # Chosen by measurement on an H100 (bf16): decode-shaped, medium and large products.
    if M <= 16:
        return 16, 64, 256, 1, 4, 3
    if M * N >= 2048 * 2048:
        return 128, 256, 64, 8, 8, 3
    return 64, 128, 64, 8, 4, 4


# What ``torch.backends.cuda.matmul.allow_tf32`` reads, without its Python __getattr__ (~1 us).
_allow_tf32 = getattr(torch._C, "_get_cublas_allow_tf32", None) or (lambda: torch.backends.cuda.matmul.allow_tf32)


def tf32(dtype):
    """Whether a product of ``dtype`` may round its inputs to TF32 (PyTorch's flag)."""
    return dtype is torch.float32 and _allow_tf32()


def precision(dtype):
    return "tf32" if tf32(dtype) else "ieee"


def default_space():
    """Candidates for Hopper-class GPUs, likeliest first (quick mode times the first
    few); pruning drops what a key or the device cannot use."""
    likely = [(128, 256, 64, 8, 8, 3, 1), (128, 128, 64, 8, 4, 4, 1), (64, 128, 64, 8, 4, 4, 1),
              (128, 128, 64, 8, 8, 3, 1), (64, 256, 64, 8, 4, 3, 1), (128, 64, 64, 8, 4, 4, 1),
              (64, 64, 64, 8, 4, 5, 1), (64, 64, 128, 8, 4, 4, 4),
              (16, 64, 256, 1, 4, 3, 1), (16, 64, 256, 1, 4, 3, 4), (16, 128, 128, 1, 4, 4, 1),
              (16, 64, 128, 1, 4, 4, 8), (16, 32, 256, 1, 4, 4, 1), (16, 128, 256, 1, 4, 3, 2),
              (16, 64, 128, 1, 4, 5, 1)]
    decode = [(16, n, k, 1, 4, stages, splits) for n in (32, 64, 128) for k in (64, 128, 256) for stages in (3, 4, 5)
              for splits in (1, 2, 4, 8)]
    tiles = [(m, n, k, 8, warps, stages, 1) for m in (64, 128) for n in (64, 128, 256) for k in (32, 64, 128)
             for warps in (4, 8) for stages in (3, 4, 5)]
    return likely + [c for c in decode + tiles if c not in likely]


def _space():
    """The vendor's mm space (``configs["mm.space"]``, configs of seven items) serves every
    GEMM tuner."""
    override = runtime.config("mm.space", None)
    return [with_split(config) for config in (override() if callable(override) else override or default_space())]


def _layout(stride):
    """Transposition class of an operand: row-major, column-major or strided."""
    return "n" if stride[1] == 1 else "t" if stride[0] == 1 else "s"


def bucket(M, N, K, dtype, a_stride, b_stride, tf32):
    return (tuning.next_power_of_2(M), tuning.next_power_of_2(N), tuning.next_power_of_2(K),
            str(dtype).replace("torch.", ""), _layout(a_stride), _layout(b_stride), tf32)


def heuristic(M, N, K, dtype, a_stride, b_stride, tf32):
    return with_split(runtime.config("mm", default_config)(M, N, K, dtype))


def with_split(config):
    """A config of six items (a vendor's, the default) as seven: K unsplit."""
    return (*config, 1) if len(config) == 6 else tuple(config)


_MAX_ACCUMULATOR_REGISTERS = 128  # per thread; more spills


def fits(key, config):
    """Whether a tile suits the key's bucket and fits shared memory and registers."""
    m, n, k, dtype = key[:4]
    block_m, block_n, block_k, _, warps, stages, splits = with_split(config)
    if (block_m <= 16) != (m <= 16):  # decode tiles for decode shapes only
        return False
    if splits > 1 and (m > 64 or block_k * splits * 2 > k):  # a split is for few tiles and K long enough
        return False
    if block_m > max(m, 16) or block_n > max(n, 16) or block_k > max(k, 16):
        return False
    shared = tuning.max_shared_memory()
    if shared is not None and (block_m * block_k + block_k * block_n) * itemsize(dtype) * stages > shared:
        return False
    accumulator_bytes = block_m * block_n * (8 if dtype == "float64" else 4)
    return accumulator_bytes // (warps * 32 * 4) <= _MAX_ACCUMULATOR_REGISTERS


def matrix_key(a, b):
    """The raw tuning key of ``a @ b`` for 2-D matrices."""
    dtype = a.dtype
    return a.shape[0], b.shape[1], a.shape[1], dtype, a.stride(), b.stride(), tf32(dtype)


def batched_key(a, b):
    """The raw tuning key of ``a @ b`` for batches of matrices: the batch, then ``matrix_key``'s."""
    dtype = a.dtype
    return (a.shape[0], a.shape[1], b.shape[2], a.shape[2], dtype, a.stride()[1:], b.stride()[1:], tf32(dtype))


class _Handoff(threading.local):
    # (a, b, config): what a condition chose for the call it just let through, so the
    # implementation that the router (or flag_gems.ops.<op>) calls next does not ask again.
    pending = None


class ProductTuner:
    """One operator's configs for its kernel, and the condition's choice handed to its
    implementation; the GEMM kernel's tiles unless told otherwise (the GEMV kernels'
    tuners pass theirs). ``runner`` arguments are factories of ``run(config)`` (a candidate
    into scratch, ``tuning.NATIVE`` PyTorch's own), made only when a key is new."""

    def __init__(self, name, *, batched=False, key=bucket, heuristic=heuristic, space=_space, prune=fits,
                 sources=(gemm_kernels.gemm_kernel, gemm_kernels.split_k_sum_kernel, gemm_kernels.epilogue),
                 fields=CONFIG_FIELDS):
        check, matrix_bucket = prune, key
        if batched:
            def key(Z, *raw):
                return (tuning.next_power_of_2(Z), *matrix_bucket(*raw))

            def check(key, config):  # batches fill the GPU: K is never split
                return with_split(config)[6] == 1 and prune(key[1:], config)

            heuristic = _skip_batch(heuristic)
        self.tuner = tuning.Tuner(name, heuristic=heuristic, space=space, key=key, prune=check, sources=sources,
                                  fields=fields, native=True, native_unless_tuned=True)
        self._handoff = _Handoff()

    def choice(self, raw, runner):
        """The tuner's config (or NATIVE) for ``raw``: one dict lookup once known."""
        choice = self.tuner.cached(raw)
        if choice is None:
            choice = self.tuner.resolve(raw, runner())
        return choice

    def decide(self, a, b, raw, runner):
        """For a condition: None, handing the config to the implementation, or why native runs."""
        config = self.choice(raw, runner)
        if config is NATIVE:
            return "no tuned entry wins here" if raw in self.tuner.untuned else "tuned: native faster"
        self._handoff.pending = (a, b, config)
        return None

    def taken(self, a, b):
        """For an implementation: the config its condition chose for ``a``, ``b``, or None."""
        pending, self._handoff.pending = self._handoff.pending, None
        return pending[2] if pending is not None and pending[0] is a and pending[1] is b else None


def _skip_batch(function):
    return lambda Z, *raw: function(*raw)


# ------------------------------------------------------------------ which calls the kernel takes


def operands_reason(a, b, rank=2):
    """Why ``a @ b`` of two float matrices (rank 2) or batches of them (rank 3) is not ours, or None."""
    if a.dtype not in DTYPES or b.dtype != a.dtype:
        return f"dtypes {a.dtype}, {b.dtype} not supported"
    a_shape, b_shape = a.shape, b.shape
    if len(a_shape) != rank or len(b_shape) != rank or a_shape[-1] != b_shape[-2] or a_shape[0] != b_shape[0] \
            and rank == 3:
        return "not multipliable matrices" if rank == 2 else "not multipliable batches of matrices"
    if b.device != a.device:
        return "operands on different devices"
    if a.is_cuda and tf32(a.dtype) and b.stride(-1) == 1 and b.shape[-1] > 1:
        # Triton cannot feed Hopper's tensor cores a transposed 32-bit operand: measured 4x
        # slower than cuBLAS on an H100, while a K-major mat2 (nn.Linear's weight) runs well.
        return "tf32 with a row-major mat2 is faster natively"
    return None


def scalars_reason(alpha, beta, dtype):
    """Why ``alpha`` / ``beta`` cannot reach the kernel (it takes them as fp32), or None."""
    for value in (alpha, beta):
        if isinstance(value, complex) or not isinstance(value, (int, float)):
            return "alpha or beta is not a real number"
        if dtype == torch.float64 and not fp32_exact(value):
            return "alpha or beta not exact in fp32 for a float64 product"
    return None


def bias_reason(bias, shape, like, exact=False):
    """Why ``bias`` cannot be added to a result of ``shape`` like ``like``: it must broadcast
    to it (match it with ``exact``, the in-place forms), or None."""
    if bias.dtype != like.dtype or bias.device != like.device:
        return "bias differs in dtype or device"
    if exact:
        return None if bias.shape == shape else "self is not of the result's shape"
    if bias.dim() > len(shape) or any(s not in (1, t) for s, t in zip(reversed(bias.shape), reversed(shape))):
        return "bias does not broadcast to the result"
    return None


def destination_reason(out, shape, like, a, b, bias=None):
    """Why the kernel cannot write a result of ``shape`` like ``like`` into ``out`` while it
    reads ``a``, ``b`` and ``bias`` (which ``out`` may be: in place), or None."""
    if out.dtype != like.dtype or out.device != like.device:
        return "out differs in dtype or device"
    if out.shape != shape:
        return "out needs resizing"
    reason = separate_output_reason(out, a, b)
    if reason is None and bias is not None and partially_overlaps(out, bias):
        return "out partly overlaps the bias"
    return reason
