"""Opening a tracking database: the engine, SQLite's settings, and the schema's version.

SQLite gets WAL (readers never wait for a writer), a 30 s busy timeout and
``synchronous=NORMAL`` (durable at each checkpoint, not fsync per commit: a crash can lose
the last commits but never corrupts the file). Write transactions start with
``BEGIN IMMEDIATE`` so that two writers queue on the busy timeout instead of one failing
with "database is locked" when its read lock cannot be upgraded.

The schema is Alembic's. Opening compares the database's revision with :data:`HEAD`
without importing Alembic (it costs 0.1 s); only an older database runs the migrations,
and a newer one is refused.
"""

from __future__ import annotations

import functools
import inspect
import os
import sqlite3
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from flowml.errors import StoreError

# Every revision in migrations/versions, oldest first; tests check this against Alembic.
REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006")
HEAD = REVISIONS[-1]
WRITE = {"flowml_write": True}  # execution option: this connection's transaction writes


def make_engine(url: str) -> Engine:
    """An engine for ``url`` whose schema is at :data:`HEAD` (creating or migrating it)."""
    if url.startswith("sqlite"):
        engine = _sqlite_engine(url)
    else:
        try:
            engine = create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=8)
        except Exception as exc:  # a bad URL or a driver that is not installed
            raise StoreError(f"cannot use tracking store {_safe(url)}: {exc}") from None
    try:
        ensure_schema(engine, url)
    except (OperationalError, ProgrammingError, DBAPIError) as exc:
        engine.dispose()
        raise StoreError(f"cannot open tracking store {_safe(url)}: {exc.orig}") from None
    except BaseException:  # a refused (newer) schema: no connections left open either
        engine.dispose()
        raise
    return engine


def _sqlite_engine(url: str) -> Engine:
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event below starts transactions
        cursor = dbapi_connection.cursor()
        _enter_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("flowml_write") else "BEGIN")

    return engine


def _enter_wal(cursor) -> None:
    """Switch the database to WAL. Switching takes an exclusive lock and SQLite answers
    "database is locked" at once, without its busy timeout, while another process opens the
    same new database: so wait and retry here, for as long as the busy timeout would."""
    from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

    for attempt in Retrying(retry=retry_if_exception(_locked), wait=wait_random_exponential(0.005, max=0.25),
                            stop=stop_after_delay(30), reraise=True):
        with attempt:
            cursor.execute("PRAGMA journal_mode = WAL")


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A connection in a write transaction, committed on success and rolled back on error."""
    with engine.connect().execution_options(**WRITE) as conn, conn.begin():
        yield conn


def ensure_schema(engine: Engine, url: str) -> None:
    """Bring the database to :data:`HEAD`; refuse one written by a newer flowml."""
    with engine.connect() as conn:
        current = _revision(conn)
    if current == HEAD:
        return
    if current is not None and current not in REVISIONS:
        raise StoreError(f"tracking store {_safe(url)} has schema revision {current}, newer than this "
                         f"flowml knows (up to {HEAD}); upgrade flowml to use it")
    with writing(engine) as conn:
        if engine.dialect.name == "postgresql":  # one migrator at a time across processes
            conn.execute(text("SELECT pg_advisory_xact_lock(7345001)"))
        if _revision(conn) != HEAD:
            _upgrade(conn)


def _revision(conn: Connection) -> str | None:
    try:
        with conn.begin_nested() if conn.in_transaction() else conn.begin():
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, ProgrammingError):
        return None


def _upgrade(conn: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", os.path.join(os.path.dirname(__file__), "migrations"))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


def _safe(url: str) -> str:
    """``url`` without its password, for messages."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url


def reporting_errors(cls):
    """Class decorator: when the database itself fails (server gone, locked past the busy
    timeout, disk full), every public method raises :class:`StoreError` naming the store,
    which callers report in one line or turn into one failed step, instead of a traceback
    from SQLAlchemy."""
    for name in dir(cls):  # inherited methods (the logged-models mixin) too
        method = getattr(cls, name)
        if not name.startswith("_") and inspect.isfunction(method):
            setattr(cls, name, _reporting(method))
    return cls


def _reporting(method):
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (DBAPIError, PoolTimeout) as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise StoreError(f"tracking store {_safe(self.url)} failed: {detail}") from None

    return call
