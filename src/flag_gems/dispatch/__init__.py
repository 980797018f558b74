from .router import CppRoute, Row, ensure_registered, install_cpp_routes, state, sync_cpp_routes

__all__ = ["CppRoute", "Row", "ensure_registered", "install_cpp_routes", "state", "sync_cpp_routes"]
