"""Which threads are running one of our implementations right now.

A torch call made from inside an implementation (or a tuner timing native
candidates) must run PyTorch's native kernel, never re-enter our routers."""

import contextlib
import threading


class _Nesting(threading.local):
    inside = False  # True while this thread runs one of our implementations


nesting = _Nesting()


@contextlib.contextmanager
def native_calls():
    """Inside the block this thread's torch calls run the native kernels, as they do
    from inside our implementations (the tuner times native candidates this way)."""
    previous = nesting.inside
    nesting.inside = True
    try:
        yield
    finally:
        nesting.inside = previous
