"""Which tracking store a process talks to, and one open store per URI.

The URI comes from, in order: the caller (``set_tracking_uri``, ``--tracking-uri``),
``FLOWML_TRACKING_URI``, and otherwise the project's embedded store ``.flowml/flowml.db``,
the project being the pipeline's folder, or for a script the nearest folder up from the
working folder that has a ``.flowml/`` (or the working folder itself).

``http(s)://host:port`` is a flowml (or MLflow) tracking server, spoken to through
:class:`flowml.tracking.rest.RestStore`; the server decides where artifacts go.

``MLFLOW_TRACKING_URI`` is deliberately not read: it names an MLflow store, whose schema
flowml cannot use, and users of both tools keep it set for MLflow.
"""

from __future__ import annotations

import os
import threading

from flowml.errors import TrackingError

STORE_DIR = ".flowml"
_stores: dict[tuple[str, str], object] = {}
_lock = threading.Lock()


def project_root(start: str | None = None) -> str:
    """The nearest folder at or above ``start`` holding ``.flowml/``; else ``start``."""
    start = os.path.abspath(start or os.getcwd())
    probe = start
    while True:
        if os.path.isdir(os.path.join(probe, STORE_DIR)):
            return probe
        parent = os.path.dirname(probe)
        if parent == probe:
            return start
        probe = parent


def default_uri(root: str | None = None) -> str:
    return "sqlite:///" + os.path.join(root or project_root(), STORE_DIR, "flowml.db")


def resolve_uri(uri: str | None = None, root: str | None = None) -> str:
    """The tracking URI to use, normalized (``postgresql://`` means the psycopg driver)."""
    uri = uri or os.environ.get("FLOWML_TRACKING_URI") or default_uri(root)
    if uri.startswith(("postgresql://", "postgres://")):
        uri = "postgresql+psycopg://" + uri.split("://", 1)[1]
    elif _is_server(uri):
        uri = uri.rstrip("/")
    return uri


def _is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def artifact_root_for(uri: str, root: str | None = None) -> str:
    """Where new experiments keep artifacts: beside an SQLite file, else ``FLOWML_ARTIFACT_ROOT``
    or the project's ``.flowml/artifacts`` (``root``: the project, default: found from here)."""
    if uri.startswith("sqlite:///") and uri != "sqlite:///:memory:":
        return os.path.join(os.path.dirname(os.path.abspath(uri[len("sqlite:///"):])), "artifacts")
    return os.environ.get("FLOWML_ARTIFACT_ROOT") or os.path.join(root or project_root(), STORE_DIR, "artifacts")


def get_store(uri: str | None = None, root: str | None = None):
    """The store for ``uri`` (see :func:`resolve_uri`) of the project at ``root``, opened once
    per process, URI and artifact root."""
    uri = resolve_uri(uri, root)
    # A server decides where artifacts go: one store (one metric buffer) per server URL.
    root = "" if _is_server(uri) else artifact_root_for(uri, root)
    with _lock:
        store = _stores.get((uri, root))
        if store is None:
            store = _stores[(uri, root)] = _open(uri, root)
        return store


def _open(uri: str, artifact_root: str):
    scheme = uri.split(":", 1)[0]
    if scheme.startswith(("sqlite", "postgresql")):
        from flowml.tracking.sql.store import SqlStore

        return SqlStore(uri, artifact_root)
    if scheme in ("http", "https"):
        from flowml.tracking.rest import RestStore

        return RestStore(uri)
    raise TrackingError(f"unsupported tracking URI '{uri}': use sqlite:///path/to/flowml.db or "
                        "postgresql://user@host/db")
