"""Generated kernel sources, kept as files under flag_gems' cache."""

import hashlib
import importlib.util
import os

from ..runtime import temporary_cache_dir, writable_cache_dir, write_atomically


def load_generated(kind, name, source):
    """Import ``source`` as a module from a file named after its hash.

    Triton reads kernel source from files, and a stable file lets its on-disk
    compile cache serve later processes. Writes are atomic, so processes that
    generate the same module at once do not see half a file. Where flag_gems' cache
    cannot take the file, this process's temporary cache does (one warning).
    """
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    file_name = f"{name}_{digest}.py"
    path = os.path.join(writable_cache_dir("codegen", kind), file_name)
    if not os.path.exists(path):
        try:
            write_atomically(path, source)
        except OSError as error:  # a full disk, or a folder that stopped taking files
            path = os.path.join(temporary_cache_dir("codegen", kind, reason=error), file_name)
            write_atomically(path, source)
    spec = importlib.util.spec_from_file_location(f"flag_gems_generated.{kind}.{name}_{digest}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
