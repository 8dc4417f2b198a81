"""The project's files as one archive, made once per run and shipped to the workers.

A worker shares no file system with the client, so each step gets the pipeline's folder
unpacked into a fresh workspace. What goes in: in a git work tree, the files git would
commit there (tracked, plus untracked ones that ``.gitignore`` does not exclude, so an edit
not yet committed runs as it would locally); elsewhere, every file under the folder. Never
``.git/``, ``.flowml/``, ``__pycache__/`` or ``.venv/``, and never an output of a selected step: those
reach the steps that read them from the tracking server's artifact store. Outputs of steps
outside the selection (``--from``) are workspace files like any other and go in.

Declared inputs of the selected steps always go in, whatever git ignores (data is often kept
out of git), as the cache key saw them: every file that hashing reads (links followed), so the
worker's check of each input against the client's digest holds. An input outside the folder
(absolute, or ``../``) cannot go: the worker reports it as not shipped.

Sending files rather than a commit to check out keeps workers free of git access to the
repository and runs uncommitted edits. The archive is held in memory and refused above
:data:`DEFAULT_LIMIT` (or ``FLOWML_DASK_MAX_PROJECT``, in bytes): data that large belongs in
a step's output or outside the project, not in every step's workspace.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile

from flowml.cache.hashing import walk_files
from flowml.errors import FlowmlError
from flowml.spec.node import is_within

DEFAULT_LIMIT = 256 * 1024 * 1024
LIMIT_VARIABLE = "FLOWML_DASK_MAX_PROJECT"
NEVER = {".git", ".flowml", "__pycache__", ".venv"}  # never portable: a virtualenv names its own paths


class ProjectTooBig(FlowmlError):
    """The project's files exceed what is shipped to every step."""

    exit_code = 2


def project_archive(root: str, outputs: list[str], inputs: list[str] = ()) -> bytes:
    """A gzipped tar of the files of ``root`` that steps may read, without ``outputs``, with
    every file of ``inputs`` (dereferenced, as hashing reads them).

    Raises:
        ProjectTooBig: above the limit, naming the largest files.
    """
    declared = input_files(root, inputs)
    files = [f for f in sorted(set(project_files(root)) | declared) if not any(is_within(f, o) for o in outputs)]
    # a link to a folder whose files are declared inputs goes as those files
    folders = {f.rsplit("/", n)[0] for f in files for n in range(1, f.count("/") + 1)}
    files = [f for f in files if f not in folders]
    sizes = {f: (os.stat if f in declared else os.lstat)(os.path.join(root, f)).st_size for f in files}
    limit = int(os.environ.get(LIMIT_VARIABLE) or DEFAULT_LIMIT)
    total = sum(sizes.values())
    if total > limit:
        largest = ", ".join(f"{f} ({sizes[f]} bytes)" for f in sorted(sizes, key=sizes.__getitem__)[-3:][::-1])
        raise ProjectTooBig(f"the project's files in {root} come to {total} bytes, more than the {limit} shipped to "
                            f"each Dask step (largest: {largest}); declare data as a step's output, add it to "
                            f".gitignore, or raise {LIMIT_VARIABLE}")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for rel in files:
            if rel in declared:
                with open(os.path.join(root, rel), "rb") as fh:
                    tar.addfile(tar.gettarinfo(fileobj=fh, arcname=rel), fh)
            else:
                tar.add(os.path.join(root, rel), arcname=rel, recursive=False)
    return buffer.getvalue()


def input_files(root: str, inputs: list[str]) -> set[str]:
    """The files (relative, ``/``-separated) that declared ``inputs`` inside ``root`` hash."""
    found = set()
    for rel in inputs:
        if os.path.isabs(rel) or rel == ".." or rel.startswith("../"):
            continue
        path = os.path.join(root, rel)
        if os.path.isfile(path):
            found.add(rel)
        elif os.path.isdir(path):
            found.update(sub if rel == "." else f"{rel}/{sub}" for sub, _ in walk_files(path))
    return found


def project_files(root: str) -> list[str]:
    """Paths (relative, ``/``-separated, sorted) of the files and links under ``root`` to ship."""
    listed = _git_files(root)
    return sorted(f for f in (_walk(root) if listed is None else listed) if _shippable(root, f))


def unpack(archive: bytes, dest: str) -> None:
    """Unpack an archive made by :func:`project_archive` into ``dest`` (no path leaves it)."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(dest, filter="data")


def _git_files(root: str) -> list[str] | None:
    """What git would commit under ``root``; None outside a work tree (or without git)."""
    try:
        proc = subprocess.run(["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                              capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return sorted({f for f in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if f})


def _walk(root: str) -> list[str]:
    found = []
    for folder, dirs, files in os.walk(root):
        links = [d for d in dirs if os.path.islink(os.path.join(folder, d))]  # shipped as links, not entered
        dirs[:] = [d for d in dirs if d not in NEVER and d not in links]
        rel = os.path.relpath(folder, root).replace(os.sep, "/")
        found += [f if rel == "." else f"{rel}/{f}" for f in files + links]
    return found


def _shippable(root: str, rel: str) -> bool:
    """A file or link (not a folder, such as a git submodule) outside the folders never shipped."""
    full = os.path.join(root, rel)
    return not NEVER.intersection(rel.split("/")) and (os.path.islink(full) or os.path.isfile(full))
