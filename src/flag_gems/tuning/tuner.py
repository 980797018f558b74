"""``Tuner``: a config per call key, from memory, the cache, the heuristic or a timing run.

A call passes its *raw* key (the few values its launch depends on, as a hashable
tuple). A memo dict maps raw keys to choices, so a repeated call costs one dict
lookup. On a miss the tuner buckets the raw key (``key(*raw)``), then, by mode:
off -> ``heuristic(*raw)``; cache -> the stored entry, else the heuristic; quick /
full -> the stored entry, else time the candidates on the call's own inputs
(``run(config)``), store the winner and use what the store holds.
"""

import contextlib
import hashlib
import inspect
import logging
import math
import os
import threading
import time
from collections import deque
from functools import lru_cache, partial

from .. import runtime
from ..runtime.nesting import native_calls, tuning_runs
from ..utils.layout import next_power_of_2  # noqa: F401 - offered to key functions as tuning.next_power_of_2
from . import database, shipped

logger = logging.getLogger("flag_gems")

MODES = ("off", "cache", "quick", "full")
DEFAULT_MODE = "cache"
NATIVE = "native"  # the choice "run PyTorch's own kernel"
MEMO_LIMIT = 4096  # raw keys remembered per tuner before the memo starts over

_TUNERS = {}
_DECISIONS = deque(maxlen=1000)
_STATS = dict.fromkeys(("tuned", "timed", "from_cache", "heuristic"), 0)
_mode_lock = threading.RLock()
_mode = None  # None: read GEMS_TUNE on first use
_active_store = None


def _env_mode():
    value = os.environ.get("GEMS_TUNE", DEFAULT_MODE).strip().lower() or DEFAULT_MODE
    if value not in MODES:
        logger.warning("flag_gems: GEMS_TUNE=%r is not one of %s; using %r", value, "|".join(MODES), DEFAULT_MODE)
        return DEFAULT_MODE
    return value


def tuning_mode():
    """The mode in force: ``off``, ``cache`` (default), ``quick`` or ``full``."""
    global _mode
    if _mode is None:
        _mode = _env_mode()
    return _mode


def set_tuning_mode(mode):
    """Switch the tuning mode of this process (overrides GEMS_TUNE)."""
    global _mode
    if mode not in MODES:
        raise ValueError(f"tuning mode must be one of {', '.join(MODES)}, got {mode!r}")
    with _mode_lock:
        _mode = mode
        forget_choices()


@contextlib.contextmanager
def forced(mode):
    """Run the block in ``mode`` (pretune uses ``forced("full")``), then restore."""
    with _mode_lock:
        previous = tuning_mode()
        set_tuning_mode(mode)
    try:
        yield
    finally:
        set_tuning_mode(previous)


_forget_hooks = []


def on_forget_choices(hook):
    """``hook()`` runs whenever the tuners forget their choices (something that copied
    choices elsewhere, as the C++ routes' plans, drops them)."""
    _forget_hooks.append(hook)


def forget_choices():
    """Empty every tuner's memo (and what its ``on_forget`` drops): the next call of
    each key asks the cache again."""
    for hook in _forget_hooks:
        hook()
    for tuner in list(_TUNERS.values()):
        tuner._memo.clear()
        tuner.untuned.clear()
        if tuner.on_forget is not None:
            tuner.on_forget()


def max_configs():
    return max(1, int(os.environ.get("GEMS_TUNE_MAX_CONFIGS", "8")))


def seconds_budget():
    return float(os.environ.get("GEMS_TUNE_SECONDS", "10"))


def native_candidate_enabled():
    """GEMS_TUNE_NATIVE=1/0; by default on, except under the interpreter, where native
    always wins and would hide the kernels that the CPU runs exist to exercise."""
    value = os.environ.get("GEMS_TUNE_NATIVE")
    if value is None:
        return not runtime.selected_vendor().interpreted
    return value.strip().lower() not in ("0", "false", "no", "off", "")


@lru_cache(maxsize=None)
def device_identity():
    """(vendor, device name, triton version): what one cache file is valid for."""
    import triton

    vendor = runtime.selected_vendor()
    if vendor.interpreted:
        name = "interpreter"
    else:
        module = getattr(__import__("torch"), vendor.device)
        name = module.get_device_name(module.current_device())
    return vendor.name, name, triton.__version__


