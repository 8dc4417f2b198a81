"""Shared fixtures: a project folder with a pipeline.yaml, and the CLI run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self):
        return json.loads(self.out)


class Project:
    """A throwaway project: write files, run ``flowml`` in it, read what it wrote."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def pipeline(self, text: str) -> Path:
        return self.write("pipeline.yaml", text)

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text()

    def flowml(self, *args: str, timeout: float = 120, env: dict | None = None) -> Result:
        """Run ``python -m flowml ARGS`` in the project folder (no terminal, so plain output)."""
        proc = subprocess.run([sys.executable, "-m", "flowml", *args], cwd=self.root, capture_output=True,
                              text=True, timeout=timeout, env={**os.environ, "CI": "1", **(env or {})})
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def start(self, *args: str, stdout=subprocess.DEVNULL) -> subprocess.Popen:
        """``python -m flowml ARGS`` in the background, for tests that act while it runs."""
        return subprocess.Popen([sys.executable, "-m", "flowml", *args], cwd=self.root, stdout=stdout,
                                stderr=subprocess.DEVNULL, text=True)

    def wait_for(self, rel: str, timeout: float = 20) -> None:
        """Wait until the project holds ``rel`` (a marker a step writes when it has started)."""
        deadline = time.monotonic() + timeout
        while not (self.root / rel).exists():
            assert time.monotonic() < deadline, f"{rel} did not appear within {timeout} s"
            time.sleep(0.05)

    def run_json(self, *args: str, **kw) -> dict:
        """``flowml run --json ARGS``; returns {node name: step record} plus the whole summary."""
        res = self.flowml("run", "--json", *args, **kw)
        assert res.out, f"no JSON on stdout (exit {res.code}): {res.err}"
        summary = res.json
        summary["by_name"] = {s["name"]: s for s in summary["steps"]}
        summary["code"] = res.code
        summary["stderr"] = res.err
        return summary


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


@pytest.fixture(scope="session")
def project_class() -> type[Project]:
    """The Project class, for module-scoped fixtures that make many projects at once."""
    return Project


# --- PostgreSQL (tracking store tests): one real server per pytest process, one fresh database per test.

def _postgres_required() -> bool:
    """CI (and whoever sets FLOWML_REQUIRE_POSTGRES) must not pass by skipping the store tests."""
    return any(os.environ.get(v, "").lower() not in ("", "0", "false") for v in ("CI", "FLOWML_REQUIRE_POSTGRES"))


@pytest.fixture(scope="session")
def postgres_url():
    """SQLAlchemy URL of the ``flowml`` database on a throwaway cluster (tests/pg.py).

    Started on first use only, so runs without store tests pay nothing; under xdist each
    worker starts its own. The cluster lives in the system temp folder, not tmp_path_factory's:
    as root the server runs as user postgres, which cannot enter pytest's 0700 folders.
    """
    here = str(Path(__file__).parent)
    if here not in sys.path:  # already there under pytest's default import mode, not under importlib's
        sys.path.insert(0, here)
    import pg  # tests/pg.py

    try:
        url, stop = pg.start_postgres()
    except pg.PostgresNotFound as exc:
        missing = str(exc)
    else:
        missing = None
    if missing and _postgres_required():
        pytest.fail(f"{missing} (required because CI or FLOWML_REQUIRE_POSTGRES is set)", pytrace=False)
    if missing:
        pytest.skip(missing)
    yield url
    stop()


@pytest.fixture
def pg_database(postgres_url):
    """URL of a new, empty database for this test alone, dropped afterwards (even if still connected)."""
    import pg

    with pg.fresh_database(postgres_url) as url:
        yield url


@pytest.fixture(scope="session")
def shared_pg_url(postgres_url):
    """URL of one database for this pytest process's store tests, dropped at the end. The tests
    sharing it work on experiments and registered models with names of their own."""
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


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real ``flowml server`` on SQLite for the module's tests over HTTP (tests/servers.py)."""
    from tests.servers import start_server

    running = start_server(tmp_path_factory.mktemp("server"))
    yield running
    running.stop()
