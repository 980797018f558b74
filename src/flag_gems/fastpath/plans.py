"""Planning calls for the C++ routes (csrc/routes.cpp).

A route meets a call layout it has no plan for and hands the call to the Python router,
asking for a plan. The router runs the call as always, here under watch: the C launcher
records every kernel launch (function, grid, packed parameters) and a dispatch mode
sees every aten call the implementation makes. A call whose aten calls only allocate
on the device or make views, and whose launches all went through the C launcher, is
handed to C++ as a plan: the allocations, each launch with its pointer parameters tied
to an operand or an allocation (plus an offset), and the outputs. Anything else (a call
into another operator, a read of device data, a launch through Triton's launcher, an
output with autograd history) is planned as the router's: it takes the call every time.
A call during which a tuner timed candidates is planned again next time.
"""

import threading

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ..runtime import nesting as runtime_nesting
from . import direct_launch

aten = torch.ops.aten
_ALLOCATIONS = {aten.empty.memory_format, aten.empty_strided.default, aten.empty_like.default,
                aten.new_empty.default, aten.new_empty_strided.default}
# no data of their own (or none at all: a dtype), though aten does not mark them views
_METADATA = {aten._unsafe_view.default, aten.lift_fresh.default, aten.alias.default, aten.detach.default,
             aten.result_type.Tensor, aten.result_type.Scalar, aten.result_type.Scalar_Tensor,
             aten.result_type.Scalar_Scalar, aten.promote_types.default}
_SOURCE_OPERAND, _SOURCE_ALLOCATION, _SOURCE_NOTHING = 0, 1, 2
_lock = threading.Lock()  # the C launcher records one thread at a time
_schemas = {}
unplanned = {}  # operator -> why its latest call left to the router was not planned (for diagnosis)


class _Watch(TorchDispatchMode):
    """The aten calls an implementation makes: allocations kept (so none is reused while
    the call runs), anything but allocations and views noted as the reason not to plan."""

    def __init__(self):
        super().__init__()
        self.allocations = []
        self.problem = None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if func in _ALLOCATIONS:
            if isinstance(result, torch.Tensor) and result.is_cuda and result.storage_offset() == 0:
                self.allocations.append(result)
            else:
                self.problem = self.problem or f"allocates with {func}"
        elif func is aten._local_scalar_dense.default and not args[0].is_cuda:
            pass  # a CPU number: its value is in the call's key
        elif not (func.is_view or func in _METADATA):
            self.problem = self.problem or f"calls {func}"
        return result


def _schema(name):
    schema = _schemas.get(name)
    if schema is None:
        base, _, overload = name.partition(".")
        parsed = torch._C._get_schema(f"aten::{base}", overload)
        returns = [str(r.type) for r in parsed.returns]
        schema = _schemas[name] = ([a.name for a in parsed.arguments], returns)
    return schema


def _operands(names, args, kwargs):
    """The call's CUDA tensors in argument order, as the route numbers them."""
    found = []
    for i, name in enumerate(names):
        value = args[i] if i < len(args) else kwargs.get(name)
        if isinstance(value, torch.Tensor):
            if value.is_cuda:
                found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(v for v in value if isinstance(v, torch.Tensor) and v.is_cuda)
    return found


def _locate(pointer, allocations, operands):
    """(source, index, offset) of a device pointer: inside an allocation, relative to its
    start; else inside an operand's storage, relative to the operand's data pointer."""
    for index, tensor in enumerate(allocations):
        base = tensor.data_ptr()
        if base <= pointer < base + tensor.untyped_storage().nbytes():
            return _SOURCE_ALLOCATION, index, pointer - base
    for index, tensor in enumerate(operands):
        storage = tensor.untyped_storage()
        if storage.data_ptr() <= pointer < storage.data_ptr() + storage.nbytes():
            return _SOURCE_OPERAND, index, pointer - tensor.data_ptr()
    return None


def _launches(recorded, allocations, operands):
    """The launch specs of the recorded launches; None where a pointer is unaccounted for."""
    launches = []
    for function, grid_x, grid_y, grid_z, threads, shared, kinds, cells in recorded:
        patches, values = [], []
        for cell, (kind, value) in enumerate(zip(kinds.decode(), cells)):
            if kind == "p" and value != 0:
                found = _locate(value, allocations, operands)
                if found is None:
                    return None
                patches.append((cell, *found))
                value = 0
            values.append(value - (1 << 64) if value >= 1 << 63 else value)  # C++ takes int64
        launches.append((function, [grid_x, grid_y, grid_z], threads, shared, values, patches))
    return launches


def _outputs(result, returns, allocations, operands):
    """The output specs of ``result``; None where one is not an operand, an allocation (or
    a view of one), or nothing."""
    if returns != ["Tensor"] * len(returns) or not returns:
        return None
    results = (result,) if len(returns) == 1 else result
    if not isinstance(results, (tuple, list)) or len(results) != len(returns):
        return None
    outputs = []
    for value in results:
        if value is None:
            outputs.append((_SOURCE_NOTHING, 0, False, [], [], 0))
            continue
        if not isinstance(value, torch.Tensor):
            return None
        index = next((i for i, t in enumerate(operands) if t is value), None)
        if index is not None:  # in place or out=: the operand itself (a parameter may require grad)
            outputs.append((_SOURCE_OPERAND, index, False, [], [], 0))
            continue
        if value.grad_fn is not None or value.requires_grad:
            return None  # a fresh result with autograd history: a replay would not attach it
        pointer = value.untyped_storage().data_ptr()
        index = next((i for i, t in enumerate(allocations) if t.data_ptr() == pointer), None)
        if index is None:
            return None
        whole = allocations[index]
        view = value.shape != whole.shape or value.stride() != whole.stride() or value.storage_offset() != 0
        outputs.append((_SOURCE_ALLOCATION, index, view, list(value.shape), list(value.stride()),
                        value.storage_offset()))
    return outputs


def plan_call(extension, name, impl, args, kwargs):
    """``impl(*args, **kwargs)``, planned for the route of ``name`` that asked."""
    names, returns = _schema(name)
    operands = _operands(names, args, kwargs)
    record = direct_launch.recorder()
    if record is None or not operands:
        result = impl(*args, **kwargs)
        unplanned[name] = "no C launcher" if operands else "no CUDA tensor"
        extension.plan_python(True)
        return result
    tunings, foreign = runtime_nesting.tuning_runs.count, direct_launch.foreign_launches.count
    watch = _Watch()
    with _lock:
        record(True)
        try:
            with watch:
                result = impl(*args, **kwargs)
        finally:
            recorded = record(False)
    if tunings != runtime_nesting.tuning_runs.count or foreign != direct_launch.foreign_launches.count:
        unplanned[name] = "tuned meanwhile" if tunings != runtime_nesting.tuning_runs.count else "Triton's launcher"
        extension.plan_python(True)  # timing runs, or a launch the recorder did not see: plan again
        return result
    allocations = watch.allocations
    launches = None if watch.problem else _launches(recorded, allocations, operands)
    outputs = None if launches is None else _outputs(result, returns, allocations, operands)
    if outputs is None:
        unplanned[name] = watch.problem or ("a pointer to memory it did not allocate" if launches is None
                                            else "an output that is not a fresh tensor or an operand")
        extension.plan_python(False)
        return result
    unplanned.pop(name, None)
    extension.plan_replay(operands[0].get_device(),
                          [(list(t.shape), list(t.stride()), t.dtype) for t in allocations], launches, outputs)
    return result
