from ..runtime.nesting import native_calls
from .router import Row, aten_rows, ensure_registered, state

__all__ = ["Row", "aten_rows", "ensure_registered", "native_calls", "state"]
