from .router import Row, ensure_registered, state  # noqa: F401
