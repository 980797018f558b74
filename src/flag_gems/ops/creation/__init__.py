"""Creation operators: filled tensors, ranges, eye, polar and the view-copy operators."""