def _located():
    """(the cache file's path, None), or (its path, why its folder cannot be made)."""
    name = database.file_name(*device_identity())
    try:
        return os.path.join(runtime.cache_dir("tuning"), name), None
    except OSError as error:  # GEMS_CACHE_DIR is a file, lies under one, or cannot be written
        return os.path.join(runtime.cache_root(), "tuning", name), f"{type(error).__name__}: {error}"


def cache_path():
    """The SQLite file of this process's vendor, device and Triton version."""
    return _located()[0]


def store():
    """The store for ``cache_path()``; a new one (and empty memos) when the path moved.
    Memory only, with one warning, when its folder cannot be made."""
    global _active_store
    path, unusable = _located()
    with _mode_lock:
        if _active_store is None or _active_store.path != path:
            if _active_store is not None:
                _active_store.close()
            _active_store = database.Store(path, unusable)
            forget_choices()
        return _active_store


def checked_rows(rows):
    """(valid rows, [(row, reason)]) of cache rows: a kernel's tuner checks the rows of its
    current source; any other row needs only a JSON config."""
    valid, invalid = [], []
    for row in rows:
        tuner = _TUNERS.get(row["kernel"])
        try:
            if tuner is not None and row["source"] == tuner.source_hash:
                tuner.checked(row["config"])
            else:
                _json(row["config"])
        except ValueError as error:
            invalid.append((row, error))
        else:
            valid.append(row)
    return valid, invalid


def _json(text):
    import json

    try:
        return json.loads(text)
    except ValueError as error:
        raise ValueError(f"config {text[:40]!r} is not JSON: {error}") from None


def stats(reset=False):
    """Counters of this process: keys ``tuned`` (candidates timed), candidates ``timed``,
    keys answered ``from_cache`` or by the ``heuristic``, and ``db_queries``."""
    counts = dict(_STATS, db_queries=_active_store.queries if _active_store is not None else 0)
    if reset:
        for name in _STATS:
            _STATS[name] = 0
        if _active_store is not None:
            _active_store.queries = 0
    return counts


def decisions(clear=False):
    """The latest key resolutions (memo misses), oldest first: dicts with kernel, key,
    config, time_ms, native_ms and origin (tuned, cache or heuristic)."""
    found = list(_DECISIONS)
    if clear:
        _DECISIONS.clear()
    return found


@lru_cache(maxsize=None)
def max_shared_memory(device_index=0):
    """Bytes of shared memory one program may use; None under the interpreter (no limit)."""
    if runtime.selected_vendor().interpreted:
        return None
    import triton

    from ..runtime.warm_up import triton_warm_up

    triton_warm_up.wait()  # its thread may be making Triton's driver
    return triton.runtime.driver.active.utils.get_device_properties(device_index)["max_shared_mem"]


def _measure_ms(run, config):
    if runtime.selected_vendor().interpreted:
        start = time.perf_counter()
        run(config)
        return (time.perf_counter() - start) * 1e3
    from triton.testing import do_bench

    return do_bench(lambda: run(config), warmup=5, rep=20)


def _source_text(source):
    if isinstance(source, str):
        return source
    function = getattr(source, "fn", source)
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return getattr(source, "src", None) or repr(source)


