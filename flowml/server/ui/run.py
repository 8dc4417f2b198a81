"""A run's page and its logs.

- ``GET /runs/{id}``: state (with the cache hit and the run it was restored from), times,
  user, source, git commit and dirty flag, why it ran, the pipeline run above a step run,
  params, metrics (last value and step, each linking to its chart), tags (flowml's and
  MLflow's own apart, folded), child runs, logged models, the tail of the step's stdout and
  stderr, and the artifact tree;
- ``GET /runs/{id}/logs/{stream}``: a log a window of 256 KB at a time (``?start=`` pages
  forward, ``?end=`` back), with links to the whole file.

A step's logs are its artifacts ``logs/stdout.txt`` and ``logs/stderr.txt`` (the recorder writes
them there as the step runs). Only their last lines are read for the run page.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request

from flowml.errors import TrackingError
from flowml.server.routes.artifacts import open_for_reading
from flowml.server.security import artifact_path
from flowml.server.ui.artifacts import artifact_tree, parent_label, run_crumbs, run_root
from flowml.server.ui.previews import format_size, tail_lines, window
from flowml.server.ui.render import SYSTEM_TAGS, page, user_tags

router = APIRouter()

STREAMS = ("stdout", "stderr")


@dataclass
class LogTail:
    stream: str
    lines: list[str]
    whole: bool  # the lines are the whole log
    size: int


@dataclass
class RunFiles:
    """The artifacts part of a run page: the tree, or why it cannot be shown."""

    tree: list
    more: int = 0
    logs: list[LogTail] | None = None
    unavailable: str = ""


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: str):
    store = request.app.state.store
    run = store.get_run(run_id)
    tags = run.data.tags
    parent_id = tags.get("mlflow.parentRunId")
    children = store.child_runs(run_id)
    return page(request, "run.html", title=run.info.run_name or run_id, section="experiments",
                crumbs=run_crumbs(store, run), run=run, tags=tags, parent_id=parent_id,
                parent_name=parent_label(store, parent_id) if parent_id else None, children=children,
                user_tags=user_tags(tags),
                system_tags={k: v for k, v in tags.items() if k.startswith(SYSTEM_TAGS)},
                metrics=sorted(run.data.latest.values(), key=lambda m: m.key), artifacts=_artifacts(request, run),
                size=format_size)


def _artifacts(request: Request, run) -> RunFiles:
    """The tree and the log tails, or the reason this server cannot show them."""
    try:
        root = run_root(request, run)
        tree, more = artifact_tree(root)
        return RunFiles(tree, more, [tail for tail in (_tail(root, s) for s in STREAMS) if tail])
    except TrackingError as exc:
        return RunFiles([], unavailable=str(exc))


def _tail(root: str, stream: str) -> LogTail | None:
    """The last lines of a log, or None if the run has no such log."""
    rel, full = artifact_path(root, f"logs/{stream}.txt")
    try:
        handle, size = open_for_reading(full, rel)
    except TrackingError:
        return None
    with handle:
        lines, whole = tail_lines(handle)
    return LogTail(stream, lines, whole, size)


@router.get("/runs/{run_id}/logs/{stream}")
def log_page(request: Request, run_id: str, stream: str, start: int | None = None, end: int | None = None):
    if stream not in STREAMS:
        raise TrackingError(f"no log '{stream}': a step's logs are {' and '.join(STREAMS)}", "RESOURCE_DOES_NOT_EXIST")
    store = request.app.state.store
    run = store.get_run(run_id)
    rel, full = artifact_path(run_root(request, run), f"logs/{stream}.txt")
    handle, _size = open_for_reading(full, rel)
    with handle:
        part = window(handle, start, end)
    return page(request, "run_log.html", title=f"{stream} · {run.info.run_name or run_id[:8]}", section="experiments",
                crumbs=run_crumbs(store, run, f"/runs/{run_id}") + [(stream, None)], run=run, stream=stream,
                path=rel, part=part, size=format_size)
