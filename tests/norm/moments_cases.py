"""What the group, batch, instance and weight norm tests share: shapes, parameters and the
comparison with PyTorch in fp64."""

import torch

from flag_gems.testing import assert_close

from conftest import make, pick

SHAPES = [pick((4, 6), (256, 512)), pick((2, 6, 5), (16, 64, 1024)), pick((2, 6, 3, 4), (8, 64, 56, 56)),
          pick((2, 6, 2, 3, 2), (4, 32, 8, 16, 16))]
# Long reductions: split over programs, partials combined in a second pass.
LONG = pick((1, 2, 40000), (2, 32, 2**20))


def params(C, dtype, present=True):
    if not present:
        return None, None
    return make((C,), dtype), make((C,), dtype)


def close(ours, native, reference, dtype=None, reduce_dim=1):
    assert ours.shape == native.shape and ours.dtype == native.dtype
    dtype = dtype or ours.dtype
    # Gradients are differences of O(1) terms: half results near zero carry O(1) rounding.
    atol = 1e-2 if dtype == torch.bfloat16 else 1e-3 if dtype == torch.float16 else 1e-4
    assert_close(ours, reference, dtype, reduce_dim=reduce_dim, atol=atol)
