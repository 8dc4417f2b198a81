"""The artifact proxy (MLflow's ``mlflow_artifacts.proto``) and ``artifacts/list`` (``service.proto``).

``router`` serves files under the server's artifacts destination, mounted at
``/api/2.0/mlflow-artifacts`` (and ``/ajax-api/...``):

- ``GET /artifacts/<path>``: the file, streamed from disk in chunks, as
  ``application/octet-stream`` with ``nosniff`` and a sandboxing CSP, so that an uploaded HTML
  or SVG file is never rendered in the server's origin;
- ``PUT /artifacts/<path>``: the request body streamed to a temporary file beside the target,
  fsynced and renamed over it, so a reader sees the old file or the whole new one, and an
  upload that is cut off leaves no artifact;
- ``DELETE /artifacts/<path>``: a file or a folder (``{}`` if there was none, as MLflow does);
- ``GET /artifacts?path=<folder>``: ``{"files": [{"path", "is_dir", "file_size"}]}`` with
  names relative to the folder listed (MLflow's shape; ``{}`` when empty).

``runs_router`` adds ``GET /artifacts/list?run_id=&path=`` under ``/api/2.0/mlflow``: a run's
files, with paths relative to the run's artifact root and that root as ``root_uri``.

Every path goes through :func:`flowml.server.security.artifact_path`; symbolic links are not
listed, and neither are uploads in progress.
"""

from __future__ import annotations

import asyncio
import errno
import os
import posixpath
import shutil
import stat
import uuid
from typing import AsyncIterator
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from flowml.errors import TrackingError
from flowml.server import errors
from flowml.server.security import artifact_path, clean_path, decode, is_upload_temp, upload_temp_name

router = APIRouter()  # mounted at /api/2.0/mlflow-artifacts and /ajax-api/2.0/mlflow-artifacts
runs_router = APIRouter()  # mounted at /api/2.0/mlflow and /ajax-api/2.0/mlflow
CHUNK = 1024 * 1024  # bytes read from disk, or gathered from the request, per write
DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "no-store",
}


def _destination(request: Request) -> str:
    return request.app.state.config.artifacts_destination


# the proxy -----------------------------------------------------------------------------

@router.get("/artifacts", summary="List the files of a folder of the artifacts destination")
async def list_artifacts(request: Request) -> JSONResponse:
    _rel, folder = artifact_path(_destination(request), request.query_params.get("path"))
    entries, _ = await run_in_threadpool(folder_entries, folder)
    return JSONResponse({"files": [_file_info(name, is_dir, size) for name, is_dir, size in entries]}
                        if entries else {})


@router.get("/artifacts/{path:path}", summary="Download an artifact")
async def download_artifact(path: str, request: Request) -> StreamingResponse:
    rel, full = artifact_path(_destination(request), path)
    if not rel:
        raise TrackingError("the artifact root is a folder; list it with GET .../artifacts?path=")
    handle, size = await run_in_threadpool(open_for_reading, full, rel)
    name = posixpath.basename(rel)
    headers = {**DOWNLOAD_HEADERS, "Content-Length": str(size), "Content-Disposition": attachment(name)}
    return StreamingResponse(read_chunks(handle), media_type="application/octet-stream", headers=headers)


@router.put("/artifacts/{path:path}", summary="Upload an artifact (the request body)")
async def upload_artifact(path: str, request: Request) -> JSONResponse:
    root = _destination(request)
    rel, full = artifact_path(root, path)
    if not rel or decode(path).endswith("/"):
        raise TrackingError("an upload must name a file, not a folder or the artifact root")
    await run_in_threadpool(_prepare_folder, root, full, rel)
    tmp = os.path.join(os.path.dirname(full), upload_temp_name(os.path.basename(full), uuid.uuid4().hex))
    fd = -1
    writing: asyncio.Future | None = None  # the previous block's write, overlapping the next block's receipt
    stored = False
    try:
        fd = await run_in_threadpool(os.open, tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                                     0o644)
        block = bytearray()
        async for chunk in request.stream():
            block += chunk
            if len(block) >= CHUNK:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(run_in_threadpool(_write_all, fd, block))
                block = bytearray()
        if writing is not None:
            await writing
            writing = None
        if block:
            await run_in_threadpool(_write_all, fd, block)
        closing, fd = fd, -1
        await run_in_threadpool(_sync_and_close, closing)
        await run_in_threadpool(_rename, tmp, full, rel)
        stored = True
    except ClientDisconnect:
        return errors.error("INVALID_PARAMETER_VALUE", f"the upload of '{rel}' was cut off; nothing was stored")
    except OSError as exc:  # a full disk, a quota: the client is told, the partial file goes
        raise TrackingError(f"cannot store '{rel}': {exc.strerror or exc}", "INTERNAL_ERROR") from None
    finally:
        if writing is not None:
            await asyncio.gather(writing, return_exceptions=True)
        if not stored:
            _discard(fd, tmp)
    return JSONResponse({})


@router.delete("/artifacts/{path:path}", summary="Delete an artifact or a folder of artifacts")
async def delete_artifact(path: str, request: Request) -> JSONResponse:
    rel, full = artifact_path(_destination(request), path)
    if not rel:
        raise TrackingError("the artifact root cannot be deleted")
    await run_in_threadpool(_remove, full)
    return JSONResponse({})


# a run's artifacts (service.proto) -------------------------------------------------------

