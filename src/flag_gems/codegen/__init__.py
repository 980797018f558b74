"""Kernel generation and launching.

Importing this package fixes the vendor first: on the CPU vendor Triton's
interpreter must be switched on before any ``@triton.jit`` is applied, and
every kernel module imports from here (or from ``ops.tl_math``, which does).
"""

from .. import runtime

runtime.selected_vendor()
