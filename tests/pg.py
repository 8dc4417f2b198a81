"""Throwaway PostgreSQL clusters for tests (shared/RECIPES.md, "PostgreSQL 15").

Why a real server and not SQLite: the tracking store has to behave as it will against
the PostgreSQL it is deployed on (types, locking, DDL), and only the server shows that.
A cluster is private to one pytest process (xdist: one per worker), listens on a free
port on 127.0.0.1 only, trusts every local login and runs with fsync=off: it is fast,
and its data is thrown away.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Callable

from servers import free_port


class PostgresNotFound(RuntimeError):
    """No PostgreSQL server binaries here (the fixtures skip or fail on this, see conftest)."""


def bindir() -> Path:
    """The newest Debian ``/usr/lib/postgresql/N/bin``, else wherever ``initdb`` is on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: [int(n) for n in re.findall(r"\d+", p)])
    initdb = found[-1] if found else shutil.which("initdb")
    if not initdb:
        raise PostgresNotFound("PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb "
                               "and no initdb on PATH): `apt-get install postgresql`, as .ci/run does")
    return Path(initdb).parent


def start_postgres(tmpdir: str | os.PathLike | None = None) -> tuple[str, Callable[[], None]]:
    """Start a cluster with database ``flowml``; returns (SQLAlchemy URL, stop).

    The cluster lives in a new folder made under ``tmpdir`` (default: the system temp
    folder), which ``stop`` removes. As root, the server runs as user ``postgres``
    (initdb refuses root), so that folder is chowned to it and ``tmpdir`` must be
    reachable by it: pytest's ``tmp_path`` folders are not (their parents are 0700
    root), hence the default. A short path also keeps the Unix socket (``-k``) under
    the 107-byte limit.
    """
    pgbin = bindir()
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = Path(tempfile.mkdtemp(prefix="flowml-pg-", dir=tmpdir))
    if as_pg:
        shutil.chown(data, "postgres", "postgres")
    log = data / "server.log"

    def run(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run([*as_pg, str(pgbin / cmd[0]), *cmd[1:]], capture_output=True, text=True,
                              timeout=120)

    def stop() -> None:
        """Immediate stop (nothing to keep, so no checkpoint), then remove the cluster."""
        run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(data, ignore_errors=True)

    try:
        proc = run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                   "--locale=C.UTF-8", "--no-sync")
        if proc.returncode:
            raise RuntimeError(f"initdb failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
        for _attempt in range(3):
            port = free_port()  # a clash before the server binds it is retried
            log.unlink(missing_ok=True)
            proc = run("pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "30", "-o",
                       f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no server log)"
            if proc.returncode == 0 or "could not bind" not in tail:
                break
        if proc.returncode:
            raise RuntimeError(f"PostgreSQL did not start (pg_ctl exit {proc.returncode}): "
                               f"{proc.stdout}{proc.stderr}\n--- {log} (tail) ---\n{tail}")
        proc = run("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "flowml")
        if proc.returncode:
            raise RuntimeError(f"createdb flowml failed (exit {proc.returncode}): {proc.stderr}")
    except BaseException:
        stop()
        raise
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/flowml", stop


@contextlib.contextmanager
def fresh_database(server_url: str, prefix: str = "test"):
    """A new, empty database on the server at ``server_url``; yields its URL and drops it
    afterwards, even while clients are still connected."""
    import psycopg
    from psycopg import sql

    admin = server_url.replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
