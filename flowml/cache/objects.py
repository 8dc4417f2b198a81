"""Content-addressed object store under ``.flowml/cache/objects``.

An object is a file named by its digest. Objects are written through a temporary file
in the store, flushed with fsync and renamed into place, so a crash leaves either no
object or a whole one, never a torn one. Saving copies and hashes in one pass, so a
new output is read once. Objects are read-only; restoring copies them out (a hard link
would let a user's later edit of the output corrupt the cache).
"""

from __future__ import annotations

import os
import shutil
import tempfile

from flowml.cache.hashing import Content, hash_file
from flowml.errors import StoreError


class ObjectStore:
    """Objects by digest in ``root``."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.tmp = os.path.join(root, "tmp")

    def path(self, digest: str) -> str:
        return os.path.join(self.root, digest[:2], digest[2:])

    def has(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def has_content(self, content: Content) -> bool:
        """Whether every file of ``content`` can be restored from the store."""
        if content.files is None:
            return self.has(content.digest)
        return all(self.has(d) for d in content.files.values())

    def put(self, src: str, digest: str | None = None) -> str:
        """Store the file ``src``; return its digest. Skips the copy when ``digest`` is stored."""
        if digest is not None and self.has(digest):
            return digest
        os.makedirs(self.tmp, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.tmp)
        try:
            with os.fdopen(fd, "wb") as fout:
                digest = _copy_hashing(src, fout)
            os.chmod(tmp, 0o444)
            dest = self.path(digest)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            os.replace(tmp, dest)
            return digest
        except BaseException:
            _unlink(tmp)
            raise

    def adopt(self, src: str, digest: str) -> None:
        """Store a downloaded file that must hash to ``digest`` (else StoreError, nothing kept)."""
        if self.put(src) != digest:
            raise StoreError(f"a cache object fetched from the tracking server does not match its digest {digest}")

    def restore_file(self, digest: str, dest: str) -> None:
        """Write the object ``digest`` to ``dest`` atomically (a temp file beside it, then rename).

        The copy is hashed on the way: an object that does not match its name (a disk that
        filled up under another tool, a bit flip) is removed and reported, never restored.
        """
        os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
        if os.path.isdir(dest) and not os.path.islink(dest):
            shutil.rmtree(dest)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest) or ".", prefix=".flowml-restore-")
        try:
            with os.fdopen(fd, "wb") as fout:
                got = _copy_hashing(self.path(digest), fout)
            if got != digest:
                _unlink(self.path(digest))
                raise StoreError(f"cache object {digest} was corrupt and has been removed; rerun to rebuild it")
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        except BaseException:
            _unlink(tmp)
            raise

    def restore(self, content: Content, dest: str, present: Content | None = None) -> None:
        """Make ``dest`` hold exactly ``content``, given what it holds now (``present``).

        Only files that differ are copied; a folder loses files that are not in ``content``.
        """
        if content.files is None:
            self.restore_file(content.digest, dest)
            return
        if os.path.islink(dest) or (os.path.lexists(dest) and not os.path.isdir(dest)):
            os.unlink(dest)  # a link in the output's place is replaced, never followed
        os.makedirs(dest, exist_ok=True)
        _remove_links(dest)
        have = (present.files or {}) if present is not None else {}
        for rel, digest in content.files.items():
            if have.get(rel) != digest:
                self.restore_file(digest, os.path.join(dest, rel))
        _remove_extra(dest, set(content.files))


def _copy_hashing(src: str, out) -> str:
    """Copy the file ``src`` into the open file ``out`` and fsync it; return the content's digest.

    ``out`` is buffered, so a short write (a full disk) raises instead of passing silently.
    """
    digest = hash_file(src, copy_to=out)
    out.flush()
    os.fsync(out.fileno())
    return digest


def _remove_links(folder: str) -> None:
    """Unlink every symbolic link under ``folder``: the stored content has none (links to files
    were saved as files, links to folders not at all), and writing through one could reach
    outside the project."""
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                os.unlink(path)


def _remove_extra(folder: str, keep: set[str]) -> None:
    for dirpath, dirnames, filenames in os.walk(folder, topdown=False):
        rel_dir = os.path.relpath(dirpath, folder)
        for name in filenames:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if rel not in keep:
                os.unlink(os.path.join(dirpath, name))
        if dirpath != folder and not os.listdir(dirpath):
            os.rmdir(dirpath)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
