"""Elementwise operators: arithmetic, unary math, comparisons and logic, activations."""
