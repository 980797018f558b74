"""The compiled fast path, behind one interface.

- ``direct_launch``: one C launcher for every Triton kernel, built once per machine
  (imported by codegen's ``Launcher``; it imports Triton, so it is not imported here).
- the C++ wrappers (``csrc/``, built by ``flag_gems.c_operators``): ``CppPointwise``
  (elementwise kernels launched from C++), ``install_routes`` / ``sync_routes`` (boxed
  kernels in front of rows' Python routers, replaying the launch plans the routers make:
  ``plan_requested`` / ``plan_call`` / ``plan_native`` / ``plan_router`` /
  ``forget_plans``, see plans.py), ``CppRoute`` (a row's share of the elementwise kernel
  table), ``register_backward`` / ``attach_backward`` (C++ autograd nodes), ``Served``
  (launches made from C++).

Operators declare what the fast path may take as data (a row's ``CppRoute``, an
``Elementwise``'s ``launch_from_cpp``); nothing outside this package touches the
extension. Importing this package imports only torch.
"""

from .build import Served, build, prebuilt
from .routes import (CppRoute, forget_plans, install_routes, plan_call, plan_native, plan_requested, plan_router,
                     sync_routes)

__all__ = ["CppPointwise", "CppRoute", "Served", "attach_backward", "build", "forget_plans",
           "forget_pointwise_kernels", "install_routes", "plan_call", "plan_native", "plan_requested", "plan_router",
           "prebuilt", "register_backward", "sync_routes"]


def __getattr__(name):
    # These read Triton signatures (direct_launch imports triton): loaded on first use.
    if name in ("CppPointwise", "forget_pointwise_kernels"):
        from . import pointwise

        return pointwise.CppPointwise if name == "CppPointwise" else pointwise.forget_kernels
    if name in ("register_backward", "attach_backward"):
        from . import backward

        return getattr(backward, name)
    raise AttributeError(f"module 'flag_gems.fastpath' has no attribute {name!r}")
