"""The persistent tuning cache: one SQLite file per (vendor, device, Triton version).

Several processes may tune and read at once. The file runs in WAL mode (readers
never block the writer), every statement waits on a busy timeout and is retried
when SQLite still answers "database is locked". A tuned result is stored with
``INSERT OR IGNORE`` and read back, so when two processes tune one key at once
the first stored result wins and both use it. A file that is not a database (or
cannot be read) is moved aside with one warning and rebuilt; if even that fails
the store keeps its entries in memory only. A file that exists but cannot be
written (a read-only image) is opened read-only: its entries serve, new ones stay
in memory. An entry its tuner rejects (``get``'s ``check``) is dropped, and
deleted where the file is writable. A file removed while in use is noticed on the
next ``put`` (or ``verify``) and made again with this process's entries. Nothing
here raises into a call; each store warns at most once.

Entries are keyed by kernel name, source hash (of the kernel's source and its
config space: an edited kernel never reads stale configs) and the tuning key,
all as text; the config is JSON.
"""

import json
import logging
import os
import re
import sqlite3
import threading
import time
from urllib.parse import quote

from .. import runtime

logger = logging.getLogger("flag_gems")

SCHEMA_VERSION = "1"
COLUMNS = ("kernel", "source", "key", "config", "time_ms", "native_ms", "mode", "tried", "created")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    kernel TEXT NOT NULL, source TEXT NOT NULL, key TEXT NOT NULL,
    config TEXT NOT NULL, time_ms REAL, native_ms REAL, mode TEXT NOT NULL,
    tried INTEGER NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (kernel, source, key));
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
BUSY_TIMEOUT_S = 30.0
_LOCKED_RETRIES = 50


def _is_locked(error):
    text = str(error).lower()
    return "locked" in text or "busy" in text


