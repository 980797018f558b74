"""(being written)"""

__all__ = []

ATEN = ()
