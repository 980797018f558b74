"""Generated kernel sources, kept as files under flag_gems' cache."""

import hashlib
import importlib.util
import os
import tempfile

from ..runtime import cache_dir


def load_generated(kind, name, source):
    """Import ``source`` as a module from a file named after its hash.

    Triton reads kernel source from files, and a stable file lets its on-disk
    compile cache serve later processes. Writes are atomic, so processes that
    generate the same module at once do not see half a file.
    """
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    path = os.path.join(cache_dir("codegen", kind), f"{name}_{digest}.py")
    if not os.path.exists(path):
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(source)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(f"flag_gems_generated.{kind}.{name}_{digest}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
