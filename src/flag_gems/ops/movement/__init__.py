"""Data movement: copies and dtype conversions."""
