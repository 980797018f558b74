"""Tuned entries that ship inside the package, so that a fresh install starts tuned.

``shipped/*.json`` are documents of ``python -m flag_gems.tuning export`` made on one
device (pretune over common shapes, then export). The documents of this process's vendor
and device serve keys the local cache does not hold, whatever Triton version made them:
a tile that won there still runs here. An entry of an edited kernel (another source hash)
never matches, as in the local cache.
"""

import json
import os
from functools import lru_cache

from . import database

FORMAT = 1
FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shipped")


class ExportFileError(ValueError):
    """The file is not an export this machine can take."""


def rows_of(document, where):
    """The cache rows of an export document; ExportFileError for a malformed one."""
    if not isinstance(document, dict) or document.get("flag_gems_tuning") != FORMAT:
        raise ExportFileError(f"{where} is not a flag_gems tuning export (format {FORMAT})")
    rows = []
    for number, entry in enumerate(document.get("entries") or [], 1):
        try:
            row = {c: entry.get(c) for c in database.COLUMNS}
            row["key"] = database.encode(entry["key"])
            row["config"] = database.encode(entry["config"])
            if not isinstance(row["kernel"], str) or not isinstance(row["source"], str):
                raise KeyError("kernel/source")
            row["mode"] = row["mode"] or "full"
            row["tried"] = int(row["tried"] or 0)
            row["created"] = float(row["created"] or 0)
        except (KeyError, TypeError, ValueError) as error:
            raise ExportFileError(f"{where}: entry {number} is malformed ({error})") from None
        rows.append(row)
    return rows


def documents():
    """(path, document) of every shipped file, in name order."""
    if not os.path.isdir(FOLDER):
        return []
    found = []
    for name in sorted(os.listdir(FOLDER)):
        if name.endswith(".json"):
            path = os.path.join(FOLDER, name)
            with open(path) as f:
                found.append((path, json.load(f)))
    return found


@lru_cache(maxsize=None)
def _entries(vendor, device):
    entries = {}
    for path, document in documents():
        if (document.get("vendor"), document.get("device")) == (vendor, device):
            for row in rows_of(document, path):
                entries[(row["kernel"], row["source"], row["key"])] = row
    return entries


def get(identity, kernel, source, key, check):
    """The shipped row for this key on ``identity``'s (vendor, device), or None; one whose
    config ``check`` rejects is skipped."""
    row = _entries(*identity[:2]).get((kernel, source, key))
    if row is None:
        return None
    try:
        check(row["config"])
    except ValueError:
        return None
    return row
