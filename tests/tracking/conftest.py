"""Fixtures for the tracking store tests: the same test against SQLite and PostgreSQL.

SQLite gets a new database file per test. PostgreSQL gets one database per pytest process
(migrated once, by the first store that opens it), shared by the tests: each test works in
experiments it creates under unique names and looks only at those, so tests stay apart
without paying for a CREATE DATABASE and a migration each. Tests that need an empty
database (migrations) use ``pg_database`` instead.
"""

from __future__ import annotations

import uuid

import pytest


def unique(prefix: str = "exp") -> str:
    """A name no other test uses, for experiments in the shared PostgreSQL database."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def shared_pg_url(postgres_url):
    """URL of one database for this pytest process's store tests, dropped at the end."""
    import pg

    with pg.fresh_database(postgres_url, "shared") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_uri(request, tmp_path) -> str:
    """A tracking URI: a new SQLite file, or the process's shared PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'flowml.db'}"
    return request.getfixturevalue("shared_pg_url")


@pytest.fixture
def store(store_uri, tmp_path):
    """An open :class:`SqlStore` on ``store_uri``, with this test's artifact root."""
    from flowml.tracking.sql.store import SqlStore

    opened = SqlStore(store_uri, str(tmp_path / "artifacts"))
    yield opened
    opened.close()


@pytest.fixture
def exp_id(store) -> str:
    """A new experiment of this test's own."""
    return store.create_experiment(unique())


@pytest.fixture
def client(store_uri, tmp_path, monkeypatch):
    """A :class:`FlowmlClient` on ``store_uri`` (through ``get_store``), artifacts under tmp_path;
    its store is closed and forgotten afterwards."""
    from flowml.tracking import stores
    from flowml.tracking.client import FlowmlClient

    monkeypatch.setenv("FLOWML_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    monkeypatch.setattr(stores, "_stores", {})
    yield FlowmlClient(store_uri)
    for opened in stores._stores.values():
        opened.close()
