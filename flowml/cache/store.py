"""One project's cache: the workspace state, the shared index, the object store and the
hashing memos.

This is the face the scheduler sees: compute a node's manifest and key, find an entry,
check or restore its outputs, save new outputs and record the entry. An entry is looked up
first among the ones this workspace's outputs came from (``state.db``), and only then in
the shared index in the tracking store, so a run where nothing changed never opens the
tracking store. Hashing, copying (:meth:`save_outputs`) and :meth:`peek` are safe to call
from worker threads; the workspace state stays on the calling thread.
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
from flowml.cache.state import WorkspaceState
from flowml.errors import StoreError
from flowml.spec.node import is_within

STORE_DIR = ".flowml"

Overlay = dict[str, "Content | None"]  # outputs produced in this run; None: not known yet


class ProjectCache:
    """The ``.flowml`` store of the project rooted at ``root``."""

    def __init__(self, root: str, tracking_uri: str | None = None) -> None:
        from flowml.tracking.stores import resolve_uri

        self.root = root
        self.dir = os.path.join(root, STORE_DIR)
        _ignore_in_git(self.dir)
        self.store_lock = StoreLock(self.dir)
        self.state = WorkspaceState(os.path.join(self.dir, "state.db"))
        self.index = CacheIndex(resolve_uri(tracking_uri, root), root)
        self.objects = ObjectStore(os.path.join(self.dir, "cache", "objects"))
        self.memo = StatMemo(self.state.load_stat_memo())
        self.last: dict[str, dict[str, Entry]] = {}  # pipeline -> node -> the entry its outputs came from
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
                self._imports.update(self.state.code_imports([digest]))
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
        present = {path: self.current(path) for path in entry.outputs}
        stale = [p for p, want in entry.outputs.items() if present[p] is None or present[p].digest != want.digest]
        if any(not self.objects.has_content(entry.outputs[p]) for p in stale):
            self.fetch(entry)  # from the tracking server, when the objects travel there
        restore = [p for p in stale if self.objects.has_content(entry.outputs[p])]
        return present, restore, [p for p in stale if p not in restore]

    def fetch(self, entry: Entry) -> None:
        """With a tracking server's index, download the objects of ``entry`` this store lacks
        from the artifacts of the run that made them (see :meth:`publish`); each is checked
        against its digest. Anything that cannot be fetched stays missing: the step runs."""
        if not self.index.remote or not entry.run_id:
            return
        missing = {d for c in entry.outputs.values() for d in _digests_of(c) if not self.objects.has(d)}
        if not missing:
            return
        import tempfile

        from flowml.errors import FlowmlError

        try:
            repo = self.index.run_artifacts(entry.run_id)
            with tempfile.TemporaryDirectory(dir=self.dir) as tmp:
                for digest in sorted(missing):
                    local = repo.download_artifacts(_object_path(digest), tmp)
                    self.objects.adopt(local, digest)
        except (FlowmlError, OSError, ValueError):  # ValueError: a reply that is not what we asked for
            return

    def publish(self, entry: Entry) -> None:
        """With a tracking server's index, upload the objects of ``entry`` as artifacts of the
        run that made it (under ``flowml-objects/``), so another machine can restore them.
        A failed upload only warns: the step succeeded, and other machines will run it."""
        if not self.index.remote or not entry.run_id:
            return
        from flowml.errors import FlowmlError

        try:
            repo = self.index.run_artifacts(entry.run_id)
            for digest in sorted({d for c in entry.outputs.values() for d in _digests_of(c)}):
                repo.log_artifact(self.objects.path(digest), _object_path(digest).rsplit("/", 1)[0])
        except (FlowmlError, OSError, ValueError) as exc:
            import sys

            print(f"warning: {entry.node}'s outputs were not uploaded to the tracking server ({exc}); "
                  "other machines will run it", file=sys.stderr, flush=True)

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

    def last_entries(self, pipeline: str) -> dict[str, Entry]:
        """The entry each node's outputs in this workspace came from."""
        if pipeline not in self.last:
            self.last[pipeline] = self.state.last_entries(pipeline)
        return self.last[pipeline]

    def lookup(self, key: str | None) -> Entry | None:
        """The entry for ``key``: one this workspace holds, else the shared index's."""
        if not key:
            return None
        for entries in self.last.values():
            for entry in entries.values():
                if entry.key == key:
                    return entry
        return self.index.get(key)

    def node_lock(self, name: str) -> NodeLock:
        """A cross-process lock held while ``name`` runs and until its entry is recorded."""
        return NodeLock(os.path.join(self.dir, "locks"), name)

    def peek(self, key: str) -> Entry | None:
        """Look ``key`` up in the shared index (safe from a worker thread)."""
        return self.index.get(key)

    def record(self, pipeline: str, entry: Entry, published: bool = False) -> None:
        """Store a new entry in the shared index (its objects first, when they must travel,
        unless ``published``: a remote executor's step uploaded them), then make it its node's
        state here (so an entry recorded just before a crash is found again by key)."""
        if not published:
            self.publish(entry)
        self.index.put(pipeline, entry)
        self.last_entries(pipeline)[entry.node] = entry
        with self.state.transaction():
            self.state.set_last_entries(pipeline, [entry])

    def flush(self, pipeline: str, entries: list[Entry]) -> None:
        """Save memos and the entries nodes now hold (restored or adopted) in one transaction."""
        if not (self.memo.changed or self._new_imports or entries):
            return
        self.last_entries(pipeline).update({e.node: e for e in entries})
        with self.state.transaction():
            self.state.save_stat_memo(self.memo.changed)
            self.state.save_code_imports(self._new_imports)
            self.state.set_last_entries(pipeline, entries)
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
        self.state.close()
        self.store_lock.close()


def _ignore_in_git(folder: str) -> None:
    """``.flowml/`` holds machine state, never source: keep it out of git without asking the user."""
    marker = os.path.join(folder, ".gitignore")
    if not os.path.exists(marker):
        os.makedirs(folder, exist_ok=True)
        with open(marker, "w", encoding="utf-8") as fh:
            fh.write("# written by flowml: everything here is a cache or a log\n*\n")


def _digests_of(content: Content) -> list[str]:
    return list(content.files.values()) if content.files is not None else [content.digest]


def _object_path(digest: str) -> str:
    """Where an object travels among a run's artifacts: its place in the object store."""
    return f"flowml-objects/{digest[:2]}/{digest[2:]}"


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

