"""``python -m flag_gems.tuning show|export FILE|import FILE|clear``: the tuning cache
of this machine (vendor, device, Triton version), so tuned results can ship in an image.

    show                  the cache file and every entry
    export FILE           write entries to FILE (.yaml/.yml: YAML, else JSON)
    import FILE [--force] store FILE's entries over existing ones; --force takes a file
                          exported on another device or Triton version
    clear [--kernel NAME] delete every entry (or one kernel's)
"""

import argparse
import json
import sys

from .shipped import FORMAT, ExportFileError, rows_of
from .tuner import cache_path, checked_rows, device_identity, store


def _valid_rows():
    """The cache's rows that their kernels accept; the others are dropped (see show)."""
    # An entry point above every layer: the operator modules define the tuners whose config
    # spaces check the rows.
    from .. import ops

    ops.collect_rows()
    valid, invalid = checked_rows(store().rows())
    for row, reason in invalid:
        store().drop(row, reason)
    return valid


def _document():
    vendor, device, triton_version = device_identity()
    entries = []
    for row in _valid_rows():
        entry = dict(row)
        entry["key"] = json.loads(row["key"])
        entry["config"] = json.loads(row["config"])
        entries.append(entry)
    return {"flag_gems_tuning": FORMAT, "vendor": vendor, "device": device, "triton": triton_version,
            "entries": entries}


def _is_yaml(path):
    return path.lower().endswith((".yaml", ".yml"))


def show(out=None):
    out = out or sys.stdout
    rows = _valid_rows()
    state = store()
    note = (f", not usable: {state.unusable}" if state.unusable else ", read-only" if state.read_only else "")
    print(f"tuning cache: {cache_path()}  ({len(rows)} entries{note})", file=out)
    for kernel, key, reason in state.dropped:
        print(f"dropped invalid entry: {kernel} {key}: {reason}", file=out)
    if not rows:
        return
    table = [("kernel", "key", "config", "time ms", "native ms", "mode")]
    for row in rows:
        config = json.loads(row["config"])
        text = " ".join(f"{k}={v}" for k, v in config.items()) if isinstance(config, dict) else json.dumps(config)
        table.append((row["kernel"], row["key"], text, _ms(row["time_ms"]), _ms(row["native_ms"]), row["mode"]))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip(), file=out)


def _ms(value):
    return "-" if value is None else f"{value:.4g}"


def export(path):
    document = _document()
    with open(path, "w") as f:
        if _is_yaml(path):
            import yaml

            yaml.safe_dump(document, f, sort_keys=False, default_flow_style=None)
        else:
            json.dump(document, f, indent=1)
    return len(document["entries"])


def load(path, force=False):
    """Rows from an export file, checked against this machine."""
    with open(path) as f:
        text = f.read()
    try:
        if _is_yaml(path):
            import yaml

            document = yaml.safe_load(text)
        else:
            document = json.loads(text)
    except ValueError as error:  # json and yaml errors both derive from it
        raise ExportFileError(f"{path} is not readable: {error}") from None
    rows = rows_of(document, path)
    here = device_identity()
    there = (document.get("vendor"), document.get("device"), document.get("triton"))
    if tuple(there) != tuple(here) and not force:
        raise ExportFileError(f"{path} was exported on {there}, this machine is {here}: configs may not fit "
                              "here (use --force to import anyway)")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m flag_gems.tuning", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("show", help="the cache file and its entries")
    command = commands.add_parser("export", help="write entries to FILE (.yaml/.yml or .json)")
    command.add_argument("file")
    command = commands.add_parser("import", help="store FILE's entries")
    command.add_argument("file")
    command.add_argument("--force", action="store_true", help="take an export of another device/Triton")
    command = commands.add_parser("clear", help="delete entries")
    command.add_argument("--kernel", help="only this kernel's entries")
    args = parser.parse_args(argv)

    if args.command == "show":
        show()
    elif args.command == "export":
        print(f"exported {export(args.file)} entries to {args.file}")
    elif args.command == "import":
        try:
            rows = load(args.file, args.force)
        except (OSError, ExportFileError) as error:
            print(f"python -m flag_gems.tuning import: error: {error}", file=sys.stderr)
            return 2
        print(f"imported {store().replace(rows)} entries into {cache_path()}")
    else:
        print(f"removed {store().clear(args.kernel)} entries from {cache_path()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
