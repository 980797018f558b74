"""What the reduction test modules share: one checker of any reduction through
flag_gems against native PyTorch, and the tests every op table gets."""

import pytest
import torch

import flag_gems
from flag_gems.testing import assert_close, assert_equal

from conftest import assert_same_error, error_of, ALL_DTYPES, DEVICE, make, pick

NAN, INF = float("nan"), float("inf")


def as_tuple(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def check_op(fn, x, *args, **kwargs):
    """``fn`` through flag_gems against native: the same error, or the same dtypes
    and shapes with floats close to an fp64 reference and the rest exact."""
    native_error = error_of(lambda: fn(x, *args, **kwargs))
    if native_error is not None:
        assert_same_error(lambda: fn(x, *args, **kwargs))
        return None
    native = as_tuple(fn(x, *args, **kwargs))
    with flag_gems.use_gems():
        ours = as_tuple(fn(x, *args, **kwargs))
    wide = x.dtype.is_floating_point and "dtype" not in kwargs
    reference = as_tuple(fn(x.double(), *args, **kwargs)) if wide else native
    reduced = max(1, x.numel() // max(1, native[0].numel()))
    for mine, theirs, ref in zip(ours, native, reference):
        assert mine.shape == theirs.shape and mine.dtype == theirs.dtype, (mine, theirs)
        if theirs.dtype.is_floating_point:
            assert_close(mine, ref, theirs.dtype, reduce_dim=reduced, equal_nan=True)
        else:
            assert_equal(mine, theirs)
    return ours


def one(dim):
    """The single dim that ops taking an int use."""
    return dim[0] if isinstance(dim, list) else dim


OP_SHAPES = [
    ((), None), ((), 0),
    ((0,), None), ((4, 0), 1), ((0, 3), 1), ((0, 3), 0), ((0, 2, 4), [1]), ((2, 0, 4), [0, 2]),
    ((17,), 0),
    (pick((5, 37), (1024, 4097)), 1),
    (pick((5, 37), (1024, 4097)), 0),
    (pick((5, 37), (1024, 4097)), None),
    (pick((3, 4, 5), (64, 128, 96)), [1]),  # a middle dim, read in place
    (pick((3, 4, 5), (64, 128, 96)), [0, 2]),  # non-adjacent dims
    (pick((2, 3, 2, 5, 3), (8, 16, 32, 4, 64)), [1, 3]),
    (pick((2, 20011), (4, 1 << 20)), 1),  # long rows: split across programs
    (pick((20011, 3), (1 << 20, 8)), 0),
]

SPECIAL = [[1.0, NAN, 2.0, NAN], [INF, 1.0, 2.0, -INF], [-INF, -INF, -INF, -INF], [INF, INF, 0.0, 1.0],
           [3.0, 3.0, -1.0, 3.0], [0.0, -0.0, 0.0, 0.0]]


def op_table_tests(ops):
    """The tests of an op table: shapes and dims, dtypes, strided inputs and special values
    of every op in ``ops`` (name -> (call(x, dim, keepdim), dtypes torch supports for it)).
    A test module takes them as its own: ``test_op_shapes_and_dims, ... = op_table_tests(OPS)``."""

    @pytest.mark.parametrize("shape, dim", OP_SHAPES, ids=str)
    @pytest.mark.parametrize("name", sorted(ops))
    def test_op_shapes_and_dims(name, shape, dim):
        call, _ = ops[name]
        x = make(shape, torch.float32)
        check_op(call, x, dim, False)
        check_op(call, x, dim, True)

    @pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
    @pytest.mark.parametrize("name", sorted(ops))
    def test_op_dtypes(name, dtype):
        call, dtypes = ops[name]
        x = make(pick((4, 19), (512, 1000)), dtype)
        if dtype not in dtypes:
            check_op(call, x, 1, False)  # native raises, or takes the call itself
            return
        check_op(call, x, 1, False)
        check_op(call, x, None, False)
        check_op(call, x.t(), 1, True)

    @pytest.mark.parametrize("name", sorted(ops))
    def test_op_strided_inputs(name):
        call, _ = ops[name]
        base = make(pick((6, 10), (1024, 2048)), torch.float32)
        check_op(call, base.t(), 0, False)  # transposed: K > 1 with a long stride
        check_op(call, base[:, ::3], 1, False)
        check_op(call, base[::2], None, False)  # every dim, non-contiguous
        check_op(call, make(pick((5,), (1000,)), torch.float32).expand(7, -1), 0, False)  # zero stride
        permuted = make(pick((4, 5, 6), (32, 64, 128)), torch.float32).permute(2, 0, 1)
        check_op(call, permuted, [0, 2], False)  # reduced dims that do not merge
        check_op(call, permuted, [1], True)

    @pytest.mark.parametrize("name", sorted(ops))
    def test_op_special_values(name):
        call, _ = ops[name]
        x = torch.tensor(SPECIAL, device=DEVICE)
        if name.endswith("_mean"):
            # torch's Welford mean of a row with an infinity is NaN or infinite depending on
            # where the infinity lies; ours is torch.mean's. Compare NaN rows only.
            x = x.nan_to_num(posinf=7.0, neginf=-7.0)
        check_op(call, x, 1, False)
        check_op(call, x.t(), 0, False)  # the cols kernel
        check_op(call, x, None, False)

    return test_op_shapes_and_dims, test_op_dtypes, test_op_strided_inputs, test_op_special_values
