"""cat and stack: every input copied into its part of the result in one launch (up to
``gather.MOST_SOURCES`` inputs a launch), each read through its own strides and
converted to the promoted dtype. A Llama step calls cat about 200 times (rotary's
rotate_half on last-dim slices, the KV cache growing along dim -2): the host work of a
repeated layout is the allocation and the replay of its plan."""

import torch

from ...codegen.launch import layout_key, planned
from ...dispatch import aten_rows
from .common import dtype_reason, out_reason, suggested_format, wrapped_dim
from .gather import Dim, GatherPlan

__all__ = ["cat", "stack"]

_plans = {}


def _skipped(tensor):
    """PyTorch's cat skips legacy empty inputs: 1-d with no elements, whatever dim is."""
    return tensor.dim() == 1 and tensor.shape[0] == 0


def _promoted(tensors):
    dtype = tensors[0].dtype
    for tensor in tensors[1:]:
        if tensor.dtype != dtype:
            dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype


def _cat_format(tensors):
    """The result's memory format, as PyTorch's cat picks it: the inputs' common
    suggestion, else contiguous."""
    formats = {suggested_format(tensor) for tensor in tensors}
    return formats.pop() if len(formats) == 1 else torch.contiguous_format


def _join_plan(inputs, dim, out, inserted):
    """The plan writing ``inputs`` one after another along ``dim`` of ``out``; with
    ``inserted`` each input is read with a size-1 dim inserted at ``dim`` (stack)."""
    shapes = [list(t.shape) for t in inputs]
    strides = [list(t.stride()) for t in inputs]
    if inserted:
        for shape, stride in zip(shapes, strides):
            shape.insert(dim, 1)
            stride.insert(dim, 0)
    dims = [Dim([shape[d] for shape in shapes], [stride[d] for stride in strides], out.stride(d))
            for d in range(out.dim())]
    out_bases, offset = [], 0
    for shape in shapes:
        out_bases.append(offset * out.stride(dim))
        offset += shape[dim]
    return GatherPlan(dims, bases=(0,) * len(inputs), out_bases=out_bases)


def _join(inputs, dim, result, inserted):
    """``result`` holding ``inputs`` one after another along ``dim``."""
    if result.numel():
        key = (dim, inserted, layout_key(result), *map(layout_key, inputs))
        planned(_plans, key, lambda: _join_plan(inputs, dim, result, inserted))(result, inputs)
    return result


def _cat_shape(joined, dim):
    shape = list(joined[0].shape)
    shape[dim] = sum(t.shape[dim] for t in joined)
    return shape


def cat(tensors, dim=0, *, out=None):
    """``tensors`` joined along ``dim``, in their promoted dtype."""
    joined = [t for t in tensors if not _skipped(t)]
    dim = wrapped_dim(dim, joined[0].dim())
    if out is None:
        out = torch.empty(_cat_shape(joined, dim), dtype=_promoted(tensors), device=joined[0].device,
                          memory_format=_cat_format(tensors))
    return _join(joined, dim, out, inserted=False)


def _cat_unsupported(tensors, dim=0, *, out=None):
    if not tensors:
        return "no tensors"
    joined = [t for t in tensors if not _skipped(t)]
    if not joined:
        return "every input is a legacy empty tensor"
    first = joined[0]
    wrapped = wrapped_dim(dim, first.dim())
    if first.dim() == 0 or wrapped is None:
        return "invalid dim or a 0-d input"
    sizes, device = list(first.shape), first.device
    for t in joined[1:]:
        other = list(t.shape)  # lists: slicing and comparing torch.Size costs microseconds
        if len(other) != len(sizes):
            return "inputs of several ranks"
        other[wrapped] = sizes[wrapped]
        if other != sizes:
            return "sizes differ outside dim"
    if any(t.device != device for t in tensors):
        return "inputs on several devices"
    reason = dtype_reason(*tensors)
    if reason is None and out is not None:
        reason = out_reason(out, _cat_shape(joined, wrapped), _promoted(tensors), *tensors)
    return reason


def _stacked_shape(tensors, dim):
    shape = list(tensors[0].shape)
    shape.insert(dim, len(tensors))
    return shape


def stack(tensors, dim=0, *, out=None):
    """``tensors`` (all of one shape) joined along a new dim ``dim``, in their promoted dtype."""
    dim = wrapped_dim(dim, tensors[0].dim() + 1)
    if out is None:
        out = torch.empty(_stacked_shape(tensors, dim), dtype=_promoted(tensors), device=tensors[0].device)
    return _join(tensors, dim, out, inserted=True)


def _stack_unsupported(tensors, dim=0, *, out=None):
    if not tensors:
        return "no tensors"
    first = tensors[0]
    wrapped = wrapped_dim(dim, first.dim() + 1)
    if wrapped is None:
        return "invalid dim"
    if any(t.shape != first.shape or t.device != first.device for t in tensors):
        return "inputs of several shapes or devices"
    reason = dtype_reason(*tensors)
    if reason is None and out is not None:
        reason = out_reason(out, _stacked_shape(tensors, wrapped), _promoted(tensors), *tensors)
    return reason


ATEN = (*aten_rows("cat", cat, _cat_unsupported, ("", "out")),
        *aten_rows("stack", stack, _stack_unsupported, ("", "out")))
