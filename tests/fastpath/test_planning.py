"""The Python half of the C++ routes' launch plans (fastpath/plans.py), on any device:
which calls can be planned, and how launches and outputs are tied to operands and
allocations. test_plans.py replays plans on the GPU."""

import torch

from flag_gems.fastpath import plans


def _watched(fn):
    watch = plans._Watch()
    with watch:
        result = fn()
    return watch, result


def test_the_watch_allows_allocations_views_and_dtypes_only():
    x = torch.randn(4, 6)
    watch, _ = _watched(lambda: (x.view(6, 4), x.t(), x[1:], torch.result_type(x, 2.0)))
    assert watch.problem is None and watch.allocations == []
    watch, _ = _watched(lambda: x + 1)
    assert "aten.add" in watch.problem
    watch, _ = _watched(lambda: torch.tensor(3.0).item())  # a CPU number: its value is in the key
    assert watch.problem is None
    watch, _ = _watched(lambda: torch.empty(3))  # on the CPU: not a device allocation
    assert watch.problem.startswith("allocates")


def test_operands_follow_the_schema_order():
    names, returns = plans._schema("add.out")
    a, b, out = torch.randn(2), torch.randn(2), torch.empty(2)
    assert returns == ["Tensor"]
    # CPU tensors are not operands (the route keys them by value): only CUDA ones count
    assert plans._operands(names, (a, b), {"alpha": 1, "out": out}) == []


def test_pointers_are_tied_to_allocations_then_operands():
    allocation = torch.empty(16)
    operand = torch.randn(32)[8:]
    assert plans._locate(allocation.data_ptr() + 8, [allocation], [operand]) == (plans._SOURCE_ALLOCATION, 0, 8)
    # inside the operand's storage, relative to its own data pointer (which may be past the start)
    assert plans._locate(operand.data_ptr() - 4, [allocation], [operand]) == (plans._SOURCE_OPERAND, 0, -4)
    assert plans._locate(12345, [allocation], [operand]) is None


def test_launch_specs_patch_pointers_and_keep_numbers():
    allocation, operand = torch.empty(8), torch.randn(8)
    recorded = [(111, 4, 1, 1, 128, 0, b"ppif", (operand.data_ptr(), allocation.data_ptr() + 4, 7, 1065353216))]
    launches = plans._launches(recorded, [allocation], [operand])
    assert launches == [(111, [4, 1, 1], 128, 0, [0, 0, 7, 1065353216],
                         [(0, plans._SOURCE_OPERAND, 0, 0), (1, plans._SOURCE_ALLOCATION, 0, 4)])]
    assert plans._launches([(1, 1, 1, 1, 32, 0, b"p", (999,))], [allocation], [operand]) is None
    # a cell above 2**63 reaches C++ as the int64 of the same bits
    assert plans._launches([(1, 1, 1, 1, 32, 0, b"i", (2**64 - 1,))], [], [])[0][4] == [-1]


def test_outputs_are_operands_allocations_or_views_of_them():
    allocation = torch.empty(4, 6)
    operand = torch.randn(4, 6)
    assert plans._outputs(operand, ["Tensor"], [allocation], [operand]) == [
        (plans._SOURCE_OPERAND, 0, False, [], [], 0)]
    assert plans._outputs(allocation, ["Tensor"], [allocation], [operand]) == [
        (plans._SOURCE_ALLOCATION, 0, False, [4, 6], [6, 1], 0)]
    view = allocation[1:].t()
    assert plans._outputs((view, None), ["Tensor", "Tensor"], [allocation], [operand]) == [
        (plans._SOURCE_ALLOCATION, 0, True, [6, 3], [1, 6], 6), (plans._SOURCE_NOTHING, 0, False, [], [], 0)]
    assert plans._outputs(torch.randn(2), ["Tensor"], [allocation], [operand]) is None  # made elsewhere
    assert plans._outputs(3, ["int"], [], []) is None
    with_history = operand.clone().requires_grad_()
    assert plans._outputs(with_history * 2, ["Tensor"], [], []) is None
    # in place on a parameter (an optimizer step): the operand itself, whatever it requires
    assert plans._outputs(with_history, ["Tensor"], [], [with_history]) == [
        (plans._SOURCE_OPERAND, 0, False, [], [], 0)]
