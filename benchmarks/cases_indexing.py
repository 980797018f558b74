"""Indexing: gathers and scatters by index, memory-bound, reported in GB/s (every input read
once and the result written once; the ids count, a table counts in full although a lookup
reads only its rows)."""

import torch
import torch.nn.functional as F

from harness import Case, randn

TABLE, IDS = (128000, 4096), (16384,)
QUICK_TABLE, QUICK_IDS = (64, 32), (16,)
WIDE, QUICK_WIDE = (4096, 32768), (16, 64)


def _table_and_ids(shapes, dtype, device):
    table_shape, ids_shape = shapes
    return randn(table_shape, dtype, device), torch.randint(0, table_shape[0], ids_shape, device=device)


def _rows_gradient(shapes, dtype, device):
    """embedding_dense_backward's inputs: a gradient row per id, the ids, the table's rows."""
    table_shape, ids_shape = shapes
    ids = torch.randint(0, table_shape[0], ids_shape, device=device)
    return randn((*ids_shape, table_shape[1]), dtype, device), ids, table_shape[0]


def _along_rows(shapes, dtype, device):
    """A [rows, cols] tensor, an index of its shape into each row, and values of its shape."""
    (shape,) = shapes
    return randn(shape, dtype, device), torch.randint(0, shape[1], shape, device=device), randn(shape, dtype, device)


def _row_and_column_ids(shapes, dtype, device):
    """A [rows, cols] tensor, a row id per row ([rows, 1]) and a column id per element."""
    (shape,) = shapes
    return (randn(shape, dtype, device), torch.randint(0, shape[0], (shape[0], 1), device=device),
            torch.randint(0, shape[1], shape, device=device))


def _embedding_backward(grad, ids, rows):
    return torch.ops.aten.embedding_dense_backward(grad, ids, rows, -1, False)


def _embedding_backward_fp32(grad, ids, rows):
    """The exact gradient (fp32 sums): native bf16 rounds its running sums, ours do not."""
    return _embedding_backward(grad.float(), ids, rows).to(grad.dtype)


def _scatter_add_fp32(x, ids, src):
    return torch.scatter_add(x.float(), 1, ids, src.float()).to(x.dtype)


CASES = [
    Case("index_select_bf16", torch.bfloat16, (TABLE, IDS), (QUICK_TABLE, QUICK_IDS),
         lambda table, ids: torch.index_select(table, 0, ids), make=_table_and_ids),
    Case("embedding_bf16", torch.bfloat16, (TABLE, IDS), (QUICK_TABLE, QUICK_IDS),
         lambda table, ids: F.embedding(ids, table), make=_table_and_ids),
    Case("embedding_dense_backward_bf16", torch.bfloat16, (TABLE, IDS), (QUICK_TABLE, QUICK_IDS),
         _embedding_backward, make=_rows_gradient, reference=_embedding_backward_fp32),
    Case("index_tensor_bf16", torch.bfloat16, (TABLE, IDS), (QUICK_TABLE, QUICK_IDS),
         lambda table, ids: table[ids], make=_table_and_ids),
    Case("index_tensor_pairs_bf16", torch.bfloat16, (WIDE,), (QUICK_WIDE,),
         lambda x, rows, cols: x[rows, cols], make=_row_and_column_ids),
    Case("gather_dim1_bf16", torch.bfloat16, (WIDE,), (QUICK_WIDE,),
         lambda x, ids, _: torch.gather(x, 1, ids), make=_along_rows),
    Case("scatter_add_dim1_bf16", torch.bfloat16, (WIDE,), (QUICK_WIDE,),
         lambda x, ids, src: torch.scatter_add(x, 1, ids, src), make=_along_rows, reference=_scatter_add_fp32),
]
