"""Shape capture: run a callable with flag_gems on and write every (op, shapes, dtype)
it routed, as a shapes file ready for ``python -m flag_gems.pretune --shapes``."""

import json
import threading

from .. import api
from . import shapes as _shapes


class ShapeCollector:
    """A recorder (``log(name, impl, args, kwargs)``) that keeps distinct calls
    instead of writing lines: the router hands it every routed call."""

    def __init__(self):
        self._entries = {}  # (op, dtype, args json) -> {call specs: None}, in first-seen order
        self._lock = threading.Lock()
        self.skipped = 0  # calls whose arguments a shapes file cannot hold (tensor lists, ...)

    def log(self, name, impl, args, kwargs):
        described = _shapes.describe_call(name, _shapes._schema(name), args, kwargs)
        with self._lock:
            if described is None:
                self.skipped += 1
                return
            dtype, specs, plain = described
            self._entries.setdefault((name, dtype, json.dumps(plain, sort_keys=True)), {})[specs] = None

    def close(self):
        pass  # nothing to flush; the recorder protocol asks for it

    def entries(self):
        """[(op, dtype, args, [call specs])] in the order first seen."""
        with self._lock:
            return [(op, dtype, json.loads(args), list(calls)) for (op, dtype, args), calls in self._entries.items()]

    def write(self, path):
        with open(path, "w") as f:
            f.write(_shapes.format_document(self.entries()))


def capture(fn, path=None):
    """Call ``fn()`` with every flag_gems operator enabled, write the shapes file of
    what it routed to ``path`` (if given) and return the collector (``entries()``)."""
    collector = ShapeCollector()
    try:
        with api.capturing(collector), api.use_gems():
            fn()
    finally:
        if path is not None:
            collector.write(path)
    return collector
