"""A real flowml server in a subprocess on 127.0.0.1, for tests over HTTP.

``start_server(tmp, store_uri=None, *args)`` starts one and returns a :class:`Server` (its
base URL, folders and process); ``server`` is a module-scoped one on SQLite. Stopped by
killing the process group, so uvicorn's workers go too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from servers import free_port, stop_group, wait_until_answers


@dataclass
class Server:
    url: str
    store_uri: str
    artifacts: Path
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        stop_group(self.process)


def start_server(folder: Path, store_uri: str | None = None, *args: str, env: dict | None = None,
                 timeout: float = 30) -> Server:
    """Start ``flowml server`` on a free port with its store and artifacts under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    store_uri = store_uri or f"sqlite:///{folder / 'server.db'}"
    artifacts = folder / "artifacts"
    log = folder / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flowml", "server", "--port", str(port), "--backend-store-uri", store_uri,
             "--artifacts-destination", str(artifacts), *args],
            cwd=folder, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **(env or {})})
    server = Server(f"http://127.0.0.1:{port}", store_uri, artifacts, proc, log)
    if not wait_until_answers(server.url + "/health", lambda: proc.poll() is None, timeout):
        server.stop()
        raise RuntimeError(f"flowml server did not start:\n{log.read_text()}")
    return server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = start_server(tmp_path_factory.mktemp("server"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def server_factory():
    """``start_server`` itself, for tests that start servers of their own (``import conftest``
    is ambiguous: every test folder has one)."""
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
