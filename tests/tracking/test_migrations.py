"""The tracking schema's migrations: an empty database is brought to the head revision with
exactly the tables of ``tables.metadata``, a newer one is refused, and the pipelines-era
``.flowml/flowml.db`` keeps its cache entries."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest
from sqlalchemy import inspect, text

from flowml.errors import StoreError
from flowml.tracking.sql import database, tables

MIGRATIONS = os.path.join(os.path.dirname(database.__file__), "migrations")
TRACKING_TABLES = {"experiments", "experiment_tags", "runs", "params", "tags", "metrics", "latest_metrics",
                   "cache_entries", "logged_models", "logged_model_tags", "logged_model_params", "access_tokens",
                   "datasets", "inputs", "input_tags",
                   "registered_models", "registered_model_tags", "registered_model_aliases", "model_versions",
                   "model_version_tags", "run_models",
                   "alembic_version"}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path) -> str:
    """A database with nothing in it."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return request.getfixturevalue("pg_database")


def _alembic_config(connection=None):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _schema_diffs(engine) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(context, tables.metadata)


def _version(engine) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()


def test_empty_database_is_brought_to_head(empty_url):
    engine = database.make_engine(empty_url)
    try:
        assert _version(engine) == database.HEAD
        assert set(inspect(engine).get_table_names()) == TRACKING_TABLES
        assert _schema_diffs(engine) == []
        indexes = {i["name"] for name in ("runs", "metrics", "latest_metrics", "params", "tags")
                   for i in inspect(engine).get_indexes(name)}
        assert {"ix_runs_experiment_start", "ix_runs_status", "ix_metrics_history", "ix_latest_metrics_key_value",
                "ix_params_key", "ix_tags_key"} <= indexes
    finally:
        engine.dispose()
    engine = database.make_engine(empty_url)  # a second opening finds it at head and changes nothing
    try:
        assert _version(engine) == database.HEAD and _schema_diffs(engine) == []
    finally:
        engine.dispose()


def test_sqlite_settings(tmp_path):
    engine = database.make_engine(f"sqlite:///{tmp_path / 'sub/dir/x.db'}")  # folders are made
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    finally:
        engine.dispose()


def test_revisions_match_the_alembic_scripts():
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config())
    in_order = [s.revision for s in script.walk_revisions()][::-1]  # walk_revisions goes head to base
    assert tuple(in_order) == database.REVISIONS
    assert script.get_current_head() == database.HEAD == database.REVISIONS[-1]
    assert len(script.get_heads()) == 1


def test_downgrade_to_base_and_up_again(empty_url):
    from alembic import command

    engine = database.make_engine(empty_url)
    try:
        with engine.begin() as conn:
            command.downgrade(_alembic_config(conn), "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 0
        engine.dispose()
        engine = database.make_engine(empty_url)
        assert _version(engine) == database.HEAD and _schema_diffs(engine) == []
    finally:
        engine.dispose()


def test_a_newer_database_is_refused(empty_url, tmp_path):
    engine = database.make_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    engine.dispose()
    with pytest.raises(StoreError) as info:
        database.make_engine(empty_url)
    message = str(info.value)
    assert "ffff" in message and "newer" in message and "upgrade flowml" in message
    from flowml.tracking.sql.store import SqlStore

    with pytest.raises(StoreError, match="newer"):
        SqlStore(empty_url, str(tmp_path / "artifacts"))
    from sqlalchemy import create_engine

    raw = create_engine(empty_url)
    try:
        assert _version(raw) == "ffff"  # left as it was
    finally:
        raw.dispose()


def test_an_unreachable_server_is_a_store_error_without_the_password():
    with pytest.raises(StoreError, match="cannot open tracking store") as info:
        database.make_engine("postgresql+psycopg://ann:hunter2@127.0.0.1:1/nothing?connect_timeout=5")
    assert "hunter2" not in str(info.value) and "ann:***@127.0.0.1:1" in str(info.value)


LEGACY_SCHEMA = """
CREATE TABLE cache_entries (
    key TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    node TEXT NOT NULL,
    manifest TEXT NOT NULL,
    outputs TEXT NOT NULL,
    metrics TEXT,
    duration_s REAL,
    created_at REAL NOT NULL
);
CREATE TABLE node_state (
    pipeline TEXT NOT NULL,
    node TEXT NOT NULL,
    key TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (pipeline, node)
) WITHOUT ROWID;
CREATE TABLE stat_memo (
    path TEXT PRIMARY KEY,
    inode INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    digest TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE code_imports (
    digest TEXT PRIMARY KEY,
    modules TEXT NOT NULL
) WITHOUT ROWID;
PRAGMA user_version = 1;
"""


def test_a_pipelines_era_database_keeps_its_cache_entries(tmp_path):
    path = tmp_path / ".flowml/flowml.db"
    path.parent.mkdir()
    db = sqlite3.connect(path)
    db.executescript(LEGACY_SCHEMA)
    db.executemany("INSERT INTO cache_entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [
        ("k1", "pipe.yaml", "train", '{"cmd": "x"}', '{"model.pkl": "abc"}', '{"acc": 0.9}', 1.25, 1700000000.5),
        ("k2", "pipe.yaml", "prep", "{}", "{}", None, None, 1700000001.0),
    ])
    db.execute("INSERT INTO node_state VALUES ('pipe.yaml', 'train', 'k1', 1.0)")
    db.execute("INSERT INTO stat_memo VALUES ('a', 1, 2, 3, 4, 'd')")
    db.execute("INSERT INTO code_imports VALUES ('d', '[]')")
    db.commit()
    db.close()

    from flowml.tracking.entities import CacheRecord
    from flowml.tracking.sql.store import SqlStore

    store = SqlStore(f"sqlite:///{path}", str(tmp_path / ".flowml/artifacts"))
    try:
        assert store.get_cache_entry("k1") == CacheRecord("k1", "pipe.yaml", "train", '{"cmd": "x"}',
                                                          '{"model.pkl": "abc"}', '{"acc": 0.9}', 1.25, None)
        assert store.get_cache_entry("k2") == CacheRecord("k2", "pipe.yaml", "prep", "{}", "{}", None, None, None)
        with store.engine.connect() as conn:
            created = dict(conn.execute(text("SELECT key, created_at FROM cache_entries")).all())
        assert created == {"k1": 1700000000500, "k2": 1700000001000}
        assert set(inspect(store.engine).get_table_names()) == TRACKING_TABLES
        assert _schema_diffs(store.engine) == []
        assert _version(store.engine) == database.HEAD
        assert store.get_experiment("0").name == "Default"
        exp_id = store.create_experiment("after")
        assert store.create_run(exp_id).info.status == "RUNNING"
    finally:
        store.close()


def test_opening_a_current_database_does_not_import_alembic(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    database.make_engine(url).dispose()
    code = ("import sys; from flowml.tracking.sql.store import SqlStore; "
            f"s = SqlStore({url!r}, 'a'); s.get_experiment('0'); print('alembic' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
