"""A run's artifacts behind a tracking server's artifact proxy (``mlflow-artifacts:/...``).

The client side of ``/api/2.0/mlflow-artifacts/artifacts``: files are uploaded with PUT,
streamed from disk in chunks, and downloaded with GET, streamed to a temporary file that is
renamed into place when complete; never whole files in memory. The same methods as
:class:`~flowml.artifacts.local.LocalArtifactRepository`.

``mlflow-artifacts:/<path>`` takes its server from the tracking URI;
``mlflow-artifacts://host:port/<path>`` names it; and an
``http(s)://host[:port][/prefix]/api/2.0/mlflow-artifacts/artifacts/<path>`` URI (what MLflow
resolves the first two to) is accepted as it is. A bearer token comes from
``FLOWML_TRACKING_TOKEN`` or ``MLFLOW_TRACKING_TOKEN``.
"""

from __future__ import annotations

import os
import posixpath
import threading
import time
import uuid
from typing import Iterator
from urllib.parse import quote, urlsplit

from flowml.artifacts.local import FileInfo
from flowml.errors import TrackingError

ENDPOINT = "/api/2.0/mlflow-artifacts/artifacts"
CHUNK = 1024 * 1024
RETRIES = 3  # attempts after the first, on connection errors, 429 and 5xx (every request here is idempotent)
_RETRY_STATUS = {429, 500, 502, 503, 504}


