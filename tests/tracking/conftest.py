"""Fixtures for the tracking store tests: the same test against SQLite and PostgreSQL
(``store_uri`` and ``store`` come from tests/conftest.py).

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
