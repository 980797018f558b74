"""``embedding`` (+out) and ``embedding_dense_backward`` (+out).

aten's ``embedding`` is CompositeExplicitAutograd: autograd records it and then calls the
backend's kernel, which is this one once registered (PyTorch's own composite would call
``index_select`` and reshape). Its gradient reaches ``embedding_dense_backward`` (through the
CompositeImplicitAutograd ``embedding_backward``): the rows of the gradient are added into
the weight's gradient with atomic adds (half dtypes through an fp32 buffer), the padding
index contributing nothing; ``scale_grad_by_freq`` then divides each row by how often its
index occurs (counted by a walk of atomic increments).
"""

import torch

from ...dispatch import aten_rows
from ...utils.dtypes import COMPUTE_DTYPE
from .common import MEAN, index_reason, operands_reason, out_reason, update
from .walk import Index, walk

__all__ = ["embedding", "embedding_dense_backward"]


def _embedding_shape(weight, indices):
    return (*indices.shape, weight.shape[1])


def embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False, *, out=None):
    """The rows of ``weight`` at ``indices``, shaped ``indices.shape + (embedding_dim,)``."""
    if out is None:
        out = torch.empty(_embedding_shape(weight, indices), dtype=weight.dtype, device=weight.device)
    walk(out.shape, out, out.stride(),
         (Index(indices, (*indices.stride(), 0), weight.stride(0), weight.shape[0]),),
         src=weight, src_strides=(0,) * indices.dim() + (weight.stride(1),))
    return out


def _embedding_unsupported(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False, *, out=None):
    reason = operands_reason(weight)
    if reason is not None:
        return reason
    if weight.dim() != 2:
        return "weight is not 2-d"
    reason = index_reason(indices, weight.shape[0], weight.device)
    if reason is None and out is not None:
        return out_reason(out, _embedding_shape(weight, indices), weight.dtype, weight, indices)
    return reason


def _occurrences(indices, num_weights, dim):
    """How often each row index occurs, as a [num_weights, dim] int32 tensor (stride 0 along dim)."""
    counts = torch.empty_strided((num_weights, dim), (1, 0), dtype=torch.int32, device=indices.device)
    walk((num_weights,), counts, (1,), (), value=0)
    walk(indices.shape, counts, (0,) * indices.dim(), (Index(indices, indices.stride(), 1, num_weights),),
         value=1, scatter=True, write="atomic_add")
    return counts


def embedding_dense_backward(grad_output, indices, num_weights, padding_idx, scale_grad_by_freq, *, out=None):
    """The weight's gradient: each row of ``grad_output`` added at its index (but padding_idx)."""
    dim = grad_output.shape[-1]
    result = out if out is not None else torch.empty((num_weights, dim), dtype=grad_output.dtype,
                                                     device=grad_output.device)

    def add_rows(target):
        walk(grad_output.shape, target, (0,) * indices.dim() + (target.stride(1),),
             (Index(indices, (*indices.stride(), 0), target.stride(0), num_weights),),
             src=grad_output, src_strides=grad_output.stride(), scatter=True, write="atomic_add",
             skip=padding_idx if padding_idx >= 0 else None)
        if scale_grad_by_freq:
            MEAN(target, COMPUTE_DTYPE[target.dtype], target, _occurrences(indices, num_weights, dim))

    return update(result, 0, add_rows)


def _embedding_dense_backward_unsupported(grad_output, indices, num_weights, padding_idx, scale_grad_by_freq, *,
                                          out=None):
    reason = operands_reason(grad_output)
    if reason is not None:
        return reason
    if not grad_output.dtype.is_floating_point or grad_output.dim() == 0:
        return "grad_output is not a floating tensor of rows"
    if not isinstance(indices, torch.Tensor) or grad_output.shape != (*indices.shape, grad_output.shape[-1]):
        return "grad_output is not shaped indices.shape + (embedding_dim,)"
    if not isinstance(num_weights, int) or not isinstance(padding_idx, int) or num_weights < 0:
        return "num_weights or padding_idx is not a valid int"
    reason = index_reason(indices, num_weights, grad_output.device)
    if reason is None and out is not None:
        return out_reason(out, (num_weights, grad_output.shape[-1]), grad_output.dtype, grad_output, indices)
    return reason


ATEN = (
    *aten_rows("embedding", embedding, _embedding_unsupported, ("", "out")),
    *aten_rows("embedding_dense_backward", embedding_dense_backward, _embedding_dense_backward_unsupported,
               ("", "out")),
)
