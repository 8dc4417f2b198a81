"""Content digests of files and folders (xxh3-128), read once thanks to a stat memo.

A file's digest is the hash of its bytes; a folder's is the hash of the sorted list of
its files' relative paths and digests, so a changed file in a large folder costs one
file's read. The memo maps a path to (inode, size, mtime_ns, ctime_ns) and the digest
seen for it: when all four match, the file is not read again. A file modified in the
last moments before it is hashed is not memoized, since a second write within the
file system's timestamp granularity could leave the same stat behind (git's "racy" case).
"""

from __future__ import annotations

import os
import stat as stat_mod
import time
from dataclasses import dataclass, field

import xxhash

from flowml.errors import StoreError
from flowml.spec.node import is_within

CHUNK = 8 << 20
RACY_SECONDS = 2.0
IGNORED_NAMES = frozenset({".git", ".flowml", "__pycache__", ".DS_Store"})


def hash_bytes(data: bytes) -> str:
    """Digest of a byte string."""
    return xxhash.xxh3_128_hexdigest(data)


def hash_file(path: str, copy_to=None) -> str:
    """Digest of a file's bytes, read in large chunks into one reused buffer.

    Args:
        copy_to: an open binary file that also receives the bytes (copy and hash in one read).
    """
    h = xxhash.xxh3_128()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
            if copy_to is not None:
                copy_to.write(view[:n])
    return h.hexdigest()


def tree_digest(files: dict[str, str]) -> str:
    """Digest of a folder from ``{relative path: file digest}``."""
    h = xxhash.xxh3_128()
    for rel in sorted(files):
        h.update(f"{rel}\0{files[rel]}\n".encode())
    return h.hexdigest()


@dataclass(frozen=True)
class Content:
    """What a path holds: a file's digest, or a folder's digest and its files."""

    digest: str
    files: dict[str, str] | None = None  # folder: relative path -> digest; None for a file

    def to_json(self) -> dict:
        return {"digest": self.digest, "files": self.files} if self.files is not None else {"digest": self.digest}

    @classmethod
    def from_json(cls, data: dict) -> "Content":
        return cls(data["digest"], data.get("files"))


Signature = tuple[int, int, int, int]


@dataclass
class StatMemo:
    """Digests of files by their stat signature; ``changed`` holds the rows to save."""

    rows: dict[str, tuple[Signature, str]] = field(default_factory=dict)
    changed: dict[str, tuple[Signature, str]] = field(default_factory=dict)

    def digest(self, path: str, key: str, st: os.stat_result | None = None) -> str:
        """Digest of the file at ``path``, memoized under ``key`` (its project-relative path)."""
        st = st or os.stat(path)
        sig = signature(st)
        row = self.rows.get(key)
        if row is not None and row[0] == sig:
            return row[1]
        digest = hash_file(path)
        self.remember(key, st, digest)
        return digest

    def remember(self, key: str, st: os.stat_result, digest: str) -> None:
        """Record a digest computed elsewhere (while copying a file into the store)."""
        if time.time() - st.st_mtime_ns / 1e9 < RACY_SECONDS:
            self.rows.pop(key, None)
            return
        self.rows[key] = self.changed[key] = (signature(st), digest)

    def known(self, key: str, st: os.stat_result) -> str | None:
        """The memoized digest when ``st`` matches, else None."""
        row = self.rows.get(key)
        return row[1] if row is not None and row[0] == signature(st) else None


def signature(st: os.stat_result) -> Signature:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def walk_files(folder: str, follow_dir_links: bool = True) -> list[tuple[str, os.stat_result]]:
    """``(relative path, stat)`` of every file under ``folder``, skipping VCS and cache folders.

    Links to files are followed; dangling links are skipped. Links to folders are followed
    for inputs (a ``data/`` that points at a mount) with a guard against loops, and not for
    outputs, where restoring through one would write outside the project.
    """
    found: list[tuple[str, os.stat_result]] = []
    visited: set[tuple[int, int]] = set()
    stack = [("", folder)]
    while stack:
        rel_dir, abs_dir = stack.pop()
        here = os.stat(abs_dir)
        if (here.st_dev, here.st_ino) in visited:
            continue
        visited.add((here.st_dev, here.st_ino))
        with os.scandir(abs_dir) as entries:
            for entry in entries:
                if entry.name in IGNORED_NAMES:
                    continue
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue
                rel = f"{rel_dir}{entry.name}"
                if stat_mod.S_ISDIR(st.st_mode):
                    if follow_dir_links or not entry.is_symlink():
                        stack.append((rel + "/", entry.path))
                elif stat_mod.S_ISREG(st.st_mode):
                    found.append((rel, st))
    return found


def content_of(root: str, rel: str, memo: StatMemo, exclude: tuple[str, ...] = (),
               follow_dir_links: bool = True) -> Content | None:
    """Content of ``rel`` (a file or folder under ``root``, or absolute); None if missing.

    Paths in ``exclude`` (relative to ``root``) are left out of a folder's tree; see
    :func:`walk_files` for ``follow_dir_links``.
    """
    path = os.path.join(root, rel)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if stat_mod.S_ISREG(st.st_mode):
        return Content(memo.digest(path, rel, st))
    if not stat_mod.S_ISDIR(st.st_mode):
        raise StoreError(f"{rel} is neither a regular file nor a folder (a pipe or a device cannot be hashed)")
    files = {}
    prefix = "" if rel == "." else rel + "/"
    for sub, sub_st in walk_files(path, follow_dir_links):
        full = prefix + sub
        if any(is_within(full, e) for e in exclude):
            continue
        files[sub] = memo.digest(os.path.join(path, sub), full, sub_st)
    return Content(tree_digest(files), files)
