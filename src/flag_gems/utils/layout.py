"""Shapes, strides, broadcasting and memory overlap, on the host."""

import torch


# Offsets at or past this need 64-bit index arithmetic in a kernel.
INT32_LIMIT = 2**31


# triton.cdiv / triton.next_power_of_2 are constexpr functions in Triton >= 3.5:
# ~1.5 us per call from Python, several times per operator call.
def cdiv(a, b):
    return -(-a // b)


def next_power_of_2(n):
    """The smallest power of two >= ``n``, as triton.next_power_of_2 (0 stays 0)."""
    return 1 << (n - 1).bit_length() if n > 0 else 0


def contiguous_strides(sizes):
    strides, step = [], 1
    for size in reversed(sizes):
        strides.append(step)
        step *= size
    return strides[::-1]


def span(tensor):
    """The distance in elements between ``tensor``'s first and last elements."""
    return sum((s - 1) * abs(st) for s, st in zip(tensor.shape, tensor.stride()) if s > 0)


def merge_dims(sizes, strides):
    """One (size, stride) for a group of dims read as one, or None when they don't merge."""
    pairs = [(s, st) for s, st in zip(sizes, strides) if s != 1]
    if not pairs:
        return 1, 0
    size, stride = pairs[0]
    for s, st in pairs[1:]:
        if stride != st * s:
            return None
        size, stride = size * s, st
    return size, stride


def merged_stride(tensor, first, last):
    """The single stride of dims [first, last) of ``tensor`` read as one dim (1 for no
    dims or only size-1 dims), or None when they don't merge."""
    merged = merge_dims(tensor.shape[first:last], tensor.stride()[first:last])
    if merged is None:
        return None
    return merged[1] if merged[0] != 1 else 1


def broadcast_shape(operands):
    """The shape the tensors among ``operands`` broadcast to; RuntimeError when they don't."""
    shapes = [op.shape for op in operands if isinstance(op, torch.Tensor)]
    first = shapes[0]
    if all(s == first for s in shapes):
        return first
    return broadcast_shapes(shapes)


def broadcast_shapes(shapes):
    # Not torch.broadcast_shapes: its first call imports sympy (~2.5 s).
    rank = max(len(shape) for shape in shapes)
    result = [1] * rank
    for shape in shapes:
        for i, size in enumerate(shape, rank - len(shape)):
            if size != 1 and result[i] != size:
                if result[i] != 1:
                    raise RuntimeError(f"shapes {[tuple(s) for s in shapes]} do not broadcast")
                result[i] = size
    return torch.Size(result)


def broadcast_strides(tensor, shape):
    """``tensor``'s strides read as broadcast to ``shape`` (which it must broadcast to): 0
    for each dim it lacks or has of size 1."""
    strides = [0] * (len(shape) - tensor.dim())
    strides += [st if s != 1 else 0 for s, st in zip(tensor.shape, tensor.stride())]
    return strides


def shares_storage(a, b):
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def partially_overlaps(a, b):
    """``a`` and ``b`` share storage without being the very same view (same pointer,
    shape and strides), so writing one while reading the other may read written data."""
    return shares_storage(a, b) and not (
        a.data_ptr() == b.data_ptr() and a.stride() == b.stride() and a.shape == b.shape)


def overlaps_itself(tensor):
    """Whether two elements of ``tensor`` may share memory (PyTorch's internal-overlap check)."""
    return tensor.numel() > 1 and torch._debug_has_internal_overlap(tensor) == 1


def may_overlap_itself(tensor):
    """Whether two elements of ``tensor`` may share memory: exact for dense and sliced
    layouts, conservative (True) where strides interleave."""
    extent = 0
    for size, stride in sorted((pair for pair in zip(tensor.shape, tensor.stride()) if pair[0] > 1),
                               key=lambda p: p[1]):
        if stride <= extent:
            return True
        extent += (size - 1) * stride
    return False


def separate_output_reason(out, *inputs):
    """Why a kernel reading ``inputs`` cannot write ``out`` in one pass (it overlaps
    itself or shares memory with one of them), or None."""
    if overlaps_itself(out):
        return "output has internal overlap"
    if any(shares_storage(out, t) for t in inputs):
        return "output overlaps an input"
    return None
