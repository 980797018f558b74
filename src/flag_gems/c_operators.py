"""C++ wrappers: the hottest small-tensor calls launch their Triton kernels
from C++ (one allocation and one cuLaunchKernel, no Python in between).

    from flag_gems import c_operators   # builds them if needed; ImportError if they can't be
    python -m flag_gems.c_operators     # build ahead of time (a C++ compiler, ninja, CUDA headers)

Once built, ``flag_gems.enable()`` uses them automatically, in every process.
Calls they do not cover take the Python path, which is complete on its own.
"""

from . import fastpath

try:
    _extension = fastpath.build()  # operators may use the wrappers from now on
except Exception as error:  # noqa: BLE001 - report any build failure as unavailability
    raise ImportError(f"flag_gems C++ wrappers cannot be built here: {error}") from error
if _extension is None:
    raise ImportError("flag_gems C++ wrappers need a CUDA build of PyTorch")


def _route_registered_rows():
    from .ops import collect_rows

    fastpath.install_routes(collect_rows())


_route_registered_rows()  # rows switched on before this import get their C++ routes too

binary = _extension.binary
register_kernel = _extension.register_kernel
routed_calls = _extension.routed_calls  # calls the C++ routes launched with no Python

if __name__ == "__main__":
    print(f"flag_gems C++ wrappers built and loaded: {_extension.__file__}")
