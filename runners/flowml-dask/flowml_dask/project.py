"""The project's files as one archive, made once per run and shipped to the workers.

A worker shares no file system with the client, so each step gets the pipeline's folder
unpacked into a fresh workspace. What goes in: in a git work tree, the files git would
commit there (tracked, plus untracked ones that ``.gitignore`` does not exclude, so an edit
not yet committed runs as it would locally); elsewhere, every file under the folder. Never
``.git/``, ``.flowml/``, ``__pycache__/`` or ``.venv/``, and never an output of a selected step: those
reach the steps that read them from the tracking server's artifact store. Outputs of steps
outside the selection (``--from``) are workspace files like any other and go in.

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

from flowml.errors import FlowmlError
from flowml.spec.node import is_within

DEFAULT_LIMIT = 256 * 1024 * 1024
LIMIT_VARIABLE = "FLOWML_DASK_MAX_PROJECT"
NEVER = {".git", ".flowml", "__pycache__", ".venv"}  # never portable: a virtualenv names its own paths


class ProjectTooBig(FlowmlError):
    """The project's files exceed what is shipped to every step."""

    exit_code = 2


def project_archive(root: str, outputs: list[str]) -> bytes:
    """A gzipped tar of the files of ``root`` that steps may read, without ``outputs``.

    Raises:
        ProjectTooBig: above the limit, naming the largest files.
    """
    files = [f for f in project_files(root) if not any(is_within(f, o) for o in outputs)]
    sizes = {f: os.lstat(os.path.join(root, f)).st_size for f in files}
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
            tar.add(os.path.join(root, rel), arcname=rel, recursive=False)
    return buffer.getvalue()


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
