from . import Vendor

# Tuning under the interpreter exercises the machinery, not the hardware: a few small
# tiles (BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, num_warps, num_stages, SPLIT_K) keep it fast.
_MM_SPACE = [(16, 16, 16, 1, 4, 1, 1), (16, 32, 32, 1, 4, 1, 1), (32, 32, 16, 8, 4, 1, 1), (32, 32, 32, 8, 4, 1, 1),
             (16, 16, 16, 1, 4, 1, 2)]
# (BLOCK, num_warps) and (BLOCK_R, BLOCK_C, num_warps) of the pointwise kernels.
_FLAT_SPACE = [(4096, 4), (8192, 8), (1024, 4)]
_STRIDED_SPACE = [(64, 64, 4), (8, 512, 4), (32, 256, 8)]
# Reductions: (BLOCK_A, BLOCK_N, num_warps, programs per SM) and (BLOCK_N, BLOCK_K, ...).
_REDUCE_ROWS_SPACE = [(1, 256, 4, 8), (4, 64, 4, 8), (2, 128, 4, 4), (8, 32, 4, 16)]
_REDUCE_COLS_SPACE = [(16, 32, 4, 4), (4, 64, 4, 4), (32, 16, 4, 2), (8, 32, 4, 8)]
# (BLOCK_M, BLOCK_N, num_warps, num_stages) of the attention forward.
_ATTENTION_FORWARD_SPACE = [(16, 16, 4, 1), (16, 32, 4, 1)]

# Triton's interpreter on CPU tensors: slow, but runs every kernel without a GPU.
VENDOR = Vendor(name="cpu", device="cpu", dispatch_key="CPU", detect=lambda: True, interpreted=True,
                configs={"mm.space": lambda: _MM_SPACE, "pointwise_flat.space": lambda: _FLAT_SPACE,
                         "pointwise_strided.space": lambda: _STRIDED_SPACE,
                         "reduce_rows.space": lambda: _REDUCE_ROWS_SPACE,
                         "reduce_cols.space": lambda: _REDUCE_COLS_SPACE,
                         "attention_forward.space": lambda: _ATTENTION_FORWARD_SPACE})
