"""Fixtures for the registry tests: the same test against SQLite and PostgreSQL (``store_uri``
and ``store``, the tracking store holding the registry, come from tests/conftest.py), and servers.

SQLite gets a new database file per test; PostgreSQL one database per pytest process, shared
by the tests, each of which works on registered models with names of its own (``unique``).
The server fixtures are those of tests/server/conftest.py, loaded by path (``import conftest``
would be ambiguous: every test folder has one).
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("registry_server_fixtures",
                                               Path(__file__).parent.parent / "server" / "conftest.py")
server_fixtures = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)  # dataclasses look it up
_spec.loader.exec_module(server_fixtures)
backend = server_fixtures.backend
server_factory = server_fixtures.server_factory


def unique(prefix: str = "model") -> str:
    """A name no other test uses (the PostgreSQL database is shared)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def registry(store):
    from flowml.registry.sql import SqlRegistryStore

    return SqlRegistryStore(store.engine)


@pytest.fixture(scope="session")
def new_name():
    """``unique`` itself, for tests that need names of their own (``from conftest import`` is ambiguous)."""
    return unique


@pytest.fixture
def name(registry) -> str:
    """A registered model of this test's own, with no versions yet."""
    created = unique()
    registry.create_registered_model(created)
    return created
