"""Helpers every layer shares: ``dtypes`` (dtype sets, promotion, accumulators) and
``layout`` (shapes, strides, broadcasting, overlap). They import only torch."""