class Tuner:
    """Chooses a config per key for one kernel.

    name       kernel name: cache entries and vendor overrides use it; a vendor's
               ``configs["<name>.space"]`` (a callable returning configs, or None
               to keep the default) replaces ``space`` on that vendor
    heuristic  ``heuristic(*raw) -> config``: what an untuned key runs at once
    space      the candidate configs (a sequence, or a callable returning one),
               likeliest first: quick mode times only the first few
    key        ``key(*raw) -> tuple`` of JSON values: the bucket a raw key falls in
    prune      ``prune(key, config) -> bool``: False for configs that cannot fit
               (shared memory, registers) or make no sense for the key
    sources    kernels (or text) whose source, with the space, makes the source hash;
               or a callable returning them, asked when the hash is first needed
    fields     names of a tuple config's items, for readable cache entries
    native     True when ``run(NATIVE)`` runs PyTorch's kernel as a candidate
    native_unless_tuned
               with ``native``: where PyTorch's kernel is a candidate, a key with no
               tuned entry (local or shipped) runs it instead of the heuristic, so the
               kernel runs only where tuning saw it win
    on_forget  called when the memo is emptied, to drop choices copied elsewhere
               (the pointwise kernels' C++ launch table)
    """

    def __init__(self, name, *, heuristic, space, key, prune=None, sources=(), fields=None, native=False,
                 native_unless_tuned=False, on_forget=None):
        self.name = name
        self.heuristic = heuristic
        self.key = key
        self.prune = prune
        self.fields = tuple(fields) if fields else None
        self.native = native
        self.native_unless_tuned = native and native_unless_tuned
        self.untuned = set()  # raw keys that run native for want of a tuned entry
        self.on_forget = on_forget
        self._default_space = space
        self._sources = sources if callable(sources) else tuple(sources)
        self._space = None
        self._source_hash = None
        self._memo = {}
        self._lock = threading.RLock()
        self._tuning_now = set()
        # The hot path: ``tuner.cached(raw)`` is the memo's own dict.get.
        self.cached = self._memo.get
        _TUNERS[name] = self

    def __repr__(self):
        return f"Tuner({self.name!r})"

    @property
    def space(self):
        if self._space is None:
            override = runtime.config(f"{self.name}.space", None)
            configs = override() if callable(override) else override
            if configs is None:
                configs = self._default_space() if callable(self._default_space) else self._default_space
            self._space = tuple(_normal(c) for c in configs)
        return self._space

    @property
    def source_hash(self):
        if self._source_hash is None:
            sources = self._sources() if callable(self._sources) else self._sources
            text = "\n".join(_source_text(s) for s in sources) + "\n" + repr(self.space)
            self._source_hash = hashlib.sha256(text.encode()).hexdigest()[:16]
        return self._source_hash

    def __call__(self, *raw):
        """The choice for ``raw`` without tuning (memo, cache or heuristic)."""
        choice = self._memo.get(raw)
        return choice if choice is not None else self.resolve(raw, None)

    def choose(self, raw, run):
        """The choice for ``raw``; in quick/full mode an unknown key is tuned with ``run``."""
        choice = self._memo.get(raw)
        return choice if choice is not None else self.resolve(raw, run)

    def resolve(self, raw, run):
        """A memo miss: decide, remember, return."""
        with self._lock:
            choice = self._memo.get(raw)
            if choice is not None:
                return choice
            if raw in self._tuning_now:  # a candidate called back into us: no nested tuning
                return _normal(self.heuristic(*raw))
            if run is not None and runtime.capturing():
                # timing candidates synchronizes, which a graph capture forbids: the cache or the
                # heuristic decides this call, remembered nowhere, so a later eager call still tunes
                return self._decide(raw, None)
            self._tuning_now.add(raw)
            try:
                choice = self._decide(raw, run)
            finally:
                self._tuning_now.discard(raw)
            if len(self._memo) >= MEMO_LIMIT:
                self._memo.clear()
                self.untuned.clear()
            self._memo[raw] = choice
            return choice

    def _decide(self, raw, run):
        mode = tuning_mode()
        if mode == "off":
            return self._heuristic_choice(raw, None)
        key = tuple(self.key(*raw))
        encoded = database.encode(list(key))
        check = partial(self.checked, heuristic=_normal(self.heuristic(*raw)))
        row, origin = store().get(self.name, self.source_hash, encoded, check), "cache"
        if row is None:
            row, origin = shipped.get(device_identity(), self.name, self.source_hash, encoded, check), "shipped"
        if row is not None and (mode != "full" or row["mode"] == "full" or run is None):
            _STATS["from_cache"] += 1
            choice = check(row["config"])
            self._note(key, choice, row["time_ms"], row["native_ms"], origin)
            return choice
        if mode == "cache" or run is None:
            if self.native_unless_tuned and native_candidate_enabled():
                self.untuned.add(raw)
                self._note(key, NATIVE, None, None, "untuned")
                return NATIVE
            return self._heuristic_choice(raw, key)
        return self._tune(raw, key, encoded, run, mode)

    def _heuristic_choice(self, raw, key):
        _STATS["heuristic"] += 1
        choice = _normal(self.heuristic(*raw))
        self._note(key, choice, None, None, "heuristic")
        return choice

    def candidates(self, raw, key, mode):
        """The heuristic, then the space's configs that fit the key (quick: the first few)."""
        heuristic = _normal(self.heuristic(*raw))
        chosen = [heuristic] + [c for c in self.space
                                if c != heuristic and (self.prune is None or self.prune(key, c))]
        return chosen[:max_configs()] if mode == "quick" else chosen

    def _tune(self, raw, key, encoded, run, mode):
        tuning_runs.count += 1
        deadline = time.monotonic() + seconds_budget() if mode == "quick" else math.inf
        timings = []
        with native_calls():
            for config in self.candidates(raw, key, mode):
                if timings and time.monotonic() > deadline:
                    break
                timings.append((self._time(run, config), config))
            native_ms = self._time(run, NATIVE) if self.native and native_candidate_enabled() else None
        _STATS["tuned"] += 1
        best_ms, best = min(timings, key=lambda pair: pair[0])
        if not math.isfinite(best_ms):
            return self._heuristic_choice(raw, key)  # nothing ran: store nothing
        if native_ms is not None and native_ms < best_ms:
            best = NATIVE
        row = dict(kernel=self.name, source=self.source_hash, key=encoded, config=self._encode(best),
                   time_ms=best_ms, native_ms=native_ms, mode=mode, tried=len(timings), created=time.time())
        stored = store().put(row, replace_unless_mode="full" if mode == "full" else None)
        try:
            choice = self.checked(stored["config"], heuristic=_normal(self.heuristic(*raw)))
        except ValueError:  # another process stored a damaged entry first
            choice = best
        self._note(key, choice, stored["time_ms"], stored["native_ms"], "tuned")
        return choice

    def _time(self, run, config):
        _STATS["timed"] += 1
        try:
            return _measure_ms(run, config)
        except Exception as error:  # noqa: BLE001 - a config that fails to compile or launch loses
            logger.debug("flag_gems: %s config %s failed while tuning: %s", self.name, config, error)
            return math.inf

    def _note(self, key, choice, time_ms, native_ms, origin):
        _DECISIONS.append(dict(kernel=self.name, key=key, config=self._jsonable(choice), time_ms=time_ms,
                               native_ms=native_ms, origin=origin))

    def _jsonable(self, choice):
        if choice == NATIVE:
            return NATIVE
        if self.fields and isinstance(choice, tuple):
            return dict(zip(self.fields, choice))
        return list(choice) if isinstance(choice, tuple) else choice

    def _encode(self, choice):
        return database.encode(self._jsonable(choice))

    def checked(self, text, heuristic=None):
        """The choice a stored config names; ValueError unless this kernel can run it: one of
        the space's configs, the call's ``heuristic`` choice (tuning stores it when it wins), or
        a tuple of values the space uses at each position (all ``tuning show`` can check)."""
        value = _json(text)
        if value == NATIVE and self.native:
            return NATIVE
        if self.fields and isinstance(value, dict) and set(value) == set(self.fields):
            value = tuple(value[f] for f in self.fields)
        choice = _normal(value)
        if choice != NATIVE and (choice in self.space or choice == heuristic or self._of_the_space(choice)):
            return choice
        raise ValueError(f"config {text[:80]} is not one of {self.name}'s configs")

    def _position_values(self):
        """The values the space and the default space use at each position (None: mixed arities)."""
        if not hasattr(self, "_item_values"):
            default = self._default_space() if callable(self._default_space) else self._default_space
            configs = [c for c in (*self.space, *map(_normal, default)) if isinstance(c, tuple)]
            lengths = {len(c) for c in configs}
            self._item_values = [{c[i] for c in configs} for i in range(lengths.pop())] if len(lengths) == 1 else None
        return self._item_values

    def _of_the_space(self, choice):
        """Whether ``choice`` is a tuple of the space's arity with, at each position, a value
        the space or the default space uses there."""
        values = self._position_values()
        return (isinstance(choice, tuple) and values is not None and len(choice) == len(values)
                and all(type(item) in (int, float) and item in allowed for item, allowed in zip(choice, values)))


def _normal(config):
    """Configs compare and hash as tuples; dict configs stay dicts."""
    return tuple(config) if isinstance(config, list) else config


def tunable(name, *, space, key, prune=None, sources=(), fields=None):
    """Decorator: the decorated function is the heuristic of a new ``Tuner``.
    ``tuner(*raw)`` answers without tuning; ``tuner.choose(raw, run)`` may tune."""

    def wrap(heuristic):
        return Tuner(name, heuristic=heuristic, space=space, key=key, prune=prune, sources=sources, fields=fields)

    return wrap


def tuners():
    """Every tuner defined in this process, by kernel name."""
    return dict(_TUNERS)
