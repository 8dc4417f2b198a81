"""What this workspace holds, in ``.flowml/state.db`` (SQLite, standard library).

Tables: ``node_state`` (the entry each node's outputs on disk came from: its key,
components, output contents and metrics), ``stat_memo`` (the hashing memo) and
``code_imports`` (the imports of a Python file by its digest). These describe files of
this checkout (inodes, mtimes), so they stay local whatever tracking store is used; the
shared index of cache entries lives in the tracking store (:mod:`flowml.cache.index`).

Why the standard library's sqlite3 here rather than SQLAlchemy: this is all a no-op rerun
reads, and importing SQLAlchemy alone costs 0.2-0.3 s on the target machine, most of the
0.5 s budget for a 300-step no-op rerun. WAL mode with a busy timeout makes two
``flowml run`` processes safe together.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from typing import Iterable

from flowml.cache.hashing import Signature
from flowml.cache.index import Entry, canonical_json
from flowml.errors import StoreError

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS node_state (
    pipeline TEXT NOT NULL,
    node TEXT NOT NULL,
    key TEXT NOT NULL,
    entry TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (pipeline, node)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stat_memo (
    path TEXT PRIMARY KEY,
    inode INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    digest TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS code_imports (
    digest TEXT PRIMARY KEY,
    modules TEXT NOT NULL
) WITHOUT ROWID;
"""


class WorkspaceState:
    """The workspace tables of one project. Use from one thread."""

    def __init__(self, db_path: str) -> None:
        os.makedirs(os.path.dirname(db_path), exist_ok=True)
        try:
            self.db = sqlite3.connect(db_path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA busy_timeout = 30000")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{db_path} was written by a newer flowml (schema {version}, "
                                 f"this one knows {SCHEMA_VERSION}); upgrade flowml")
            if version < SCHEMA_VERSION:
                self._create()
            self.db.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the workspace state {db_path}: {exc}") from None

    def _create(self) -> None:
        with self.transaction():
            if self.db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self.db.execute("PRAGMA journal_mode = WAL")

    def transaction(self):
        """``with state.transaction():`` runs its statements in one write transaction."""
        return _Transaction(self.db)

    def close(self) -> None:
        self.db.close()

    def drop_stat_memo(self, paths: list[str]) -> None:
        self.db.executemany("DELETE FROM stat_memo WHERE path = ?", [(p,) for p in paths])

    # node state ----------------------------------------------------------------------

    def last_entries(self, pipeline: str) -> dict[str, Entry]:
        """The entry each node of ``pipeline`` had when it last ran or was restored here."""
        rows = self.db.execute("SELECT entry FROM node_state WHERE pipeline = ?", (pipeline,))
        entries = (Entry.from_json(json.loads(text)) for (text,) in rows)
        return {e.node: e for e in entries}

    def set_last_entries(self, pipeline: str, entries: Iterable[Entry]) -> None:
        now = time.time()
        self.db.executemany("INSERT OR REPLACE INTO node_state VALUES (?, ?, ?, ?, ?)",
                            [(pipeline, e.node, e.key, canonical_json(e.to_json()), now) for e in entries])

    def all_entries(self) -> list[Entry]:
        return [Entry.from_json(json.loads(text)) for (text,) in self.db.execute("SELECT entry FROM node_state")]

    def current_keys(self) -> set[str]:
        """Every key that some node of some pipeline in this workspace last had."""
        return {k for (k,) in self.db.execute("SELECT key FROM node_state")}

    # memos ---------------------------------------------------------------------------

    def load_stat_memo(self) -> dict[str, tuple[Signature, str]]:
        rows = self.db.execute("SELECT path, inode, size, mtime_ns, ctime_ns, digest FROM stat_memo")
        return {r[0]: ((r[1], r[2], r[3], r[4]), r[5]) for r in rows}

    def save_stat_memo(self, rows: dict[str, tuple[Signature, str]]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO stat_memo VALUES (?, ?, ?, ?, ?, ?)",
                            [(p, *sig, d) for p, (sig, d) in rows.items()])

    def code_imports(self, digests: Iterable[str]) -> dict[str, list]:
        digests = list(digests)
        if not digests:
            return {}
        marks = ",".join("?" * len(digests))
        rows = self.db.execute(f"SELECT digest, modules FROM code_imports WHERE digest IN ({marks})", digests)
        return {d: json.loads(m) for d, m in rows}

    def save_code_imports(self, imports: dict[str, list]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO code_imports VALUES (?, ?)",
                            [(d, canonical_json(m)) for d, m in imports.items()])


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, exc_type, exc, tb):
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        return False
