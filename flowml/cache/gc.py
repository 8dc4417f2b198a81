"""``flowml gc``: give back the space of what no cache entry needs any more.

What goes: objects that no entry references, stat-memo rows of files that no longer
exist, logs of all but the most recent runs, and temp files a crash left in the store.
With ``superseded=True``, entries that are no node's latest key go first (so only the
current state of each pipeline stays restorable). A run holds the store's shared lock for
its whole life and gc takes it exclusively, so gc never removes an object that a running
step has just stored but not yet recorded.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from flowml.cache.store import ProjectCache
from flowml.errors import StoreError

KEEP_RUN_LOGS = 10


@dataclass
class GcReport:
    """What a collection removed (or, in a dry run, would remove)."""

    entries: int = 0
    objects: int = 0
    bytes: int = 0
    memo_rows: int = 0
    log_runs: int = 0

    def __str__(self) -> str:
        return (f"{self.entries} superseded entries, {self.objects} objects ({self.bytes / 1e6:.1f} MB), "
                f"{self.memo_rows} memo rows, {self.log_runs} old run logs")


def collect(cache: ProjectCache, superseded: bool = False, dry_run: bool = False) -> GcReport:
    """Remove what nothing needs (see the module docstring); ``dry_run`` only counts it.

    Raises:
        StoreError: when a run is using the store.
    """
    from flowml.tracking.stores import default_uri

    if superseded and cache.index.uri != default_uri(cache.root):
        raise StoreError(f"gc --superseded drops cache entries other workspaces may use; the tracking store "
                         f"{cache.index.uri} is shared, so it is refused (plain gc is safe)")
    report = GcReport()
    with cache.exclusive():
        current = cache.state.current_keys() if superseded else None
        if superseded and not current:
            # e.g. right after upgrading flowml, before any run recorded what the workspace holds:
            # every entry would look superseded, and the whole cache would go
            raise StoreError("gc --superseded needs to know what this workspace holds: run the pipeline "
                             "first (plain gc is safe now)")
        keep = cache.index.output_digests(current) | _workspace_digests(cache)
        gone = [p for p in cache.memo.rows if not os.path.lexists(os.path.join(cache.root, p))]
        report.memo_rows = len(gone)
        if superseded:
            report.entries = cache.index.drop_except(current, dry_run)
        if not dry_run:
            with cache.state.transaction():
                cache.state.drop_stat_memo(gone)
            shutil.rmtree(cache.objects.tmp, ignore_errors=True)
        _remove_objects(cache, keep, report, dry_run)
        _remove_old_logs(cache, report, dry_run)
    return report


def _workspace_digests(cache: ProjectCache) -> set[str]:
    """Files the workspace's own entries hold (they may be absent from a shared index)."""
    digests: set[str] = set()
    for entry in cache.state.all_entries():
        for content in entry.outputs.values():
            digests.update(content.files.values() if content.files is not None else [content.digest])
    return digests


def _remove_objects(cache: ProjectCache, keep: set[str], report: GcReport, dry_run: bool) -> None:
    root = cache.objects.root
    if not os.path.isdir(root):
        return
    for prefix in os.listdir(root):
        folder = os.path.join(root, prefix)
        if prefix == "tmp" or not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            if prefix + name in keep:
                continue
            path = os.path.join(folder, name)
            report.objects += 1
            report.bytes += os.path.getsize(path)
            if not dry_run:
                os.unlink(path)


def _remove_old_logs(cache: ProjectCache, report: GcReport, dry_run: bool) -> None:
    logs = os.path.join(cache.dir, "logs")
    if not os.path.isdir(logs):
        return
    runs = sorted(os.listdir(logs))  # run ids start with their time
    for run in runs[:-KEEP_RUN_LOGS]:
        report.log_runs += 1
        if not dry_run:
            shutil.rmtree(os.path.join(logs, run), ignore_errors=True)
