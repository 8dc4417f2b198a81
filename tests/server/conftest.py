"""Servers for the tests over HTTP: ``server_factory`` (tests/servers.py's ``start_server``) and
``backend``, a server on SQLite or on PostgreSQL; ``server``, a module-scoped one on SQLite, is
in tests/conftest.py (the Dask tests use it too)."""

from __future__ import annotations

import pytest

from tests.servers import start_server


@pytest.fixture(scope="session")
def server_factory():
    """``start_server`` itself, for tests that start servers of their own."""
    return start_server


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request, tmp_path_factory, server_factory):
    """A server on SQLite, or on a PostgreSQL database of the module's own."""
    folder = tmp_path_factory.mktemp(f"server-{request.param}")
    if request.param == "sqlite":
        running = server_factory(folder)
        yield running
        running.stop()
        return
    import pg  # tests/pg.py, on sys.path once postgres_url is set up

    with pg.fresh_database(request.getfixturevalue("postgres_url"), "server") as url:
        running = server_factory(folder, url)
        yield running
        running.stop()
