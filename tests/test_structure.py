"""The layout's rules, checked: every operator module is discovered, the layers import
only downward, no family reaches into another's private names, and README's operator
table is the one the rows give."""

import ast
import pathlib
import re

import flag_gems
from flag_gems import ops

SRC = pathlib.Path(flag_gems.__file__).parent
README = SRC.parent.parent / "README.md"

# What each layer may import from flag_gems (besides itself); ops and api sit above these.
ALLOWED_BELOW = {
    "utils": set(),
    "runtime": {"utils"},
    "fastpath": {"utils", "runtime"},
    "tuning": {"utils", "runtime"},
    "dispatch": {"utils", "runtime", "fastpath"},
    "codegen": {"utils", "runtime", "fastpath", "tuning", "dispatch"},
}


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        yield path, ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path.name == "__init__.py"


def _imports(path, module, is_package):
    """(imported flag_gems module, names) for every import in ``path``, at any depth."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("flag_gems"):
                yield target, [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("flag_gems"):
                    yield alias.name, []


def _layer(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_module_with_rows_is_collected():
    declared = set()
    for path, module, _ in _modules():
        if module.startswith("flag_gems.ops.") and re.search(r"^ATEN\b", path.read_text(), re.M):
            declared.add(module)
    collected = set(ops.rows_by_module())
    assert declared and declared == collected, (declared ^ collected)
    assert set(ops.module_names()) >= declared


# Command-line entry points sit above every layer.
ENTRY_POINTS = {"flag_gems.tuning.__main__"}


def test_layers_import_only_downward():
    for path, module, is_package in _modules():
        layer = _layer(module)
        if layer not in ALLOWED_BELOW or module in ENTRY_POINTS:
            continue
        for target, names in _imports(path, module, is_package):
            other = _layer(target)
            if other == layer:
                continue
            if target == "flag_gems":  # `from .. import runtime` names a layer
                assert set(names) <= ALLOWED_BELOW[layer], f"{module} imports {names}"
            else:
                assert other in ALLOWED_BELOW[layer], f"{module} imports {target}"


def test_families_use_only_public_names_of_each_other():
    for path, module, is_package in _modules():
        if not module.startswith("flag_gems.ops."):
            continue
        family = module.split(".")[2]
        for target, names in _imports(path, module, is_package):
            if target.startswith("flag_gems.ops.") and target.split(".")[2] != family:
                private = [n for n in names if n.startswith("_")]
                assert not private, f"{module} takes {private} from {target}"
            if target.startswith("flag_gems.fastpath."):
                raise AssertionError(f"{module} reaches into {target}: use the fastpath interface")


def test_no_source_file_over_600_lines():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.*") if p.suffix in (".py", ".c", ".cpp", ".h")
            for n in [len(p.read_text().splitlines())] if n > 600}
    assert not long, long


def _public_name(base, bases):
    """An in-place overload's base (``add_``) lists as its operator (``add``) when that exists."""
    if base.endswith("_") and not base.endswith("__") and base[:-1] in bases:
        return base[:-1]
    return base


# Rows a module declares only where the backend supports them (see layer_norm.py): README
# lists them for every vendor.
CONDITIONAL_ROWS = {"flag_gems.ops.norm.layer_norm": {"_fused_rms_norm", "_fused_rms_norm_backward"}}


def operator_table():
    """README's operator table, generated from the rows (the same on every vendor)."""
    lines = ["| module | aten operators (every overload, with its `out=` and in-place forms where aten has "
             "them) |", "| --- | --- |"]
    for module, rows in sorted(ops.rows_by_module().items()):
        bases = {row.base for row in rows} | CONDITIONAL_ROWS.get(module, set())
        names = sorted({_public_name(base, bases) for base in bases})
        where = module[len("flag_gems.ops."):].replace(".", "/")
        lines.append(f"| `{where}` | {', '.join(f'`{n}`' for n in names)} |")
    return "\n".join(lines)


def test_readme_lists_every_operator():
    text = README.read_text()
    start = text.index("<!-- operators: generated by tests/test_structure.py -->")
    end = text.index("<!-- end of operators -->")
    listed = text[start:end].split("\n", 1)[1].strip()
    assert listed == operator_table(), "README's operator table is stale; it should read:\n" + operator_table()


def test_readme_lists_every_fused_function():
    text = README.read_text()
    assert all(f"`{name}`" in text for name in flag_gems._FUSED)
