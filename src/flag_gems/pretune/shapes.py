"""The shapes file that capture writes and pretune reads.

A YAML list; each entry is one operator and dtype with the calls to tune::

    - op: mm                     # an aten name or overload flag_gems implements
      dtype: bfloat16            # or dtypes: [float16, bfloat16]
      shapes:                    # one item per call: its tensor arguments, in order
        - [[16, 4096], [4096, 4096]]
        - [[4096, 4096], {shape: [4096, 4096], stride: [1, 4096]}]   # a transposed B
    - op: _softmax
      dtype: float32
      shapes:
        - [[64, 1024]]
      args: {dim: -1, half_to_float: false}   # the non-tensor arguments, by name

A tensor is its shape, or a mapping with ``shape`` and optionally ``stride``
(a strided view) and ``dtype`` (when it differs from the entry's). A number in
place of a tensor argument (``x * 2.0``) goes in ``args`` under the argument's name.
"""

import json
from dataclasses import dataclass
from typing import Optional

import torch
import yaml

from .. import api

DTYPES = {
    "float16": torch.float16, "half": torch.float16, "fp16": torch.float16, "f16": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float32": torch.float32, "float": torch.float32, "fp32": torch.float32, "f32": torch.float32,
    "float64": torch.float64, "double": torch.float64, "fp64": torch.float64, "f64": torch.float64,
    "int8": torch.int8, "uint8": torch.uint8, "int16": torch.int16, "int32": torch.int32,
    "int64": torch.int64, "bool": torch.bool, "complex64": torch.complex64, "complex128": torch.complex128,
}


class ShapesError(ValueError):
    """A shapes file names an unknown op, a malformed shape or an unsupported dtype."""


def dtype_name(dtype):
    return str(dtype).replace("torch.", "")


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple
    stride: Optional[tuple] = None
    dtype: Optional[torch.dtype] = None  # None: the entry's dtype

    def to_yaml(self, entry_dtype):
        if self.stride is None and self.dtype in (None, entry_dtype):
            return list(self.shape)
        spec = {"shape": list(self.shape)}
        if self.stride is not None:
            spec["stride"] = list(self.stride)
        if self.dtype not in (None, entry_dtype):
            spec["dtype"] = dtype_name(self.dtype)
        return spec

    def make(self, entry_dtype, device):
        """Random values of this shape, layout and dtype."""
        dtype = self.dtype or entry_dtype
        shape = self.shape
        if self.stride is None:
            return _random(shape, dtype, device)
        size = 1 + sum((n - 1) * s for n, s in zip(shape, self.stride)) if all(shape) else 0
        return _random((size,), dtype, device).as_strided(shape, self.stride)


def _random(shape, dtype, device):
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, device=device).bool()
    if dtype.is_floating_point or dtype.is_complex:
        return torch.randn(shape, dtype=dtype, device=device)
    return torch.randint(0, 10, shape, dtype=dtype, device=device)


_TENSOR_TYPES = ("Tensor", "Optional[Tensor]", "Tensor?")


def _is_tensor(argument):
    return str(argument.type) in _TENSOR_TYPES


def tensor_arguments(schema):
    """The schema's Tensor-typed arguments, in schema order, as shapes fill them."""
    return [a for a in schema.arguments if _is_tensor(a)]


def spec_of(tensor, entry_dtype):
    stride = None if tensor.is_contiguous() else tuple(tensor.stride())
    return TensorSpec(tuple(tensor.shape), stride, None if tensor.dtype == entry_dtype else tensor.dtype)


