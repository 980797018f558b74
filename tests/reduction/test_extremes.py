"""Extremes (amax/amin, max/min, argmax/argmin, aminmax) against PyTorch: the shared
checker over their op table, then ties, NaNs and where the first extreme lies."""

import pytest
import torch

from conftest import DEVICE, FLOAT_DTYPES, INT_DTYPES, ALL_DTYPES, make, pick
from reduction_checks import INF, NAN, check_op, one, op_table_tests

# name -> (call(x, dim, keepdim), dtypes torch supports for it)
INTS_AND_FLOATS = FLOAT_DTYPES + INT_DTYPES
OPS = {
    "amax": (lambda x, d, k: torch.amax(x, d if d is not None else [], keepdim=k), ALL_DTYPES),
    "amin": (lambda x, d, k: torch.amin(x, d if d is not None else [], keepdim=k), ALL_DTYPES),
    "max": (lambda x, d, k: torch.max(x, one(d), keepdim=k) if d is not None else torch.max(x), ALL_DTYPES),
    "min": (lambda x, d, k: torch.min(x, one(d), keepdim=k) if d is not None else torch.min(x), ALL_DTYPES),
    "argmax": (lambda x, d, k: torch.argmax(x, one(d), keepdim=k), INTS_AND_FLOATS),
    "argmin": (lambda x, d, k: torch.argmin(x, one(d), keepdim=k), INTS_AND_FLOATS),
    "aminmax": (lambda x, d, k: torch.aminmax(x, dim=one(d), keepdim=k), ALL_DTYPES),
}

test_op_shapes_and_dims, test_op_dtypes, test_op_strided_inputs, test_op_special_values = op_table_tests(OPS)


@pytest.mark.parametrize("fn", [torch.argmax, torch.argmin, lambda x, d: torch.max(x, d).indices,
                                lambda x, d: torch.min(x, d).indices], ids=["argmax", "argmin", "max", "min"])
def test_ties_and_nan_take_the_first_index(fn):
    n = pick(20011, 1 << 20)  # long enough to split across programs
    x = torch.zeros(5, n, device=DEVICE)
    x[0, [7, n // 2, n - 1]] = 5.0
    x[0, [3, n - 2]] = -5.0
    x[1, [n - 5, n // 3, n - 3]] = NAN  # the first NaN wins, wherever it lies
    x[2] = 1.0
    x[3], x[4] = -INF, INF  # rows of the extremes' identity values: index 0 all the same
    for layout in (x, x.t().contiguous().t()):  # rows, then cols kernel
        ours = check_op(fn, layout, 1)
        assert ours[0][1].item() == n // 3
        assert ours[0][3].item() == ours[0][4].item() == 0
    check_op(fn, x.reshape(-1), 0)
    check_op(fn, x[3:].reshape(-1), 0)
    lowest = torch.full((3, n), torch.iinfo(torch.int32).min, dtype=torch.int32, device=DEVICE)
    lowest[1] = torch.iinfo(torch.int32).max
    check_op(fn, lowest, 1)


EXTREMES = [torch.argmax, torch.argmin, lambda x, d: torch.max(x, d), lambda x, d: torch.min(x, d), torch.amax,
            torch.amin, lambda x, d: torch.aminmax(x, dim=d)]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("fn", EXTREMES, ids=["argmax", "argmin", "max", "min", "amax", "amin", "aminmax"])
def test_extremes_find_the_first_wherever_it_lies(fn, dtype):
    """Ties, NaNs, signed zeros and infinities in a row's first tile, a later whole tile and
    its last, partial tile (on the GPU: a row per program, half types kept in half)."""
    rows, n = pick((8, 2 * 1024 + 3), (1024, 2 * 2048 + 3))
    first, later, last = 5, n // 2 + 1, n - 2
    x = make((rows, n), dtype).clamp(-100, 100)
    x[0, [later, last, first]] = 500.0  # the largest three times: the first tile's wins
    x[1, [later, last, first]] = -500.0
    x[2, [last, later]] = NAN
    x[3, last] = NAN
    x[4, 0] = NAN
    x[5] = -INF
    x[6] = INF
    x[7] = -1.0
    x[7, [first - 1, later - 1]] = -0.0  # equal to 0.0: the largest is first at first - 1
    x[7, [first, later]] = 0.0
    for layout in (x, x.t().contiguous().t()):  # rows, then cols kernel
        check_op(fn, layout, 1)
