"""Elementwise operators as PyTorch defines them, on top of ``Pointwise``.

``Elementwise(formula, name, promotion)`` adds what every elementwise aten
overload shares: the result dtype under PyTorch's type promotion (tensors,
0-d tensors and Python numbers as operands), broadcasting, TensorIterator's
output layout, ``out=`` and in-place semantics, and ``unsupported``: the
reason a call goes to the native kernel (a dtype we do not take, shapes that
do not broadcast, an ``out=`` that needs resizing, an illegal cast...), so
that PyTorch itself raises its errors and resizes its outputs.

An operator module then holds, per operator, a formula, an ``Elementwise`` and
its aten rows.
"""

import enum

import torch

from .. import runtime
from ..dispatch import Row
from ..utils.dtypes import COMPUTE_DTYPE, promoted_dtype
from ..utils.layout import broadcast_shape, overlaps_itself, shares_storage
from .pointwise import Pointwise, output_like

_NUMBERS = (bool, int, float)


class Promotion(enum.Enum):
    DEFAULT = "default"  # the promoted dtype (add, mul, maximum, where...)
    INT_TO_FLOAT = "int_to_float"  # integral results become the default float (true div, exp, sin...)
    ALWAYS_BOOL = "always_bool"  # computed in the promoted dtype, result bool (eq, isnan...)


class Elementwise:
    """``formula(*operands, *params)`` elementwise, with PyTorch's semantics.

    ``operands`` take part in promotion and broadcasting (tensors or numbers);
    ``params`` are plain numbers handed to the formula (alpha, slopes, bounds).
    ``accepts(promoted_dtype)`` limits the dtypes (None: every supported one).
    ``flush_denormals``: the kernels may link the vendor's denormal-flushing math library
    (``runtime.compile_options``), for formulas whose results it does not change.
    """

    def __init__(self, formula, name, promotion=Promotion.DEFAULT, accepts=None, takes_result_dtype=False,
                 out_casts=True, flush_denormals=False):
        self.pointwise = Pointwise(formula, name, takes_result_dtype=takes_result_dtype, launch_from_cpp=True,
                                   flush_denormals=flush_denormals)
        self.name = name
        self.promotion = promotion
        self.accepts = accepts
        # False for operators whose out= must have the result dtype exactly (clamp).
        self.out_casts = out_casts
        self.supported = runtime.supported_dtypes()
        self._vendor_is_cpu = runtime.selected_vendor().device == "cpu"

    # ---- dtypes

    def dtypes(self, operands):
        """(compute dtype, result dtype) for these operands."""
        common = promoted_dtype(operands)
        if self.promotion is Promotion.ALWAYS_BOOL:
            return COMPUTE_DTYPE[common], torch.bool
        if self.promotion is Promotion.INT_TO_FLOAT and not common.is_floating_point:
            common = torch.get_default_dtype()
        return COMPUTE_DTYPE[common], common

    # ---- what goes to native

    def _operands_unsupported(self, operands):
        device = result_device(operands)
        if device.type != runtime.selected_vendor().device:
            return f"operands on {device.type}"
        for op in operands:
            if isinstance(op, torch.Tensor):
                if op.dtype not in self.supported:
                    return f"dtype {op.dtype} is not supported"
                if op.device != device and not (op.dim() == 0 and op.is_cpu):
                    return "operands on different devices"  # only CPU scalar tensors may differ
            elif type(op) not in _NUMBERS:
                return f"operand of type {type(op).__name__}"
            elif type(op) is int and not -(2**63) <= op < 2**63:
                return "integer operand out of int64 range"
        try:
            broadcast_shape(operands)
        except RuntimeError:
            return "shapes do not broadcast"
        if self.accepts is not None and not self.accepts(promoted_dtype(operands)):
            return f"{self.name} does not take {promoted_dtype(operands)}"
        return None

    def _destination_unsupported(self, dest, operands, result_dtype):
        if dest.dtype not in self.supported:
            return f"output dtype {dest.dtype} is not supported"
        if dest.device != result_device(operands):
            return "output on another device"
        if dest.shape != broadcast_shape(operands):
            return "output shape differs from the result shape"
        if not torch.can_cast(result_dtype, dest.dtype) or (not self.out_casts and dest.dtype != result_dtype):
            return f"result type {result_dtype} can't be written to {dest.dtype}"
        if overlaps_itself(dest):
            return "output has internal overlap"
        for src in operands:
            if isinstance(src, torch.Tensor) and src is not dest and shares_storage(src, dest):
                if not (src.data_ptr() == dest.data_ptr() and src.stride() == dest.stride()
                        and src.shape == dest.shape):
                    return "output overlaps an input"
        return None

    def _plainly_supported(self, operands):
        """The common call, checked cheaply: tensors of one supported dtype, shape and device."""
        first = operands[0]
        if not isinstance(first, torch.Tensor) or first.dtype not in self.supported:
            return False
        shape, dtype, index, cpu = first.shape, first.dtype, first.get_device(), first.is_cpu
        for op in operands[1:]:
            if not (isinstance(op, torch.Tensor) and op.dtype == dtype and op.shape == shape
                    and op.get_device() == index and op.is_cpu == cpu):
                return False
        return cpu == self._vendor_is_cpu and (self.accepts is None or self.accepts(dtype))

    def unsupported(self, operands, out=None, inplace=False):
        """Why this call goes to native, or None; ``inplace`` writes ``operands[0]``."""
        if out is None and not inplace and self._plainly_supported(operands):
            return None
        reason = self._operands_unsupported(operands)
        if reason is None and (out is not None or inplace):
            dest = operands[0] if inplace else out
            if inplace and not isinstance(dest, torch.Tensor):
                return "in-place on a number"
            reason = self._destination_unsupported(dest, operands, self.dtypes(operands)[1])
        return reason

    # ---- running

    def __call__(self, operands, params=(), out=None):
        """The result of the operator, in a new tensor or in ``out``."""
        if out is None:
            result = self.pointwise.fast(*operands, *params)
            if result is not None:
                return result
        compute, result_dtype = self.dtypes(operands)
        return self.launch(operands, operands, params, out, compute, result_dtype, teach_cpp=True)

    def launch(self, operands, kernel_operands, params, out, compute, result_dtype, teach_cpp):
        """Run the kernel over ``kernel_operands`` (``operands`` as the kernel takes them,
        e.g. converted to a common dtype) into ``out``, or into a new tensor laid out from
        ``operands``; ``teach_cpp`` as for ``Pointwise``, for a new result."""
        if out is not None and out.dtype == result_dtype:
            return self.pointwise(out, compute, *kernel_operands, *params)
        device = result_device(operands)
        tensors = [op for op in operands if isinstance(op, torch.Tensor) and op.device == device]
        result = self.pointwise(output_like(broadcast_shape(operands), result_dtype, device, tensors),
                                compute, *kernel_operands, *params, teach_cpp=teach_cpp)
        # An out= of another dtype receives the result rounded to its own dtype first, as in PyTorch.
        return result if out is None else out.copy_(result)

    def inplace(self, operands, params=()):
        return self(operands, params, out=operands[0])