def split_uri(uri: str, tracking_uri: str | None = None) -> tuple[str, str]:
    """``(server base URL, path under the proxy's root)`` for an artifact URI."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "mlflow-artifacts":
        if parts.netloc:
            base = f"http://{parts.netloc}"
        else:
            base = _server_of(tracking_uri or os.environ.get("FLOWML_TRACKING_URI") or "", uri)
        path = parts.path
    elif scheme in ("http", "https") and ENDPOINT in parts.path:
        prefix, _, path = parts.path.partition(ENDPOINT)
        base = f"{scheme}://{parts.netloc}{prefix}"
    else:
        raise TrackingError(f"'{uri}' is not an artifact proxy URI (mlflow-artifacts:/... or "
                            f"http(s)://host{ENDPOINT}/...)")
    if parts.query or parts.fragment:
        raise TrackingError(f"artifact URI '{uri}': a query or fragment is not allowed")
    return base.rstrip("/"), path.strip("/")


def _server_of(tracking_uri: str, uri: str) -> str:
    parts = urlsplit(tracking_uri)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise TrackingError(f"artifact URI '{uri}' is served by a tracking server: set the tracking URI "
                            "(FLOWML_TRACKING_URI=http://host:port) to reach it")
    return f"{parts.scheme.lower()}://{parts.netloc}{parts.path.rstrip('/')}"


_CLIENTS: dict[tuple, object] = {}
_CLIENTS_LOCK = threading.Lock()


def _shared_client(base: str, headers: dict[str, str], timeout: float):
    """One ``httpx.Client`` per server, headers and timeout, for the whole process: a pipeline
    opens a repository per run, and a client each would leak a connection pool each."""
    import httpx

    key = (base, tuple(sorted(headers.items())), timeout)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            client = _CLIENTS[key] = httpx.Client(timeout=httpx.Timeout(timeout, connect=10), headers=headers)
        return client


def _same_server(base: str, tracking_uri: str) -> bool:
    """Whether ``base`` is the tracking server: same scheme, host and port."""
    ours, theirs = urlsplit(base), urlsplit(tracking_uri)
    return bool(theirs.netloc) and (ours.scheme, ours.netloc.lower()) == (theirs.scheme.lower(), theirs.netloc.lower())


class HttpArtifactRepository:
    """The artifacts of one run (or any folder) behind a server's proxy; ``client``: an
    ``httpx.Client`` (default: the process's one for that server)."""

    def __init__(self, artifact_uri: str, tracking_uri: str | None = None, client=None, timeout: float = 60) -> None:
        self.artifact_uri = artifact_uri
        self.base, self.root = split_uri(artifact_uri, tracking_uri)
        headers = {}
        token = os.environ.get("FLOWML_TRACKING_TOKEN") or os.environ.get("MLFLOW_TRACKING_TOKEN")
        if token and _same_server(self.base, tracking_uri or os.environ.get("FLOWML_TRACKING_URI") or ""):
            # only to the tracking server itself: an artifact URI naming another host (a run
            # made elsewhere, a shared cache entry) must not take the token there
            headers["Authorization"] = f"Bearer {token}"
        self.client = client or _shared_client(self.base, headers, timeout)

    # writing --------------------------------------------------------------------------------

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        """Upload ``local_file`` as ``<artifact_path>/<its name>``, streamed from disk."""
        if not os.path.isfile(local_file):
            raise TrackingError(f"cannot log '{local_file}': no such file", "RESOURCE_DOES_NOT_EXIST")
        self._put(_join(artifact_path, os.path.basename(local_file)), local_file)

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        """Upload every file under ``local_dir`` to ``artifact_path``, keeping the folder layout.
        Empty folders are not kept (the proxy stores files)."""
        for dirpath, _dirs, files in os.walk(local_dir):
            rel = os.path.relpath(dirpath, local_dir)
            folder = artifact_path if rel == "." else _join(artifact_path, rel.replace(os.sep, "/"))
            for name in sorted(files):
                self._put(_join(folder, name), os.path.join(dirpath, name))

    def write_bytes(self, artifact_path: str, data: bytes) -> None:
        """Store ``data`` as the file ``artifact_path`` (replaced whole on the server)."""
        self._put(_relative(artifact_path), data)

    def delete_artifacts(self, artifact_path: str) -> None:
        self._request("DELETE", self._url(_relative(artifact_path)))

    # reading --------------------------------------------------------------------------------

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """The files and folders directly in ``path`` (the root by default), with paths relative
        to the root, as the local repository gives them."""
        rel = _relative(path) if path else ""
        listed = self._request("GET", self.base + ENDPOINT, params={"path": _join(self.root, rel)}).json()
        infos = []
        for item in listed.get("files", []):
            name = item.get("path")
            if not isinstance(name, str) or not name or "/" in name or name in (".", "..") or "\\" in name:
                raise TrackingError(f"the server listed an invalid artifact name {name!r}")
            size = item.get("file_size")
            infos.append(FileInfo(_join(rel, name), bool(item.get("is_dir")),
                                  None if size is None else int(size)))
        return infos

    def download_artifacts(self, artifact_path: str, dst_path: str) -> str:
        """Copy an artifact (file or folder) into ``dst_path`` (made if missing); returns the local
        copy's path, ``dst_path/<its name>``."""
        rel = _relative(artifact_path) if artifact_path else ""
        name = posixpath.basename(rel) if rel else posixpath.basename(self.root) or "artifacts"
        target = os.path.join(dst_path, name)
        if self._is_folder(rel):
            os.makedirs(target, exist_ok=True)
            for info in self.list_artifacts(rel or None):
                self.download_artifacts(info.path, target)
        else:
            os.makedirs(dst_path, exist_ok=True)
            self._get(rel, target)
        return target

    def _is_folder(self, rel: str) -> bool:
        if not rel:
            return True
        parent, name = posixpath.split(rel)
        for info in self.list_artifacts(parent or None):
            if posixpath.basename(info.path) == name:
                return info.is_dir
        raise TrackingError(f"no artifact '{rel}' in {self.artifact_uri}", "RESOURCE_DOES_NOT_EXIST")

    # HTTP -----------------------------------------------------------------------------------

    def _url(self, rel: str) -> str:
        return f"{self.base}{ENDPOINT}/{quote(_join(self.root, rel), safe='/')}"

    def _put(self, rel: str, source: str | bytes) -> None:
        """PUT ``source`` (a local file, read in chunks at each attempt, or bytes)."""
        if isinstance(source, bytes):
            self._request("PUT", self._url(rel), content=lambda: source,
                          headers={"Content-Type": "application/octet-stream"})
            return
        size = os.path.getsize(source)
        self._request("PUT", self._url(rel), content=lambda: _chunks_of(source),
                      headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)})

    def _get(self, rel: str, target: str) -> None:
        """Stream the file ``rel`` to ``target``: into a temporary file beside it, renamed when whole."""
        tmp = os.path.join(os.path.dirname(target) or ".", f".{os.path.basename(target)}.download-{uuid.uuid4().hex}")
        try:
            for attempt in range(RETRIES + 1):
                try:
                    with self.client.stream("GET", self._url(rel)) as reply:
                        if reply.status_code in _RETRY_STATUS and attempt < RETRIES:
                            time.sleep(_backoff(attempt))
                            continue
                        if reply.status_code >= 400:
                            reply.read()
                            _raise_for(reply, f"GET {rel}")
                        expected = reply.headers.get("content-length")
                        received = 0
                        with open(tmp, "wb") as out:
                            for chunk in reply.iter_bytes(CHUNK):
                                out.write(chunk)
                                received += len(chunk)
                        if expected is not None and int(expected) != received:
                            raise TrackingError(f"download of '{rel}' cut short: {received} of {expected} bytes")
                        os.replace(tmp, target)
                        return
                except _transport_errors() as exc:
                    if attempt >= RETRIES:
                        raise TrackingError(f"cannot reach the artifact server {self.base}: {exc}",
                                            "TEMPORARILY_UNAVAILABLE") from None
                    time.sleep(_backoff(attempt))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _request(self, method: str, url: str, content=None, **kwargs):
        """One request, retried on connection errors, 429 and 5xx; ``content``: a callable giving
        the body afresh at each attempt. Errors become TrackingError with the server's code."""
        for attempt in range(RETRIES + 1):
            try:
                reply = self.client.request(method, url, content=content() if content else None, **kwargs)
            except _transport_errors() as exc:
                if attempt >= RETRIES:
                    raise TrackingError(f"cannot reach the artifact server {self.base}: {exc}",
                                        "TEMPORARILY_UNAVAILABLE") from None
                time.sleep(_backoff(attempt))
                continue
            if reply.status_code in _RETRY_STATUS and attempt < RETRIES:
                time.sleep(_backoff(attempt))
                continue
            if reply.status_code >= 400:
                _raise_for(reply, f"{method} {url}")
            return reply
        raise AssertionError("unreachable")


def _transport_errors():
    import httpx

    return (httpx.TransportError,)


def _backoff(attempt: int) -> float:
    return min(0.25 * 2 ** attempt, 4.0)


def _raise_for(reply, what: str) -> None:
    try:
        body = reply.json()
    except ValueError:
        body = {}
    code = body.get("error_code") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    if not code:
        code = "RESOURCE_DOES_NOT_EXIST" if reply.status_code == 404 else "INVALID_PARAMETER_VALUE"
    raise TrackingError(message or f"{what}: HTTP {reply.status_code}", code)


def _chunks_of(path: str) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def _relative(path: str) -> str:
    """A path inside the run's artifacts: relative, with '/', no '..'; checked here as well as on
    the server, so that a mistake reads as the caller's, not as the server's refusal."""
    norm = posixpath.normpath(path.replace(os.sep, "/")) if path else ""
    if not path or path.startswith("/") or norm == ".." or norm.startswith("../") or "\0" in path:
        raise TrackingError(f"invalid artifact path '{path}': it must be relative, without '..'")
    return "" if norm == "." else norm


def _join(folder: str | None, name: str) -> str:
    folder = _relative(folder) if folder else ""
    return f"{folder}/{name}" if folder and name else (folder or name)

