from . import Vendor

# Tuning under the interpreter exercises the machinery, not the hardware: a few small
# tiles (BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, num_warps, num_stages) keep it fast.
_MM_SPACE = [(16, 16, 16, 1, 4, 1), (16, 32, 32, 1, 4, 1), (32, 32, 16, 8, 4, 1), (32, 32, 32, 8, 4, 1)]

# Triton's interpreter on CPU tensors: slow, but runs every kernel without a GPU.
VENDOR = Vendor(name="cpu", device="cpu", dispatch_key="CPU", detect=lambda: True, interpreted=True,
                configs={"mm.space": lambda: _MM_SPACE})
