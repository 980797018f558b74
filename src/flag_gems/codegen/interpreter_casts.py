"""Casts to and from bfloat16 under Triton's CPU interpreter, rounded as PyTorch rounds.

The interpreter keeps bfloat16 as raw uint16 bits and converts float32 to it by cutting
the low bits (0.1 becomes 0.099609375, PyTorch's 0.10009765625), mishandles subnormals
(wrong by up to 11x) and clamps what should round to infinity; casts between bfloat16
and float64 or integers reinterpret the bits. ``fix()`` makes the interpreter's builder
convert through float32 with round-to-nearest-even, as c10::BFloat16 does.

It also stops the interpreter building Triton's integer-overflow checks: they end in
device asserts, which the interpreter (debug off) drops, after an int64 recomputation of
every 32-bit integer operation that costs a third of a small kernel's time.
"""

import dataclasses

import numpy as np

_fixed = False


def _to_bfloat16(values):
    """float32 values -> bfloat16 bits (uint16), nearest even; NaN stays a quiet NaN."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    bits = values.view(np.uint32)
    with np.errstate(over="ignore"):
        rounded = ((bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16))
    rounded = rounded.astype(np.uint16)
    rounded[np.isnan(values)] = 0x7FC0
    return rounded


def _from_bfloat16(bits):
    """bfloat16 bits (uint16) -> float32 values, exactly."""
    return (np.ascontiguousarray(bits, dtype=np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)


def fix():
    """Patch the interpreter's casts (once per process; the interpreter only)."""
    global _fixed
    if _fixed:
        return
    import triton.language as tl
    from triton.runtime import interpreter

    builder = interpreter.InterpreterBuilder
    cast, to_fp = builder.cast_impl, builder.create_fp_to_fp

    def cast_impl(self, src, dst_type):
        source, target = src.dtype.scalar, dst_type.scalar
        if target == tl.bfloat16:
            values = _from_bfloat16(src.data) if source == tl.bfloat16 else src.data.astype(np.float32)
            return interpreter.TensorHandle(_to_bfloat16(values), target)
        if source == tl.bfloat16:
            values = _from_bfloat16(src.data).astype(interpreter._get_np_dtype(dst_type))
            return interpreter.TensorHandle(values, target)
        return cast(self, src, dst_type)

    def create_fp_to_fp(self, src, dst_type, rounding_mode):
        if tl.bfloat16 in (src.dtype.scalar, dst_type.scalar):
            return cast_impl(self, src, dst_type)
        return to_fp(self, src, dst_type, rounding_mode)

    builder.cast_impl = cast_impl
    builder.create_fp_to_fp = create_fp_to_fp
    for name in ("create_si_to_fp", "create_ui_to_fp", "create_fp_to_si", "create_fp_to_ui", "create_fp_ext",
                 "create_fp_trunc"):
        setattr(builder, name, lambda self, src, dst_type: self.cast_impl(src, dst_type))
    shared = interpreter.interpreter_builder
    shared.options = dataclasses.replace(shared.options, sanitize_overflow=False)
    _fixed = True
