"""The shared cache index: which key produced which outputs, kept in the tracking store.

Living in the tracking store is what lets a team share cache hits: point two machines at
one PostgreSQL (or, later, a flowml server) and an entry one of them records is a hit for
the other. The store is opened on first use, so a run with nothing to do never loads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flowml.cache.hashing import Content
from flowml.tracking.entities import CacheRecord


@dataclass
class Entry:
    """One successful execution: its key, components, outputs, metrics and the step run that made it."""

    key: str
    node: str
    manifest: dict[str, Any]
    outputs: dict[str, Content]
    metrics: dict[str, float]
    duration_s: float | None = None
    run_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "node": self.node, "manifest": self.manifest,
                "outputs": {p: c.to_json() for p, c in self.outputs.items()}, "metrics": self.metrics,
                "duration_s": self.duration_s, "run_id": self.run_id}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Entry":
        return cls(data["key"], data["node"], data["manifest"],
                   {p: Content.from_json(c) for p, c in data["outputs"].items()}, data.get("metrics") or {},
                   data.get("duration_s"), data.get("run_id"))


class CacheIndex:
    """Cache entries in the tracking store at ``uri`` (opened lazily, safe from any thread)."""

    def __init__(self, uri: str, root: str) -> None:
        self.uri = uri
        self.root = root  # the project, whose .flowml/ holds artifacts when the store is not SQLite
        self._store = None

    @property
    def store(self):
        if self._store is None:
            from flowml.tracking.stores import get_store

            self._store = get_store(self.uri, self.root)
        return self._store

    def get(self, key: str) -> Entry | None:
        record = self.store.get_cache_entry(key)
        if record is None:
            return None
        return Entry(record.key, record.node, json.loads(record.manifest),
                     {p: Content.from_json(c) for p, c in json.loads(record.outputs).items()},
                     json.loads(record.metrics) if record.metrics else {}, record.duration_s, record.run_id)

    def put(self, pipeline: str, entry: Entry) -> None:
        self.store.put_cache_entry(CacheRecord(
            entry.key, pipeline, entry.node, canonical_json(entry.manifest),
            canonical_json({p: c.to_json() for p, c in entry.outputs.items()}), canonical_json(entry.metrics), entry.duration_s,
            entry.run_id))

    def output_digests(self, keys: set[str] | None = None) -> set[str]:
        """Digest of every file that the entries (all, or those of ``keys``) hold."""
        digests: set[str] = set()
        for outputs in self.store.cache_outputs(keys):
            for content in json.loads(outputs).values():
                files = content.get("files")
                digests.update(files.values() if files is not None else [content["digest"]])
        return digests

    @property
    def remote(self) -> bool:
        """Whether the index is a tracking server's: then outputs travel as run artifacts."""
        return self.uri.startswith(("http://", "https://"))

    def run_artifacts(self, run_id: str):
        """The artifact repository of run ``run_id`` in the tracking store."""
        from flowml.artifacts import repository

        return repository(self.store.get_run(run_id).info.artifact_uri, self.uri)

    def drop_except(self, keep: set[str], dry_run: bool = False) -> int:
        """Delete the entries whose key is not in ``keep`` (only count them with ``dry_run``)."""
        return self.store.drop_cache_entries(keep, dry_run)


def canonical_json(value: Any) -> str:
    """Sorted, compact JSON: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