def result_device(operands):
    """The device of the result: that of the first tensor not a CPU scalar."""
    for op in operands:
        if isinstance(op, torch.Tensor) and not (op.dim() == 0 and op.is_cpu):
            return op.device
    return next(op.device for op in operands if isinstance(op, torch.Tensor))


class ElementwiseOperator:
    """One elementwise aten operator declared once: its functional form (which serves
    the ``out=`` overloads too), its in-place form, the conditions of both and its rows,
    all derived from an ``Elementwise`` and the aten schema of its first overload.

    The schema's arguments without a default are the operands (tensors or numbers, in
    promotion and broadcasting); those with one, but ``out``, are the formula's params,
    passed positionally or by name. ``check(operands, params)`` adds the operator's own
    reasons to go native (a bool alpha, an integer zero divisor...), asked once the
    operands passed the ``Elementwise``'s own checks. ``inplace``: the
    ``name_`` overloads exist. ``cpp``: overload -> ``CppRoute`` (see fastpath).
    """

    def __init__(self, name, op, overloads, *, check=None, inplace=True, cpp=None):
        self.name, self.op, self.check = name, op, check
        first = overloads[0]
        schema = torch._C._get_schema(f"aten::{name}", first)
        arguments = [a for a in schema.arguments if a.name != "out"]
        self.operand_names = tuple(a.name for a in arguments if not a.has_default_value())
        self.params = tuple((a.name, a.default_value) for a in arguments if a.has_default_value())
        self.defaults = tuple(default for _, default in self.params)
        self._names = frozenset(self.operand_names) | {n for n, _ in self.params}
        self.functional = self._functional()
        self.inplace = self._inplace() if inplace else None
        cpp = cpp or {}
        self.rows = []
        for overload in overloads:
            suffix = f".{overload}" if overload else ""
            self.rows.append(Row(f"{name}{suffix}", self.functional, self.unsupported, cpp=cpp.get(overload)))
            if "out" not in overload and inplace:
                self.rows.append(Row(f"{name}_{suffix}", self.inplace, self.inplace_unsupported))

    def __iter__(self):
        """``ADD_OP, add, add_ = ElementwiseOperator(...)``: the declaration and its forms."""
        return iter((self, self.functional, self.inplace))

    def bind(self, args, kwargs):
        """(operands, params) of a call made as aten's schema allows."""
        count = len(self.operand_names)
        if not kwargs and len(args) >= count:
            return (args, self.defaults) if len(args) == count else \
                (args[:count], args[count:] + self.defaults[len(args) - count:])
        if not kwargs.keys() <= self._names:
            raise TypeError(f"{self.name}() got unexpected arguments {sorted(kwargs.keys() - self._names)}")
        operands = args[:count] + tuple([kwargs[n] for n in self.operand_names[len(args):]])
        given = args[count:]
        return operands, given + tuple([kwargs.get(n, d) for n, d in self.params[len(given):]])

    def _functional(self):
        op, bind = self.op, self.bind

        def functional(*args, out=None, **kwargs):
            operands, params = bind(args, kwargs)
            return op(operands, params, out)

        functional.__name__ = functional.__qualname__ = self.name
        return functional

    def _inplace(self):
        op, bind = self.op, self.bind

        def inplace(*args, **kwargs):
            operands, params = bind(args, kwargs)
            return op.inplace(operands, params)

        inplace.__name__ = inplace.__qualname__ = self.name + "_"
        return inplace

    def unsupported(self, *args, out=None, **kwargs):
        operands, params = self.bind(args, kwargs)
        return self.op.unsupported(operands, out) or (self.check is not None and self.check(operands, params)) \
            or None

    def inplace_unsupported(self, *args, **kwargs):
        operands, params = self.bind(args, kwargs)
        return self.op.unsupported(operands, inplace=True) or \
            (self.check is not None and self.check(operands, params)) or None