def file_name(vendor, device, triton_version):
    """``<vendor>_<device>_triton-<version>.sqlite`` with unsafe characters replaced."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{vendor}_{device}_triton-{triton_version}") + ".sqlite"


class Store:
    """Tuned configs in one SQLite file, with an in-process dict in front.

    ``get`` answers from the dict when it can, so a key read once costs no
    query again; ``put`` stores a result unless one exists and returns the
    stored one.
    """

    def __init__(self, path, unusable=None):
        self.path = path
        self.unusable = unusable  # why nothing is stored in the file, when nothing is
        self.problems = []  # what went wrong with the file while in use (pretune reports them)
        self.dropped = []  # (kernel, key, reason) of every entry dropped as invalid
        self.queries = 0  # statements sent to SQLite: the hot path must not add to this
        self._entries = {}  # (kernel, source, key) -> row dict, as stored
        self._written = []  # rows this process stored in the file: made again if it is removed
        self._dropped = set()
        self._lock = threading.RLock()
        self._connection = None
        self._identity = None  # (device, inode) of the file opened
        self._memory_only = False
        self.read_only = False
        self._warned = False

    # -- connection -------------------------------------------------------------------------

    def _open(self):
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                     check_same_thread=False)
        try:
            connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")  # WAL stays consistent; only a power cut may lose the last entries
            connection.executescript(_SCHEMA)
            connection.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            version = connection.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()[0]
            if version != SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"schema version {version}, expected {SCHEMA_VERSION}")
            connection.execute("SELECT count(*) FROM entries").fetchone()
        except BaseException:
            connection.close()
            raise
        return connection

    def _open_read_only(self):
        """The existing file, read-only (``immutable`` when even WAL's shared memory file
        cannot be made beside it)."""
        error = None
        for mode in ("mode=ro", "immutable=1"):
            try:
                connection = sqlite3.connect(f"file:{quote(os.path.abspath(self.path))}?{mode}", uri=True,
                                             timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            except sqlite3.Error as failed:
                error = failed
                continue
            try:
                connection.execute("SELECT count(*) FROM entries").fetchone()
                return connection
            except sqlite3.Error as failed:
                connection.close()
                error = failed
        raise error

    def _connect(self):
        if self._connection is not None or self._memory_only:
            return self._connection
        try:
            if self.unusable:
                raise OSError(self.unusable)
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            try:
                self._connection = self._retry(self._open)
            except sqlite3.OperationalError as error:  # cannot write, or locked for too long
                if _is_locked(error) or not os.path.isfile(self.path):
                    raise
                self._connection = self._open_read_only()
                self.read_only = True
                self._warn(f"flag_gems: tuning cache {self.path} cannot be written ({error}); its entries are "
                           "used read-only, new tuned configs are kept in memory only")
            except sqlite3.DatabaseError as error:  # not a database, or a malformed one
                self._move_aside(error)
                self._connection = self._retry(self._open)
            # A damaged text cell must not stop the file: it reads as text that no check accepts.
            self._connection.text_factory = lambda data: data.decode("utf-8", "replace")
            self._identity = _identity(self.path)
        except (sqlite3.Error, OSError) as error:
            if self.unusable:  # the cache folder itself cannot be made: one warning for all its users
                runtime.warn_unusable_cache(self.unusable)
            else:
                self.unusable = str(error)
                self._warn(f"flag_gems: tuning cache {self.path} unusable ({self.unusable}); "
                           "tuned configs are kept in memory only")
            self._memory_only = True
        return self._connection

    def _retry(self, action):
        for attempt in range(_LOCKED_RETRIES):
            try:
                return action()
            except sqlite3.OperationalError as error:
                if not _is_locked(error) or attempt == _LOCKED_RETRIES - 1:
                    raise
                time.sleep(min(0.01 * 2**attempt, 0.5))

    def _warn(self, message):
        if not self._warned:
            self._warned = True
            logger.warning(message)

    def _move_aside(self, error):
        """Rename a corrupt file to ``<file>.corrupt-<time>-<pid>`` so a fresh one is built.
        Under a lock file, and only if the file still fails to open: another process may
        have rebuilt it already."""
        with _FileLock(self.path + ".lock"):
            try:
                self._open().close()
                return  # rebuilt by another process meanwhile
            except sqlite3.OperationalError:
                return  # busy: in use, so not the file that failed
            except sqlite3.DatabaseError:
                pass
            aside = f"{self.path}.corrupt-{int(time.time())}-{os.getpid()}"
            try:
                os.replace(self.path, aside)
            except OSError:
                aside = None
            for suffix in ("-wal", "-shm"):  # they belong to the corrupt file
                _remove(self.path + suffix)
        where = f"moved to {aside}" if aside else "left in place"
        self._warn(f"flag_gems: tuning cache {self.path} is unreadable ({error}); {where}, starting a new one")

    def _query(self, sql, parameters=(), fetch=True):
        """One statement; None when the store has no usable file (memory only)."""
        with self._lock:
            for attempt in range(2):
                connection = self._connect()
                if connection is None:
                    return None
                self.queries += 1
                try:
                    cursor = self._retry(lambda: connection.execute(sql, parameters))
                    return cursor.fetchall() if fetch else cursor.rowcount
                except sqlite3.Error as error:
                    connection.close()
                    self._connection = None
                    if isinstance(error, sqlite3.OperationalError) or attempt == 1:
                        self._warn(f"flag_gems: tuning cache {self.path} failed ({error}); "
                                   "tuned configs are kept in memory only")
                        self._memory_only = True
                        return None
                    self._move_aside(error)  # the file went bad under us: rebuild once

    # -- entries ----------------------------------------------------------------------------

    def get(self, kernel, source, key, check=None):
        """The stored row for this key (a dict of COLUMNS), or None. ``check(config)``
        raises ValueError for a config the kernel cannot run: that entry is dropped."""
        ident = (kernel, source, key)
        row = self._entries.get(ident)
        if row is None and ident not in self._dropped:
            found = self._query(f"SELECT {', '.join(COLUMNS)} FROM entries WHERE kernel = ? AND source = ? "
                                "AND key = ?", ident)
            if found:
                row = dict(zip(COLUMNS, found[0]))
                try:
                    if check is not None:
                        check(row["config"])
                except ValueError as error:
                    self.drop(row, error)
                    return None
                self._entries[ident] = row
        return row

    def drop(self, row, reason):
        """Forget an invalid entry (and delete it where the file is writable), with one warning."""
        ident = (row["kernel"], row["source"], row["key"])
        with self._lock:
            self._entries.pop(ident, None)
            if ident in self._dropped:
                return
            self._dropped.add(ident)
            self.dropped.append((row["kernel"], row["key"], str(reason)))
            if not self.read_only:
                self._query("DELETE FROM entries WHERE kernel = ? AND source = ? AND key = ?", ident, fetch=False)
        self._warn(f"flag_gems: tuning cache {self.path}: dropped the invalid {row['kernel']} entry for "
                   f"{row['key']} ({reason}); such keys run the heuristic or are tuned again")

    def put(self, row, replace_unless_mode=None):
        """Store ``row`` unless an entry exists (``INSERT OR IGNORE``), then return the
        stored entry, which is another process's when it stored first. With
        ``replace_unless_mode``, an existing entry of another mode is replaced."""
        ident = (row["kernel"], row["source"], row["key"])
        self._dropped.discard(ident)
        values = tuple(row[c] for c in COLUMNS)
        placeholders = ", ".join("?" * len(COLUMNS))
        self.verify()
        if self.read_only:
            done = None
        elif replace_unless_mode is None:
            done = self._query(f"INSERT OR IGNORE INTO entries VALUES ({placeholders})", values, fetch=False)
        else:
            updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[3:])
            done = self._query(f"INSERT INTO entries VALUES ({placeholders}) ON CONFLICT (kernel, source, key) "
                               f"DO UPDATE SET {updates} WHERE entries.mode != ?", values + (replace_unless_mode,),
                               fetch=False)
        if done is None:  # memory only
            return self._entries.setdefault(ident, dict(row))
        self._written.append(dict(row))
        self._entries.pop(ident, None)
        return self.get(*ident) or dict(row)

    def verify(self):
        """None while the file opened is still in place; if it was removed or replaced, a
        new one is made with this process's entries and the problem (also kept in
        ``problems``) is returned."""
        with self._lock:
            if self._connection is None or self.read_only or _identity(self.path) == self._identity:
                return None
            self._connection.close()
            self._connection = None
            if not os.path.exists(self.path):
                for suffix in ("-wal", "-shm"):  # they belong to the removed file
                    _remove(self.path + suffix)
            placeholders = ", ".join("?" * len(COLUMNS))
            for row in self._written:
                self._query(f"INSERT OR IGNORE INTO entries VALUES ({placeholders})",
                            tuple(row[c] for c in COLUMNS), fetch=False)
            problem = f"tuning cache {self.path} was removed or replaced while in use; "
            if self._memory_only:
                problem += f"it cannot be made again ({self.unusable}): tuned configs are in memory only"
            else:
                problem += f"made it again with this process's {len(self._written)} stored entries"
            self.problems.append(problem)
            self._warn(f"flag_gems: {problem}")
            return problem

    @property
    def persistent(self):
        """Whether what this store is given reaches the file."""
        self._connect()
        return not (self._memory_only or self.read_only)

    def rows(self, kernel=None):
        """Every stored entry (optionally of one kernel), as dicts."""
        where, parameters = ("WHERE kernel = ?", (kernel,)) if kernel else ("", ())
        found = self._query(f"SELECT {', '.join(COLUMNS)} FROM entries {where} ORDER BY kernel, key, source",
                            parameters)
        rows = {(r["kernel"], r["source"], r["key"]): r for r in self._entries.values()
                if kernel in (None, r["kernel"])}  # memory only, or kept here beside a read-only file
        rows.update({values[:3]: dict(zip(COLUMNS, values)) for values in found or ()
                     if values[:3] not in self._dropped})
        return sorted(rows.values(), key=lambda r: (r["kernel"], r["key"], r["source"]))

    def replace(self, rows):
        """Store ``rows`` over whatever is there (import); returns how many."""
        placeholders = ", ".join("?" * len(COLUMNS))
        with self._lock:
            for row in rows:
                self._query(f"INSERT OR REPLACE INTO entries VALUES ({placeholders})",
                            tuple(row[c] for c in COLUMNS), fetch=False)
                self._entries.pop((row["kernel"], row["source"], row["key"]), None)
        return len(rows)

    def clear(self, kernel=None):
        """Delete every entry (optionally of one kernel); returns how many."""
        where, parameters = ("WHERE kernel = ?", (kernel,)) if kernel else ("", ())
        with self._lock:
            removed = self._query(f"DELETE FROM entries {where}", parameters, fetch=False)
            if kernel:
                self._entries = {k: v for k, v in self._entries.items() if k[0] != kernel}
            else:
                self._entries.clear()
        return removed or 0

    def forget(self):
        """Drop the in-process copies (the file stays)."""
        with self._lock:
            self._entries.clear()

    def close(self):
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


def _identity(path):
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def encode(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class _FileLock:
    """An exclusive advisory lock on a file (fcntl where it exists, else none)."""

    def __init__(self, path):
        self.path = path
        self._file = None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:
            return self
        try:
            self._file = open(self.path, "a")
            fcntl.flock(self._file, fcntl.LOCK_EX)
        except OSError:  # a read-only folder: go on unlocked, the rename will fail alike
            self._file = None
        return self

    def __exit__(self, *exc):
        if self._file is not None:
            self._file.close()  # closing releases the lock
        return False
