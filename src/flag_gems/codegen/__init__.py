"""Kernel generation and launching.

Importing this package fixes the vendor first: on the CPU vendor Triton's
interpreter must be switched on before any ``@triton.jit`` is applied, and
every kernel module imports from here (or from ``ops.tl_math``, which does).
"""

from .. import runtime

runtime.selected_vendor()

from .. import fastpath, tuning  # noqa: E402 - after the vendor is fixed

# The C++ routes' plans hold the configs the tuners chose: they go when the choices go.
tuning.on_forget_choices(fastpath.forget_plans)
