"""A run's artifacts in the UI: the tree, a page per file (its preview) or folder (its listing),
and the file itself.

- ``GET /runs/{id}/artifacts/{path}``: a file's preview (text, JSON pretty-printed, YAML,
  CSV/TSV as a table, images, MLmodel; see :mod:`flowml.server.ui.previews`) or a folder's
  listing, beside the run's tree with the way to it opened;
- ``GET /runs/{id}/files/{path}``: the file, streamed. Images go out with their image type,
  everything else as ``text/plain; charset=utf-8`` (``?download=1``: ``application/octet-stream``
  as an attachment), always with ``nosniff`` and ``Content-Security-Policy: default-src 'none';
  sandbox``, so an HTML or SVG artifact never runs script in this origin, even opened directly.

Every path goes through :func:`flowml.server.security.artifact_path` (no ``..`` in any encoding,
no symbolic link out of the run's folder); a run whose artifacts are not in a folder this server
reaches gets a message saying where they are.
"""

from __future__ import annotations

import os
import posixpath
from collections import deque
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from flowml.errors import TrackingError
from flowml.server.routes.artifacts import (DOWNLOAD_HEADERS, attachment, folder_entries, open_for_reading, read_chunks,
                                            run_folder)
from flowml.server.security import artifact_path
from flowml.server.ui.previews import format_size, image_type, preview
from flowml.server.ui.render import page
from flowml.server.ui.selection import find_run

router = APIRouter()

TREE_ENTRIES = 300  # entries of a run's tree read for one page, breadth first
FOLDER_ENTRIES = 500  # entries of one folder listed; the rest are counted
OPEN_ALL_BELOW = 40  # a tree this small is drawn with every folder open


@dataclass
class Entry:
    """A file or folder of a run's artifacts; ``children`` None: not read for this page."""

    name: str
    path: str  # relative to the run's artifact root, '/'-separated
    is_dir: bool
    size: int | None
    children: list["Entry"] | None = None
    more: int = 0  # entries of the folder left out
    open: bool = False


def run_root(request: Request, run) -> str:
    """The local folder of ``run``'s artifacts; TrackingError saying where they are when this
    server does not serve them (another scheme, another server)."""
    return run_folder(run.info.artifact_uri, request.app.state.config.artifacts_destination)


def run_crumbs(store, run, run_href: str | None = None) -> list[tuple[str, str | None]]:
    """The crumbs of a run's pages: experiment, the pipeline run above a step run, the run."""
    experiment = store.get_experiment(run.info.experiment_id)
    crumbs: list[tuple[str, str | None]] = [("Experiments", "/"),
                                            (experiment.name, f"/experiments/{experiment.experiment_id}")]
    parent_id = run.data.tags.get("mlflow.parentRunId")
    if parent_id:
        crumbs.append((parent_label(store, parent_id), f"/runs/{parent_id}"))
    crumbs.append((run.info.run_name or run.info.run_id[:8], run_href))
    return crumbs


def parent_label(store, run_id: str) -> str:
    """A run's name for a link, or its short id if it cannot be read (deleted, never existed)."""
    run = find_run(store, run_id)
    return (run.info.run_name if run else None) or run_id[:8]


def read_folder(root: str, rel: str, limit: int = FOLDER_ENTRIES) -> tuple[list[Entry], int]:
    """The first ``limit`` entries of the folder ``rel`` (folders and files by name, no symbolic
    links), and how many more there are."""
    _rel, folder = artifact_path(root, rel)
    found, more = folder_entries(folder, limit)
    return [Entry(name, posixpath.join(rel, name) if rel else name, is_dir, size) for name, is_dir, size in found], more


def artifact_tree(root: str, current: str = "", budget: int = TREE_ENTRIES) -> tuple[list[Entry], int]:
    """The run's top folder with its subfolders read breadth first until ``budget`` entries are
    read (a folder left unread is a link to its own page), plus every folder on the way to
    ``current``, opened. Returns the top entries and how many top entries were left out."""
    top, more = read_folder(root, "")
    seen, queue = len(top), deque(e for e in top if e.is_dir)
    while queue and seen < budget:
        folder = queue.popleft()
        folder.children, folder.more = read_folder(root, folder.path)
        seen += len(folder.children)
        queue.extend(e for e in folder.children if e.is_dir)
    entries, parts = top, current.split("/") if current else []
    for depth in range(1, len(parts) + 1):
        ancestor = "/".join(parts[:depth])
        folder = next((e for e in entries if e.is_dir and e.path == ancestor), None)
        if folder is None:
            break
        if folder.children is None:
            folder.children, folder.more = read_folder(root, folder.path)
        folder.open, entries = True, folder.children
    if seen <= OPEN_ALL_BELOW:
        _open_all(top)
    return top, more


def _open_all(entries: list[Entry]) -> None:
    for entry in entries:
        if entry.children is not None:
            entry.open = True
            _open_all(entry.children)


@router.get("/runs/{run_id}/artifacts")
@router.get("/runs/{run_id}/artifacts/{path:path}")
def artifact_page(request: Request, run_id: str, path: str = ""):
    store = request.app.state.store
    run = store.get_run(run_id)
    root = run_root(request, run)
    rel, full = artifact_path(root, path)
    tree, tree_more = artifact_tree(root, rel)
    listing, listing_more, shown = None, 0, None
    if os.path.isdir(full):
        listing, listing_more = read_folder(root, rel)
    else:
        handle, size = open_for_reading(full, rel)
        with handle:
            shown = preview(handle, rel, size)
    crumbs = run_crumbs(store, run, f"/runs/{run_id}")
    parts = rel.split("/") if rel else []
    crumbs += [("Artifacts", f"/runs/{run_id}/artifacts" if parts else None)]
    crumbs += [(name, None if i == len(parts) - 1 else f"/runs/{run_id}/artifacts/" + "/".join(parts[:i + 1]))
               for i, name in enumerate(parts)]
    return page(request, "artifact.html", title=f"{rel or 'Artifacts'} · {run.info.run_name or run_id[:8]}",
                section="experiments", crumbs=crumbs, run=run, path=rel, name=posixpath.basename(rel),
                tree=tree, tree_more=tree_more, listing=listing, listing_more=listing_more, preview=shown,
                size=format_size)


@router.get("/runs/{run_id}/files/{path:path}")
def raw_file(request: Request, run_id: str, path: str, download: int = 0) -> StreamingResponse:
    run = request.app.state.store.get_run(run_id)
    rel, full = artifact_path(run_root(request, run), path)
    if not rel or os.path.isdir(full):
        raise TrackingError(f"'{rel or '/'}' is a folder; only files can be opened")
    handle, size = open_for_reading(full, rel)
    headers = {**DOWNLOAD_HEADERS, "Content-Length": str(size)}
    if download:
        headers["Content-Disposition"] = attachment(posixpath.basename(rel))
        media_type = "application/octet-stream"
    else:
        media_type = image_type(rel) or "text/plain; charset=utf-8"
    return StreamingResponse(read_chunks(handle), media_type=media_type, headers=headers)
