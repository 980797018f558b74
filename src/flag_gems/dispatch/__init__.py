from .router import Row, ensure_registered, state

__all__ = ["Row", "ensure_registered", "state"]
