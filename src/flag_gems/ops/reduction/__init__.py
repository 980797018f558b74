"""Reductions (sum, mean, extremes, statistics, norms), scans and softmax."""
