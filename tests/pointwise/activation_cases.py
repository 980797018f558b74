"""What the activation test modules share: inputs, running through flag_gems, and
comparisons with native (dtype, shape and strides as native in the same dtype, values
as native in fp64)."""

import torch

import flag_gems
from flag_gems.testing import assert_close

from conftest import make, pick

SHAPE = pick((4, 33), (1024, 1027))
FIVE_D = pick((2, 3, 1, 4, 5), (8, 16, 32, 4, 64))


def up(value):
    return value.double() if isinstance(value, torch.Tensor) and value.dtype.is_floating_point else value


def compare(ours, native_call, args, dtype=None, equal_nan=True):
    """``ours`` against native: dtype, shape and strides as native in the same dtype,
    values as native in fp64."""
    native = native_call(*args)
    assert ours.dtype == native.dtype and ours.shape == native.shape
    assert ours.stride() == native.stride() or ours.numel() <= 1
    assert_close(ours, native_call(*[up(a) for a in args]), dtype or native.dtype, equal_nan=equal_nan)


def with_gems(fn, *args, **kwargs):
    with flag_gems.use_gems():
        return fn(*args, **kwargs)


def make_inputs(shape, dtype):
    return make(shape, dtype) * 3  # reaches both sides of every kink (+-3 for the hard ones)


def assert_routable_and_not_composite_implicit(rows):
    # A row on an op that only has a CompositeImplicitAutograd kernel (selu, relu6) would
    # take it away from autograd's decomposition: none of ours may be one.
    key = flag_gems.runtime.selected_vendor().dispatch_key
    for row in rows:
        name = f"aten::{row.name}"
        torch.library.get_kernel(name, key)
        backend = torch._C._dispatch_has_kernel_for_dispatch_key(name, key)
        implicit = torch._C._dispatch_has_kernel_for_dispatch_key(name, "CompositeImplicitAutograd")
        assert backend or not implicit, row.name
