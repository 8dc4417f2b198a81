"""A pipeline run's page: its DAG drawn as SVG (laid out here, by :mod:`dag_layout`), each
step coloured by what happened to it, with why it ran, its cache key, the critical path and
the time the cache saved.

The parent run's ``pipeline.json`` artifact (written by the recorder when the pipeline ends)
is the source of truth: every step with its status, duration and reason, the edges, and each
step's run. While the pipeline is still running there is no such file yet; the steps are then
read from the child runs' tags and drawn without edges, and the page says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from fastapi import APIRouter, Request

from flowml.errors import TrackingError
from flowml.server.routes.artifacts import open_for_reading, run_folder
from flowml.server.security import artifact_path
from flowml.server.ui import dag_layout
from flowml.server.ui.render import error_page, page, run_duration

router = APIRouter()

SUMMARY = "pipeline.json"
MAX_SUMMARY_BYTES = 8 * 1024 * 1024
FIT_WIDTH = 1400  # a drawing up to this wide shrinks to fit the page; a wider one scrolls (its text stays legible)
STATES = ("ran", "cached", "failed", "skipped", "killed", "running")


@dataclass
class Step:
    """One node of the pipeline as the page shows it."""

    name: str
    state: str  # one of STATES
    duration_s: float | None = None
    reason: str = ""
    cache_key: str | None = None
    run_id: str | None = None  # its step run (None for a skipped step)
    source_run_id: str | None = None  # a cache hit: the run whose outputs it restored
    saved_s: float | None = None  # a cache hit: how long that run took
    error: str | None = None


@router.get("/runs/{run_id}/pipeline")
def pipeline_page(request: Request, run_id: str):
    store = request.app.state.store
    run = store.get_run(run_id)
    if run.data.tags.get("flowml.type") != "pipeline":
        return error_page(request, 404, f"run {run_id} is not a pipeline run (it has no tag flowml.type=pipeline)")
    experiment = store.get_experiment(run.info.experiment_id)
    steps, edges, has_summary, problem = load_steps(store, run, request.app.state.config.artifacts_destination)
    drawing = dag_layout.layout([s.name for s in steps], edges)
    # without the edges (a pipeline still running) there is no path to speak of
    path, path_total = dag_layout.critical_path({s.name: s.duration_s for s in steps}, edges) if edges else ([], 0.0)
    saved = run.data.metrics.get("time_saved_s")
    name = run.info.run_name or run_id[:8]
    return page(request, "pipeline.html", title=f"{name} · pipeline", section="experiments",
                crumbs=[("Experiments", "/"), (experiment.name, f"/experiments/{experiment.experiment_id}"),
                        (name, f"/runs/{run_id}"), ("Pipeline", None)],
                run=run, experiment=experiment, steps=steps, drawing=drawing, has_summary=has_summary, problem=problem,
                critical=path, critical_edges=set(zip(path, path[1:])), critical_total=path_total,
                counts={state: sum(s.state == state for s in steps) for state in STATES},
                time_saved=saved if saved is not None else sum(s.saved_s or 0 for s in steps),
                duration=run_duration(run.info), states=STATES, fit_width=FIT_WIDTH,
                label_width=dag_layout.NODE_W - 26)


def load_steps(store, run, destination: str) -> tuple[list[Step], list[tuple[str, str]], bool, str | None]:
    """``(steps, edges, from pipeline.json?, why pipeline.json could not be used)``: from the
    summary when there is one, else from the step runs; one step per name, with its savings."""
    document, problem = read_summary(run, destination)
    if document is not None:
        steps, edges = steps_from_summary(document), summary_edges(document)
    else:
        steps, edges = steps_from_runs(store.child_runs(run.info.run_id)), []
    steps = list({step.name: step for step in steps}.values())  # a name drawn twice would hide one box
    _add_savings(store, steps)
    return steps, edges, document is not None, problem


def read_summary(run, destination: str) -> tuple[dict | None, str | None]:
    """The run's ``pipeline.json`` and, when it cannot be used, why (None when it is simply not
    written yet, as while the pipeline runs)."""
    try:
        rel, full = artifact_path(run_folder(run.info.artifact_uri, destination), SUMMARY)
        handle, size = open_for_reading(full, rel)
    except TrackingError as exc:
        return None, None if exc.error_code == "RESOURCE_DOES_NOT_EXIST" else str(exc)
    with handle:
        if size > MAX_SUMMARY_BYTES:
            return None, f"{SUMMARY} is {size} bytes, over the {MAX_SUMMARY_BYTES} this page reads"
        raw = handle.read()
    try:
        document = json.loads(raw)
    except ValueError as exc:
        return None, f"{SUMMARY} is not valid JSON ({exc})"
    if not isinstance(document, dict) or not isinstance(document.get("steps"), list):
        return None, f"{SUMMARY} has no list of steps"
    return document, None


def steps_from_summary(document: dict) -> list[Step]:
    """The steps as ``pipeline.json`` records them (a step's run from the ``runs`` map when the
    step itself does not say)."""
    runs = document.get("runs") if isinstance(document.get("runs"), dict) else {}
    steps = []
    for item in document["steps"]:
        if not isinstance(item, dict) or not item.get("name"):
            continue
        name = str(item["name"])
        steps.append(Step(name, _state(item.get("status")), _seconds(item.get("duration_s")), str(item.get("reason") or ""),
                          _text(item.get("cache_key")), _text(item.get("run_id") or runs.get(name)),
                          _text(item.get("source_run_id")), error=_text(item.get("error"))))
    return steps


def summary_edges(document: dict) -> list[tuple[str, str]]:
    edges = document.get("edges") if isinstance(document.get("edges"), list) else []
    return [(str(e[0]), str(e[1])) for e in edges if isinstance(e, list) and len(e) == 2]


def steps_from_runs(children: list) -> list[Step]:
    """The steps of a pipeline still running, from its step runs' tags (a step that has not
    ended yet has no state tag: it is running)."""
    steps = []
    for child in children:
        tags = child.data.tags
        state = tags.get("flowml.state") or ("running" if child.info.status == "RUNNING" else child.info.status.lower())
        duration = _seconds(tags.get("flowml.duration_s"))
        steps.append(Step(tags.get("flowml.node") or child.info.run_name or child.info.run_id, _state(state),
                          duration if duration is not None else run_duration(child.info), tags.get("flowml.reason", ""),
                          tags.get("flowml.cache_key"), child.info.run_id, tags.get("flowml.cache_source_run"),
                          error=tags.get("flowml.error")))
    return steps


def _add_savings(store, steps: list[Step]) -> None:
    """A cache hit saved what its source run took (that run's recorded duration)."""
    for step in steps:
        if step.state != "cached" or not step.source_run_id:
            continue
        try:
            source = store.get_run(step.source_run_id)
        except TrackingError:
            continue  # the source run was deleted for good: nothing to say what it cost
        recorded = _seconds(source.data.tags.get("flowml.duration_s"))
        step.saved_s = recorded if recorded is not None else run_duration(source.info)


def _state(value) -> str:
    value = str(value or "").lower()
    return {"finished": "ran", "scheduled": "running", "interrupted": "killed"}.get(value, value if value in STATES else "skipped")


def _seconds(value) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _text(value) -> str | None:
    return str(value) if value else None
