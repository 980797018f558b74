"""Joining and shape operators: cat, stack, repeat, flip, roll, pads, triangles, diagonals."""
