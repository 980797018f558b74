"""Elementwise operators: arithmetic (arith), unary math (unary), comparisons and logic
(compare), activations and their backward ops (activation), glu and the fused gated
functions (gated), rotary position embedding (rotary, its kernel in rotary_kernels); each
operator one ``ElementwiseOperator`` declaration where PyTorch's elementwise semantics
cover it."""
