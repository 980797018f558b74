"""Which threads are running one of our implementations right now.

A torch call made from inside an implementation (or a tuner timing native
candidates) must run PyTorch's native kernel, never re-enter our routers. The C++
routes (fastpath) keep the same count for the calls that never reach Python: they
set ``native_hooks`` to hear of native_calls blocks. ``tuning_runs`` counts the
tuners' timing runs, so that a call planned while one ran is planned again."""

import contextlib
import threading


class _Nesting(threading.local):
    inside = False  # True while this thread runs one of our implementations


nesting = _Nesting()
native_hooks = None  # (enter, exit), called around native_calls blocks once C++ routes exist


class _TuningRuns:
    count = 0


tuning_runs = _TuningRuns()


@contextlib.contextmanager
def native_calls():
    """Inside the block this thread's torch calls run the native kernels, as they do
    from inside our implementations (the tuner times native candidates this way)."""
    previous = nesting.inside
    nesting.inside = True
    hooks = native_hooks
    if hooks is not None:
        hooks[0]()
    try:
        yield
    finally:
        nesting.inside = previous
        if hooks is not None:
            hooks[1]()
