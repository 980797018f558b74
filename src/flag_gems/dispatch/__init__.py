from ..runtime.nesting import native_calls
from .router import Row, ensure_registered, state

__all__ = ["Row", "ensure_registered", "native_calls", "state"]
