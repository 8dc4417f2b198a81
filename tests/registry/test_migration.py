"""A tracking database made before the registry (revision 0004) gains the registry's tables
when flowml opens it, keeping what it held; and the registry's tables go on downgrade."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, inspect, text

from flowml.tracking.sql import database

REGISTRY_TABLES = {"registered_models", "registered_model_tags", "registered_model_aliases", "model_versions",
                   "model_version_tags"}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    return request.getfixturevalue("pg_database")


def _migrate(url: str, revision: str, down: bool = False) -> None:
    from alembic import command
    from alembic.config import Config

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            config = Config()
            config.set_main_option("script_location", os.path.join(os.path.dirname(database.__file__), "migrations"))
            config.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(config, revision)
    finally:
        engine.dispose()


def test_a_0004_database_migrates_and_keeps_its_runs(empty_url, tmp_path):
    _migrate(empty_url, "0004")
    raw = create_engine(empty_url)
    with raw.begin() as conn:
        conn.execute(text("INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, "
                          "creation_time, last_update_time) VALUES (7, 'old', '/a/7', 'active', 1, 1)"))
    assert not REGISTRY_TABLES & set(inspect(raw).get_table_names())
    raw.dispose()

    from flowml.registry.sql import SqlRegistryStore
    from flowml.tracking.sql.store import SqlStore

    store = SqlStore(empty_url, str(tmp_path / "artifacts"))
    try:
        assert REGISTRY_TABLES <= set(inspect(store.engine).get_table_names())
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == database.HEAD
        assert store.get_experiment("7").name == "old"
        registry = SqlRegistryStore(store.engine)
        registry.create_registered_model("wine")
        assert registry.create_model_version("wine", "/m").version == 1
    finally:
        store.close()
    _migrate(empty_url, "0004", down=True)
    raw = create_engine(empty_url)
    try:
        assert not REGISTRY_TABLES & set(inspect(raw).get_table_names())
        assert "experiments" in inspect(raw).get_table_names()
    finally:
        raw.dispose()
