"""Data movement by index: gathers, scatters, advanced indexing, embedding and their kin."""