def _plain(value):
    """A YAML-writable form of a non-tensor argument, or raise TypeError."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.dtype):
        return dtype_name(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    raise TypeError(type(value).__name__)


def describe_call(name, schema, args, kwargs):
    """(entry dtype, tensor specs, non-tensor args) of one call, or None if a value
    cannot be written (tensor lists, generators)."""
    tensors, plain = [], {}
    bound = dict(zip((a.name for a in schema.arguments), args))
    bound.update(kwargs)
    entry_dtype = None
    for argument in schema.arguments:
        if argument.name not in bound:
            continue
        value = bound[argument.name]
        if isinstance(value, torch.Tensor):
            if not _is_tensor(argument):
                return None
            entry_dtype = entry_dtype or value.dtype
            tensors.append(value)
        elif _is_tensor(argument) and value is None:
            continue
        elif isinstance(value, (torch.device, torch.layout, torch.memory_format)):
            continue  # pretune uses its own device and defaults
        else:
            try:
                plain[argument.name] = _plain(value)
            except TypeError:
                return None
    if entry_dtype is None:
        return None
    return entry_dtype, tuple(spec_of(t, entry_dtype) for t in tensors), plain


def format_document(entries):
    """YAML text for entries [(op, dtype, args, [call specs])]: one line per call."""
    lines = ["# (op, shapes, dtype) seen by flag_gems.tuning.capture; tune with:",
             "#   python -m flag_gems.pretune --shapes <this file>"]
    for op, dtype, args, calls in entries:
        lines += [f"- op: {op}", f"  dtype: {dtype_name(dtype)}", "  shapes:"]
        lines += [f"    - {json.dumps([spec.to_yaml(dtype) for spec in call])}" for call in calls]
        if args:  # PyYAML writes floats that it reads back as floats (1.0e-30, not 1e-30)
            lines.append(f"  args: {yaml.safe_dump(args, default_flow_style=True, width=1 << 16).strip()}")
    return "\n".join(lines) + "\n"


# -- reading ---------------------------------------------------------------------------------


@dataclass
class Job:
    """One call to run: an overload, an entry dtype, tensor specs and other arguments."""

    op: str  # the overload, e.g. "mm" or "add.Tensor"
    dtype: torch.dtype
    tensors: tuple
    args: dict

    def shape_text(self):
        return " x ".join(_spec_text(spec) for spec in self.tensors)

    def inputs(self, device):
        """(args, kwargs) for the overload: random tensors, then the named arguments."""
        schema = _schema(self.op)
        slots = iter(self.tensors)
        positional, keywords = [], {}
        for argument in schema.arguments:
            if _is_tensor(argument) and argument.name not in self.args:
                spec = next(slots, None)
                value = None if spec is None else spec.make(self.dtype, device)
            elif argument.name in self.args:
                value = _argument_value(self.args[argument.name])
            elif argument.kwarg_only:
                continue
            else:  # keeps later positional arguments in their places
                value = argument.default_value
            if not argument.kwarg_only:
                positional.append(value)
            elif value is not None:
                keywords[argument.name] = value
        return positional, keywords


def _spec_text(spec):
    text = "x".join(map(str, spec.shape)) or "()"
    if spec.stride is not None:
        text += f"/s{','.join(map(str, spec.stride))}"
    if spec.dtype is not None:
        text += f":{dtype_name(spec.dtype)}"
    return text


def _argument_value(value):
    if isinstance(value, str) and value in DTYPES:
        return DTYPES[value]
    return value


def _schema(overload):
    base, _, name = overload.partition(".")
    return torch._C._get_schema(f"aten::{base}", name)


def resolve_op(name):
    """The overload pretune runs for ``name``; ShapesError if flag_gems does not implement it."""
    if not isinstance(name, str):
        raise ShapesError(f"op must be a name, got {name!r}")
    try:
        rows = api.rows_named(name)
    except ValueError as error:
        raise ShapesError(f"unknown op: {error}") from None
    plain = name[len("aten::"):] if name.startswith("aten::") else name
    for row in rows:
        if row.name == plain:
            return row.name
    # A base name: its first out-of-place overload (the family lists the main one first).
    return next((r.name for r in rows if r.base == plain and not r.name.endswith(".out")), rows[0].name)


def _as_shape(value, where):
    if not isinstance(value, (list, tuple)) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                                       for n in value):
        raise ShapesError(f"{where}: malformed shape {value!r} (a list of non-negative integers)")
    return tuple(value)


def _tensor_spec(value, where, supported):
    if isinstance(value, dict):
        unknown = set(value) - {"shape", "stride", "dtype"}
        if unknown or "shape" not in value:
            raise ShapesError(f"{where}: malformed tensor {value!r} (keys: shape, stride, dtype)")
        shape = _as_shape(value["shape"], where)
        stride = None
        if value.get("stride") is not None:
            stride = value["stride"]
            if (not isinstance(stride, (list, tuple)) or len(stride) != len(shape)
                    or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in stride)):
                raise ShapesError(f"{where}: malformed stride {stride!r} for shape {list(shape)}")
            stride = tuple(stride)
        dtype = _dtype(value["dtype"], where, supported) if "dtype" in value else None
        return TensorSpec(shape, stride, dtype)
    return TensorSpec(_as_shape(value, where))


def _dtype(name, where, supported):
    dtype = DTYPES.get(str(name).replace("torch.", "")) if isinstance(name, str) else None
    if dtype is None:
        raise ShapesError(f"{where}: unsupported dtype {name!r} (known: {', '.join(sorted(DTYPES))})")
    if supported is not None and dtype not in supported:
        raise ShapesError(f"{where}: unsupported dtype {name!r} on this device")
    return dtype


def parse(document, supported=None):
    """Jobs from a loaded shapes document; ShapesError names the entry at fault.
    ``supported``: the dtypes this device takes (None: any known dtype)."""
    if not isinstance(document, list):
        raise ShapesError("a shapes file is a YAML list of entries (- op: ..., dtype: ..., shapes: [...])")
    jobs = []
    for number, entry in enumerate(document, 1):
        where = f"entry {number}"
        if not isinstance(entry, dict) or "op" not in entry:
            raise ShapesError(f"{where}: an entry is a mapping with op, dtype (or dtypes) and shapes")
        unknown = set(entry) - {"op", "dtype", "dtypes", "shapes", "args"}
        if unknown:
            raise ShapesError(f"{where}: unknown keys {sorted(unknown)}")
        op = resolve_op(entry["op"])
        where = f"entry {number} ({entry['op']})"
        names = entry.get("dtypes", entry.get("dtype", "float32"))
        dtypes = [_dtype(n, where, supported) for n in (names if isinstance(names, list) else [names])]
        calls = entry.get("shapes")
        if not isinstance(calls, list) or not calls:
            raise ShapesError(f"{where}: shapes must be a non-empty list of calls")
        args = entry.get("args") or {}
        if not isinstance(args, dict):
            raise ShapesError(f"{where}: args must be a mapping of argument names to values")
        schema = _schema(op)
        # A number given by name in args fills a tensor argument (as in x * 2.0).
        slots = [a for a in tensor_arguments(schema) if a.name not in args]
        required = [a for a in slots if str(a.type) == "Tensor"]
        slot_names = {a.name for a in slots}
        names_known = {a.name for a in schema.arguments} - slot_names
        if set(args) - names_known:
            raise ShapesError(f"{where}: {op} has no argument(s) {sorted(set(args) - names_known)}")
        missing = [a.name for a in schema.arguments if a.name not in slot_names and not a.has_default_value()
                   and a.name not in args]
        if missing:
            raise ShapesError(f"{where}: {op} needs args: {', '.join(missing)}")
        for call in calls:
            if not isinstance(call, list):
                raise ShapesError(f"{where}: malformed shape {call!r} (each call is a list of tensor shapes)")
            if call and not isinstance(call[0], (list, dict)):
                raise ShapesError(f"{where}: malformed shape {call!r} (each call is a list of tensor shapes, "
                                  f"e.g. [{call!r}])")
            tensors = tuple(_tensor_spec(t, where, supported) for t in call)
            if not len(required) <= len(tensors) <= len(slots):
                raise ShapesError(f"{where}: malformed shape {call!r}: {op} takes "
                                  f"{len(required)}..{len(slots)} tensors")
            jobs += [Job(op, dtype, tensors, dict(args)) for dtype in dtypes]
    return jobs


def check_on_meta(job):
    """ShapesError if the operator rejects these shapes (checked on meta tensors, no work);
    else the bytes its inputs and outputs take (the outputs' only where a meta kernel exists)."""
    args, kwargs = job.inputs("meta")
    try:
        result = aten_overload(job.op)(*args, **kwargs)
    except NotImplementedError:
        return _nbytes([args, kwargs])  # no meta kernel: the real run will tell
    except Exception as error:  # noqa: BLE001 - the operator's own complaint is the message
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ShapesError(f"{job.op}: malformed shape {job.shape_text()} ({dtype_name(job.dtype)}): "
                          f"{first_line}") from None
    return _nbytes([args, kwargs, result])


def _nbytes(value):
    """Bytes of the tensors (storages) in nested lists, tuples and dicts."""
    if isinstance(value, torch.Tensor):
        return value.untyped_storage().nbytes()
    if isinstance(value, dict):
        value = list(value.values())
    return sum(map(_nbytes, value)) if isinstance(value, (list, tuple)) else 0


def aten_overload(op):
    base, _, name = op.partition(".")
    return getattr(getattr(torch.ops.aten, base), name or "default")
