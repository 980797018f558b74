from . import Vendor

# Triton's interpreter on CPU tensors: slow, but runs every kernel without a GPU.
VENDOR = Vendor(name="cpu", device="cpu", dispatch_key="CPU", detect=lambda: True, interpreted=True)
