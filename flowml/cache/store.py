"""One project's cache: the index, the object store and the hashing memos under ``.flowml/``.

This is the face the scheduler sees: compute a node's manifest and key, find an entry,
check or restore its outputs, save new outputs and record the entry. Hashing and
copying (:meth:`save_outputs`) are safe to call from worker threads; everything that
touches the database stays on the calling thread.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from flowml.cache.codedeps import code_files, imports_of, python_entries
from flowml.cache.hashing import Content, StatMemo, content_of, tree_digest, walk_files
from flowml.cache.index import CacheIndex, Entry
from flowml.cache.keys import MISSING
from flowml.cache.locks import NodeLock, StoreLock
from flowml.cache.objects import ObjectStore
from flowml.errors import StoreError
from flowml.spec.node import is_within

STORE_DIR = ".flowml"

Overlay = dict[str, "Content | None"]  # outputs produced in this run; None: not known yet


class ProjectCache:
    """The ``.flowml`` store of the project rooted at ``root``."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.dir = os.path.join(root, STORE_DIR)
        _ignore_in_git(self.dir)
        self.store_lock = StoreLock(self.dir)
        self.index_path = os.path.join(self.dir, "flowml.db")
        self.index = CacheIndex(self.index_path)
        self.objects = ObjectStore(os.path.join(self.dir, "cache", "objects"))
        self.memo = StatMemo(self.index.load_stat_memo())
        self._imports: dict[str, list] = {}
        self._new_imports: dict[str, list] = {}

    # keys ----------------------------------------------------------------------------

    def manifest(self, *, command: Any, template: Any, env_vars: dict[str, str], params: dict[str, Any],
                 environment: dict[str, str], inputs: list[str], outputs: list[str], cache_version: int | None,
                 metrics: str | None, producers: dict[str, str], overlay: Overlay) -> dict[str, Any]:
        """The components of a node's cache key (see :mod:`flowml.cache.keys`)."""
        return {
            "command": command,
            "template": template,
            "env_vars": env_vars,
            "params": params,
            "environment": environment,
            "inputs": {p: self.input_digest(p, overlay, tuple(outputs)) for p in inputs},
            "code": self.code_digests(command, env_vars.get("PYTHONPATH", "")),
            "outputs": outputs,
            "metrics": metrics,
            "cache_version": cache_version,
            "producers": producers,
        }

    def input_digest(self, path: str, overlay: Overlay, own_outputs: tuple[str, ...] = ()) -> str | None:
        """Digest of an input, taking outputs of this run from ``overlay`` rather than the disk.

        Returns None when it depends on an output not produced yet, ``"missing"`` when absent.
        """
        probe = path
        while probe:
            if probe in overlay:
                return _sub_digest(overlay[probe], path[len(probe) + 1:] if probe != path else "")
            parent = os.path.dirname(probe)
            probe = parent if parent != probe else ""
        inner = [o for o in overlay if is_within(o, path) and o not in own_outputs]
        content = content_of(self.root, path, self.memo, tuple(inner) + own_outputs)
        if not inner:
            return content.digest if content else MISSING
        if any(overlay[o] is None for o in inner):
            return None
        files = dict(content.files or {}) if content else {}
        for out in inner:
            rel = out[len(path) + 1:] if path != "." else out
            produced = overlay[out]
            if produced.files is None:
                files[rel] = produced.digest
            else:
                files.update({f"{rel}/{k}": v for k, v in produced.files.items()})
        return tree_digest(files)

    def code_digests(self, command: Any, pythonpath: str = "") -> dict[str, str]:
        """Digests of the Python files a command runs, found statically."""
        entries = python_entries(command)
        if not entries:
            return {}
        digests: dict[str, str] = {}

        def imports(rel: str) -> list:
            digest = digests[rel] = self.memo.digest(os.path.join(self.root, rel), rel)
            if digest not in self._imports:
                self._imports.update(self.index.code_imports([digest]))
            if digest not in self._imports:
                with open(os.path.join(self.root, rel), "rb") as fh:
                    self._imports[digest] = self._new_imports[digest] = imports_of(fh.read())
            return self._imports[digest]

        files = code_files(self.root, entries, imports, pythonpath)
        return {f: digests[f] for f in files}

    # outputs -------------------------------------------------------------------------

    def current(self, path: str) -> Content | None:
        """What the output ``path`` holds on disk now (links to folders inside it not followed)."""
        return content_of(self.root, path, self.memo, follow_dir_links=False)

    def outputs_state(self, entry: Entry) -> tuple[dict[str, Content | None], list[str], list[str]]:
        """For an entry: the current content of each output, those to restore, those lost.

        An output is fine when its content matches, restorable when the store holds it.
        """
        present, restore, lost = {}, [], []
        for path, want in entry.outputs.items():
            have = present[path] = self.current(path)
            if have is not None and have.digest == want.digest:
                continue
            (restore if self.objects.has_content(want) else lost).append(path)
        return present, restore, lost

    def restore(self, entry: Entry, paths: list[str], present: dict[str, Content | None]) -> None:
        """Copy ``paths`` of ``entry`` back from the object store.

        A link in an output's place or inside an output folder is replaced, never written
        through; folders above an output are the user's layout and are followed, as the
        step itself would follow them.
        """
        for path in paths:
            self.objects.restore(entry.outputs[path], os.path.join(self.root, path), present.get(path))

    def save_outputs(self, outputs: list[str]) -> tuple[dict[str, Content], list[str]]:
        """Put each output into the object store; returns their contents and the missing ones.

        A file already in the store (same digest by the memo) is not read again; a new one is
        read once, copying and hashing in one pass.
        """
        saved: dict[str, Content] = {}
        missing = []
        for path in outputs:
            full = os.path.join(self.root, path)
            if not os.path.lexists(full):
                missing.append(path)
            elif os.path.isdir(full):
                files = {}
                prefix = path + "/"
                for rel, st in walk_files(full, follow_dir_links=False):
                    files[rel] = self._save_file(os.path.join(full, rel), prefix + rel, st)
                saved[path] = Content(tree_digest(files), files)
            else:
                saved[path] = Content(self._save_file(full, path, os.stat(full)))
        return saved, missing

    def _save_file(self, full: str, rel: str, st: os.stat_result) -> str:
        known = self.memo.known(rel, st)
        digest = self.objects.put(full, known)
        if known is None:
            self.memo.remember(rel, st, digest)
        return digest

    # records -------------------------------------------------------------------------

    def lookup(self, key: str | None) -> Entry | None:
        return self.index.get(key) if key else None

    def node_lock(self, name: str) -> NodeLock:
        """A cross-process lock held while ``name`` runs and until its entry is recorded."""
        return NodeLock(os.path.join(self.dir, "locks"), name)

    def peek(self, key: str) -> Entry | None:
        """Look ``key`` up on a fresh connection (safe from a worker thread)."""
        index = CacheIndex(self.index_path)
        try:
            return index.get(key)
        finally:
            index.close()

    def record(self, pipeline: str, entry: Entry) -> None:
        """Store a new entry and make it its node's latest key, in one transaction (so an entry
        recorded just before a crash is not taken for a superseded one)."""
        with self.index.transaction():
            self.index.put(pipeline, entry)
            self.index.set_last_keys(pipeline, {entry.node: entry.key})

    def flush(self, pipeline: str, keys: dict[str, str]) -> None:
        """Save memos and each node's latest key in one transaction."""
        if not (self.memo.changed or self._new_imports or keys):
            return
        with self.index.transaction():
            self.index.save_stat_memo(self.memo.changed)
            self.index.save_code_imports(self._new_imports)
            self.index.set_last_keys(pipeline, keys)
        self.memo.changed.clear()
        self._new_imports.clear()

    @contextlib.contextmanager
    def exclusive(self):
        """``with cache.exclusive():`` no run is using the store meanwhile (for gc).

        Raises:
            StoreError: when a run holds the store.
        """
        if not self.store_lock.exclusive():
            raise StoreError(f"a flowml run is using {self.dir}; try again when it has finished")
        try:
            yield
        finally:
            self.store_lock.shared()

    def close(self) -> None:
        self.index.close()
        self.store_lock.close()


def _ignore_in_git(folder: str) -> None:
    """``.flowml/`` holds machine state, never source: keep it out of git without asking the user."""
    marker = os.path.join(folder, ".gitignore")
    if not os.path.exists(marker):
        os.makedirs(folder, exist_ok=True)
        with open(marker, "w", encoding="utf-8") as fh:
            fh.write("# written by flowml: everything here is a cache or a log\n*\n")


def _sub_digest(content: Content | None, sub: str) -> str | None:
    """Digest of ``sub`` inside an output (the whole output when ``sub`` is empty)."""
    if content is None:
        return None
    if not sub:
        return content.digest
    if content.files is None:
        return MISSING
    if sub in content.files:
        return content.files[sub]
    inner = {k[len(sub) + 1:]: v for k, v in content.files.items() if k.startswith(sub + "/")}
    return tree_digest(inner) if inner else MISSING

