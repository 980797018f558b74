"""The autotuner, its persistent cache, and shape capture for pre-tuning.

Modes (``GEMS_TUNE`` or ``flag_gems.set_tuning_mode(mode)``):

- ``off``: the heuristic config only; the cache is not read.
- ``cache`` (the default): a key's stored config if the cache has one (or the
  package ships one for this device, ``tuning/shipped``), else the heuristic;
  mm runs PyTorch's kernel instead where native is a candidate, so on GPUs our
  kernel runs only where tuning saw it win. Nothing is ever timed, so the
  first call of any shape compiles at most one config.
- ``quick``: an unknown key is tuned on its first call, bounded to
  ``GEMS_TUNE_MAX_CONFIGS`` configs (default 8: the heuristic first, then the
  space's likeliest) and ``GEMS_TUNE_SECONDS`` seconds (default 10) per key.
- ``full``: an unknown key (or one tuned only quickly) is tuned over its whole
  pruned space.

Why ``cache`` is the default: a Triton compile of one mm config costs 0.5-1.5 s
on an H100, so timing even a few candidates on a first call would break the
promise that the first call of any operator stays under 2 s. Tuning is
therefore something a deployment asks for: ``python -m flag_gems.pretune
--shapes shapes.yaml`` (or quick/full mode) fills the cache once, and every
later process reads it. ``GEMS_TUNE_NATIVE=0|1`` drops or adds PyTorch's own
kernel as a candidate (on by default on GPUs, so a tuned shape is never slower
than native; off under the interpreter, where native always wins).

The cache is one SQLite file per (vendor, device, Triton version) under
``flag_gems.runtime.cache_dir("tuning")`` (``GEMS_CACHE_DIR`` moves it); see
``database.py`` for its multi-process rules and ``python -m flag_gems.tuning
show|export FILE|import FILE|clear`` to manage it.

Making a kernel tunable (any kernel: a reduction's block sizes, a pointwise
generator's BLOCK, mm's tiles)::

    from flag_gems import tuning

    @tuning.tunable(
        "sum_rows",
        space=[(block, warps) for block in (512, 1024, 4096) for warps in (4, 8)],
        key=lambda n, dtype: (tuning.next_power_of_2(n), str(dtype)),  # the bucket
        prune=lambda key, config: config[0] <= max(key[0], 512),
        sources=[_sum_rows_kernel], fields=("BLOCK", "num_warps"))
    def sum_rows_config(n, dtype):          # the heuristic: untuned keys run at once
        return (1024, 4)

    def sum_rows(x, out):
        n = x.shape[-1]
        raw = (n, x.dtype)
        config = sum_rows_config.cached(raw)          # one dict lookup per call
        if config is None:                            # first call of this raw key
            config = sum_rows_config.choose(raw, lambda c: _launch(x, out, *c))
        _launch(x, out, *config)

``run(config)`` launches the kernel once with ``config`` on the call's inputs;
with ``Tuner(..., native=True)`` it must also take ``tuning.NATIVE`` and run
PyTorch's kernel, which then competes (mm does this).
"""

from . import shipped
from .tuner import (MODES, NATIVE, Tuner, cache_path, decisions, forced, forget_choices, max_shared_memory,
                    next_power_of_2, on_forget_choices, set_tuning_mode, stats, store, tunable, tuners, tuning_mode)

__all__ = ["MODES", "NATIVE", "Tuner", "tunable", "set_tuning_mode", "tuning_mode", "forced", "stats",
           "decisions", "store", "cache_path", "next_power_of_2", "max_shared_memory", "tuners", "forget_choices",
           "on_forget_choices", "shipped"]