@runs_router.get("/artifacts/list", summary="List a run's artifacts")
async def list_run_artifacts(request: Request) -> JSONResponse:
    query = request.query_params
    run_id = query.get("run_id") or query.get("run_uuid")
    if not run_id:
        raise TrackingError("missing value for required parameter 'run_id'")
    run = await run_in_threadpool(request.app.state.store.get_run, run_id)
    root_uri = run.info.artifact_uri
    run_root = run_folder(root_uri, _destination(request))
    rel, folder = artifact_path(run_root, query.get("path"))
    entries, _ = await run_in_threadpool(folder_entries, folder)
    reply: dict = {"root_uri": root_uri}
    if entries:
        reply["files"] = [_file_info(posixpath.join(rel, name) if rel else name, is_dir, size)
                          for name, is_dir, size in entries]
    return JSONResponse(reply)


def run_folder(artifact_uri: str, destination: str) -> str:
    """The local folder of a run's artifact root: ``mlflow-artifacts:/<path>`` is ``<path>`` under
    the destination (checked), a local path or ``file://`` URI is that folder. Other schemes are
    refused: the server never fetches from a URL it was given."""
    from flowml.artifacts.local import local_path

    scheme = artifact_uri.split(":", 1)[0].lower() if ":" in artifact_uri else ""
    if scheme == "mlflow-artifacts":
        rest = artifact_uri.split(":", 1)[1]
        if rest.startswith("//"):  # mlflow-artifacts://host:port/path: the path on this server
            rest = "/" + rest[2:].partition("/")[2]
        return artifact_path(destination, rest.lstrip("/"))[1]
    if scheme in ("", "file"):
        return os.path.abspath(local_path(artifact_uri))
    raise TrackingError(f"the run's artifacts are at '{artifact_uri}', which this server does not serve")


# helpers (run in worker threads; the UI's artifact pages use them too) -------------------------

def folder_entries(folder: str, limit: int | None = None) -> tuple[list[tuple[str, bool, int | None]], int]:
    """``(name, is_dir, size)`` of the files and folders in ``folder``, by name, without symbolic
    links, uploads in progress and names no request could ask for again; with ``limit``, only the
    first ``limit`` of them, and how many names were left unread (checking and sizing a name
    costs far more than listing it, so a folder of 100,000 files costs a page of 500 little)."""
    try:
        scan = sorted(os.scandir(folder), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return [], 0
    out: list[tuple[str, bool, int | None]] = []
    for index, entry in enumerate(scan):
        if limit is not None and len(out) >= limit:
            return out, len(scan) - index
        if is_upload_temp(entry.name) or not _requestable(entry.name):
            continue
        if entry.is_dir(follow_symlinks=False):
            out.append((entry.name, True, None))
        elif entry.is_file(follow_symlinks=False):
            out.append((entry.name, False, entry.stat(follow_symlinks=False).st_size))
    return out, 0


def _requestable(name: str) -> bool:
    try:
        return clean_path(name) == name
    except TrackingError:
        return False


def _file_info(path: str, is_dir: bool, size: int | None) -> dict:
    info: dict = {"path": path, "is_dir": is_dir}
    if size is not None:
        info["file_size"] = size
    return info


def open_for_reading(full: str, rel: str):
    """``(handle, size)`` of the regular file at ``full`` (``rel`` names it in errors): a missing
    file is RESOURCE_DOES_NOT_EXIST, a folder or a device is refused. The size is the open
    file's, so a reply's Content-Length matches what is streamed."""
    try:  # O_NONBLOCK: opening a FIFO planted in the folder must not hang a worker thread
        fd = os.open(full, os.O_RDONLY | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        raise TrackingError(f"no artifact '{rel}'", "RESOURCE_DOES_NOT_EXIST") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise TrackingError(f"'{rel}' is a folder; list it with GET .../artifacts?path={quote(rel)}")
        raise TrackingError(f"'{rel}' is not a file")
    handle = os.fdopen(fd, "rb", buffering=0)
    return handle, info.st_size


async def read_chunks(handle) -> AsyncIterator[bytes]:
    """The rest of ``handle`` in blocks of :data:`CHUNK`, read in a worker thread; closes it."""
    try:
        while True:
            data = await run_in_threadpool(handle.read, CHUNK)
            if not data:
                break
            yield data
    finally:
        handle.close()


def attachment(name: str) -> str:
    """A Content-Disposition naming ``name``: a plain ASCII fallback, and the exact name (RFC 5987)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _prepare_folder(root: str, full: str, rel: str) -> None:
    """Make the target's folder; refuse a target that is a folder or under a file."""
    if os.path.isdir(full) and not os.path.islink(full):
        raise TrackingError(f"'{rel}' is a folder; an upload must name a file")
    folder = os.path.dirname(full)
    try:
        os.makedirs(folder, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise TrackingError(f"cannot store '{rel}': a part of its folder is a file") from None
    artifact_path(root, rel)  # the folders now exist: check again that none leads out


def _write_all(fd: int, data: bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _sync_and_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _rename(tmp: str, full: str, rel: str) -> None:
    """Put the received file (on disk already) in place in one step."""
    try:
        os.replace(tmp, full)
    except IsADirectoryError:
        raise TrackingError(f"'{rel}' is a folder; an upload must name a file") from None
    _fsync_folder(os.path.dirname(full))


def _fsync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems cannot sync a folder
        if exc.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _discard(fd: int, tmp: str) -> None:
    """Drop an upload that did not finish (``fd`` -1: closed already, or never opened)."""
    if fd >= 0:
        os.close(fd)
    try:
        os.unlink(tmp)
    except (FileNotFoundError, NotADirectoryError):
        pass


def _remove(full: str) -> None:
    if os.path.islink(full) or os.path.isfile(full):
        os.unlink(full)
    elif os.path.isdir(full):
        shutil.rmtree(full)
