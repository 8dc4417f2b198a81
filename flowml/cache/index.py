"""The cache index: which key produced which outputs, in ``.flowml/flowml.db`` (SQLite).

Tables: ``cache_entries`` (key -> manifest of components, output contents, metrics),
``node_state`` (the key each node had when it last ran or was restored, for explanations),
``stat_memo`` (the hashing memo) and ``code_imports`` (the imports of a Python file by its
digest). WAL mode with a busy timeout makes two ``flowml run`` processes safe together.

Why the standard library's sqlite3 here rather than SQLAlchemy: this module is on the
hot path of every no-op run, and importing SQLAlchemy alone costs 0.2-0.3 s on the
target machine, most of the 0.5 s budget for a 300-step no-op rerun. The schema is
plain SQL so the tracking store can map the same tables with SQLModel and manage them
with Alembic.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Iterable

from flowml.cache.hashing import Content, Signature
from flowml.errors import StoreError

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS cache_entries (
    key TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    node TEXT NOT NULL,
    manifest TEXT NOT NULL,
    outputs TEXT NOT NULL,
    metrics TEXT,
    duration_s REAL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS node_state (
    pipeline TEXT NOT NULL,
    node TEXT NOT NULL,
    key TEXT NOT NULL,
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


@dataclass
class Entry:
    """One successful execution: its key, components, outputs and metrics."""

    key: str
    node: str
    manifest: dict[str, Any]
    outputs: dict[str, Content]
    metrics: dict[str, float]
    duration_s: float | None = None


class CacheIndex:
    """The index tables of one project's database. Use from one thread."""

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
            raise StoreError(f"cannot open the cache index {db_path}: {exc}") from None

    def _create(self) -> None:
        with self.transaction():
            if self.db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self.db.execute("PRAGMA journal_mode = WAL")

    def transaction(self):
        """``with index.transaction():`` runs its statements in one write transaction."""
        return _Transaction(self.db)

    def close(self) -> None:
        self.db.close()

    # entries -------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        row = self.db.execute(
            "SELECT key, node, manifest, outputs, metrics, duration_s FROM cache_entries WHERE key = ?", (key,)
        ).fetchone()
        return _entry(row) if row else None

    def put(self, pipeline: str, entry: Entry) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO cache_entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (entry.key, pipeline, entry.node, _dumps(entry.manifest),
             _dumps({p: c.to_json() for p, c in entry.outputs.items()}),
             _dumps(entry.metrics), entry.duration_s, time.time()),
        )

    def output_digests(self, current_only: bool = False) -> set[str]:
        """Digest of every file that an entry's outputs hold (what the object store must keep);
        with ``current_only``, of the entries that are some node's latest key."""
        where = " WHERE key IN (SELECT key FROM node_state)" if current_only else ""
        digests: set[str] = set()
        for (outputs,) in self.db.execute("SELECT outputs FROM cache_entries" + where):
            for content in json.loads(outputs).values():
                files = content.get("files")
                digests.update(files.values() if files is not None else [content["digest"]])
        return digests

    def superseded_entries(self) -> int:
        """How many entries are no node's latest key."""
        return self.db.execute(
            "SELECT COUNT(*) FROM cache_entries WHERE key NOT IN (SELECT key FROM node_state)").fetchone()[0]

    def drop_superseded_entries(self) -> None:
        self.db.execute("DELETE FROM cache_entries WHERE key NOT IN (SELECT key FROM node_state)")

    def drop_stat_memo(self, paths: list[str]) -> None:
        self.db.executemany("DELETE FROM stat_memo WHERE path = ?", [(p,) for p in paths])

    # node state ----------------------------------------------------------------------

    def last_keys(self, pipeline: str) -> dict[str, str]:
        """The key each node of ``pipeline`` had when it last ran or was restored."""
        rows = self.db.execute("SELECT node, key FROM node_state WHERE pipeline = ?", (pipeline,))
        return dict(rows.fetchall())

    def set_last_keys(self, pipeline: str, keys: dict[str, str]) -> None:
        now = time.time()
        self.db.executemany("INSERT OR REPLACE INTO node_state VALUES (?, ?, ?, ?)",
                            [(pipeline, node, key, now) for node, key in keys.items()])

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
                            [(d, _dumps(m)) for d, m in imports.items()])


def _entry(row) -> Entry:
    key, node, manifest, outputs, metrics, duration = row
    return Entry(key, node, json.loads(manifest),
                 {p: Content.from_json(c) for p, c in json.loads(outputs).items()},
                 json.loads(metrics) if metrics else {}, duration)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, exc_type, exc, tb):
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        return False
