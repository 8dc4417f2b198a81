"""A run's artifacts in a local folder, with paths that cannot escape it.

Artifact paths come from users and, later, from HTTP requests, so every one is checked:
no absolute paths, no ``..``, and no symbolic link inside the run's folder leading out
of it (the real path must stay under the real root).
"""

from __future__ import annotations

import os
import posixpath
import shutil
from dataclasses import dataclass
from typing import IO
from urllib.parse import unquote, urlparse

from flowml.errors import TrackingError


@dataclass(frozen=True)
class FileInfo:
    path: str  # relative to the run's artifact root, with /
    is_dir: bool
    file_size: int | None = None

    def to_dict(self) -> dict:
        out = {"path": self.path, "is_dir": self.is_dir}
        if self.file_size is not None:
            out["file_size"] = self.file_size
        return out


def local_path(uri: str) -> str:
    """The folder a ``file://`` URI or a plain path names."""
    if uri.startswith("file:"):
        return unquote(urlparse(uri).path)
    return uri


class LocalArtifactRepository:
    def __init__(self, root_uri: str) -> None:
        self.root = os.path.abspath(local_path(root_uri))

    def path_of(self, artifact_path: str | None) -> str:
        """The absolute local path of ``artifact_path``, refused if it leaves the root."""
        if not artifact_path:
            return self.root
        if "\\" in artifact_path or "\0" in artifact_path:
            raise TrackingError(f"invalid artifact path '{artifact_path}'")
        norm = posixpath.normpath(artifact_path)
        if artifact_path.startswith("/") or norm == ".." or norm.startswith("../") or "/../" in f"/{artifact_path}/":
            raise TrackingError(f"invalid artifact path '{artifact_path}': it must be relative, without '..'")
        if norm == ".":
            return self.root
        full = os.path.join(self.root, *norm.split("/"))
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(full)
        if real != real_root and not real.startswith(real_root + os.sep):
            raise TrackingError(f"invalid artifact path '{artifact_path}': it leads out of the run's artifacts")
        return full

    def _file_of(self, artifact_path: str | None) -> str:
        """:meth:`path_of` for a file to write: not the root, not a folder."""
        full = self.path_of(artifact_path)
        if full == self.root or os.path.isdir(full):
            raise TrackingError(f"artifact path '{artifact_path}' must name a file, not a folder")
        return full

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        folder = self.path_of(artifact_path)
        os.makedirs(folder, exist_ok=True)
        _copy(local_file, os.path.join(folder, os.path.basename(local_file)))

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        folder = self.path_of(artifact_path)
        for dirpath, _dirs, files in os.walk(local_dir):
            rel = os.path.relpath(dirpath, local_dir)
            target = folder if rel == "." else os.path.join(folder, rel)
            os.makedirs(target, exist_ok=True)
            for name in files:
                _copy(os.path.join(dirpath, name), os.path.join(target, name))

    def open_write(self, artifact_path: str) -> IO[bytes]:
        """A file to stream an artifact into (a step's log while it runs)."""
        full = self._file_of(artifact_path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        return open(full, "wb")

    def write_bytes(self, artifact_path: str, data: bytes) -> None:
        """Write a whole artifact atomically: a reader sees the old file or the new one."""
        full = self._file_of(artifact_path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        tmp = f"{full}.tmp-{os.getpid()}"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, full)

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        folder = self.path_of(path)
        if not os.path.isdir(folder):
            return []
        rel = posixpath.normpath(path) if path else "."
        prefix = "" if rel == "." else f"{rel}/"
        infos = []
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.is_dir(follow_symlinks=False):
                infos.append(FileInfo(prefix + entry.name, True))
            elif entry.is_file(follow_symlinks=False):
                infos.append(FileInfo(prefix + entry.name, False, entry.stat().st_size))
        return infos

    def download_artifacts(self, artifact_path: str, dst_path: str) -> str:
        """Copy an artifact (file or folder) to ``dst_path`` (made if missing); returns the local
        copy's path. A folder is copied without the symbolic links inside it, as
        :meth:`list_artifacts` does not show them: following one could copy files from outside
        the run's folder, or loop."""
        source = self.path_of(artifact_path)
        target = os.path.join(dst_path, os.path.basename(source.rstrip(os.sep)))
        if os.path.isdir(source):
            shutil.copytree(source, target, symlinks=False, dirs_exist_ok=True, ignore=_links)
        elif os.path.isfile(source):
            os.makedirs(dst_path, exist_ok=True)
            _copy(source, target)
        else:
            raise TrackingError(f"no artifact '{artifact_path}'", "RESOURCE_DOES_NOT_EXIST")
        return target


def _links(folder: str, names: list[str]) -> set[str]:
    """``shutil.copytree``'s ignore callback: the symbolic links in ``folder``."""
    return {name for name in names if os.path.islink(os.path.join(folder, name))}


def _copy(source: str, target: str) -> None:
    if not os.path.isfile(source):
        raise TrackingError(f"cannot log '{source}': no such file", "RESOURCE_DOES_NOT_EXIST")
    tmp = f"{target}.tmp-{os.getpid()}"
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)
