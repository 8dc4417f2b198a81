"""The module-level tracking API (``flowml.start_run``, ``flowml.log_metric`` ...), with
MLflow's names and semantics.

A stack of active runs per thread. Logging with no active run starts one, as MLflow does.
Inside a pipeline step, ``FLOWML_RUN_ID`` names the step's run, so the first
``start_run()`` or ``log_*`` call resumes it and everything lands there with no setup;
``FLOWML_TRACKING_URI`` names its store. (``MLFLOW_*`` variables are MLflow's: they name
runs and stores of MLflow, so flowml does not read them.) The first run a process starts
marks runs that crashed processes left RUNNING as KILLED.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import Any, Iterable, Sequence

from flowml.errors import TrackingError
from flowml.tracking.client import FlowmlClient, all_pages, current_user
from flowml.tracking.entities import (DEFAULT_EXPERIMENT_ID, Experiment, LoggedModel, Metric, Run, RunStatus, ViewType,
                                      now_ms)

_state = threading.local()
_uri: str | None = None
_experiment_id: str | None = None
_clients: dict[str | None, FlowmlClient] = {}
_last_run_id: str | None = None
_swept: set[str] = set()  # tracking URIs whose orphaned runs this process has marked


class ActiveRun(Run):
    """The run ``start_run`` returns; ``with`` ends it (FINISHED, or FAILED on an exception)."""

    def __init__(self, run: Run) -> None:
        super().__init__(run.info, run.data)

    def __enter__(self) -> "ActiveRun":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            status = RunStatus.FINISHED
        else:
            status = RunStatus.KILLED if issubclass(exc_type, KeyboardInterrupt) else RunStatus.FAILED
        end_run(status)
        return False


def _stack() -> list[ActiveRun]:
    if not hasattr(_state, "runs"):
        _state.runs = []
    return _state.runs


def _client() -> FlowmlClient:
    client = _clients.get(_uri)
    if client is None:
        client = _clients[_uri] = FlowmlClient(_uri)
    return client


# configuration -------------------------------------------------------------------------

def set_tracking_uri(uri: str | os.PathLike) -> None:
    """Use the store at ``uri`` (``sqlite:///path``, ``postgresql://...``); a bare path means SQLite."""
    global _uri
    text = os.fspath(uri)
    _uri = text if "://" in text else "sqlite:///" + os.path.abspath(text)


def get_tracking_uri() -> str:
    return _client().tracking_uri


def set_experiment(experiment_name: str | None = None, experiment_id: str | None = None) -> Experiment:
    """Make an experiment the active one, creating it by name when it does not exist."""
    global _experiment_id
    client = _client()
    if (experiment_name is None) == (experiment_id is None):
        raise TrackingError("set_experiment takes exactly one of experiment_name and experiment_id")
    if experiment_id is not None:
        experiment = client.get_experiment(experiment_id)
    else:
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is None:
            try:
                client.create_experiment(experiment_name)
            except TrackingError as exc:  # created meanwhile by another process
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            experiment = client.get_experiment_by_name(experiment_name)
    if experiment.lifecycle_stage != "active":
        raise TrackingError(f"experiment '{experiment.name}' is deleted; restore it first", "INVALID_STATE")
    _experiment_id = experiment.experiment_id
    return experiment


def _default_experiment_id() -> str:
    if _experiment_id is not None:
        return _experiment_id
    name = os.environ.get("FLOWML_EXPERIMENT_NAME")
    if name:
        return set_experiment(name).experiment_id
    return os.environ.get("FLOWML_EXPERIMENT_ID") or DEFAULT_EXPERIMENT_ID


def client() -> FlowmlClient:
    """The client of the store the fluent API logs to (what ``log_model`` works through)."""
    return _client()


def active_experiment_id() -> str:
    """The experiment new runs and logged models go to: ``set_experiment``'s, else
    ``FLOWML_EXPERIMENT_NAME``/``FLOWML_EXPERIMENT_ID``, else the default one."""
    return _default_experiment_id()


# runs ----------------------------------------------------------------------------------

def start_run(run_id: str | None = None, experiment_id: str | None = None, run_name: str | None = None,
              nested: bool = False, parent_run_id: str | None = None, tags: dict[str, Any] | None = None,
              description: str | None = None) -> ActiveRun:
    """Start a run, or resume one by id (``FLOWML_RUN_ID`` inside a pipeline step).

    Raises:
        TrackingError: when a run is active and ``nested`` is false, or the run is deleted.
    """
    global _last_run_id
    stack = _stack()
    if stack and not nested:
        raise TrackingError(f"run {stack[-1].info.run_id} is already active; end it with flowml.end_run(), "
                            "or pass nested=True to start a run inside it", "INVALID_STATE")
    client = _client()
    resume = run_id or (None if stack else os.environ.get("FLOWML_RUN_ID"))
    if resume:
        run = client.get_run(resume)
        if run.info.lifecycle_stage != "active":
            raise TrackingError(f"run {resume} is deleted; restore it to resume it", "INVALID_STATE")
        client.update_run(resume, status=RunStatus.RUNNING, name=run_name)
        if tags:
            client.log_batch(resume, tags=tags)
        run = client.get_run(resume)
    else:
        if client.tracking_uri not in _swept:
            client.mark_orphans()
            _swept.add(client.tracking_uri)
        all_tags = _context_tags()
        all_tags.update(tags or {})
        parent = parent_run_id or (stack[-1].info.run_id if nested and stack else None)
        if parent:
            all_tags["mlflow.parentRunId"] = parent
        if description:
            all_tags["mlflow.note.content"] = description
        run = client.create_run(experiment_id or _default_experiment_id(), tags=all_tags, run_name=run_name)
    active = ActiveRun(run)
    stack.append(active)
    _last_run_id = run.info.run_id
    return active


def end_run(status: str = RunStatus.FINISHED) -> None:
    """End the innermost active run (no-op when none is active)."""
    stack = _stack()
    if stack:
        run = stack.pop()
        _client().set_terminated(run.info.run_id, status)


def active_run() -> ActiveRun | None:
    stack = _stack()
    return stack[-1] if stack else None


def last_active_run() -> Run | None:
    run = active_run()
    if run is not None:
        return run
    return get_run(_last_run_id) if _last_run_id else None


def _run_id() -> str:
    """The active run's id, starting a run when none is active (MLflow's behaviour)."""
    run = active_run() or start_run()
    return run.info.run_id


def _context_tags() -> dict[str, str]:
    tags = {"mlflow.user": current_user(), "mlflow.source.type": "LOCAL",
            "mlflow.source.name": os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else "<console>"}
    from flowml.tracking.gitinfo import git_tags

    tags.update(git_tags(os.getcwd()))
    return tags


# data ----------------------------------------------------------------------------------

def log_param(key: str, value: Any) -> Any:
    return _client().log_param(_run_id(), key, value)


def log_params(params: dict[str, Any]) -> None:
    _client().log_batch(_run_id(), params=params)


def log_metric(key: str, value: float, step: int | None = None, timestamp: int | None = None) -> None:
    _client().log_metric(_run_id(), key, value, timestamp, step)


def log_metrics(metrics: dict[str, float], step: int | None = None, timestamp: int | None = None) -> None:
    ts = timestamp if timestamp is not None else now_ms()
    _client().log_batch(_run_id(), metrics=[Metric(k, v, ts, step or 0) for k, v in metrics.items()])


def log_batch(metrics: Iterable[Metric] = (), params: Any = (), tags: Any = ()) -> None:
    _client().log_batch(_run_id(), metrics, params, tags)


def set_tag(key: str, value: Any) -> None:
    _client().set_tag(_run_id(), key, value)


def set_tags(tags: dict[str, Any]) -> None:
    _client().log_batch(_run_id(), tags=tags)


def delete_tag(key: str) -> None:
    _client().delete_tag(_run_id(), key)


def log_artifact(local_path: str, artifact_path: str | None = None) -> None:
    _client().log_artifact(_run_id(), local_path, artifact_path)


def log_artifacts(local_dir: str, artifact_path: str | None = None) -> None:
    _client().log_artifacts(_run_id(), local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> None:
    _client().log_text(_run_id(), text, artifact_file)


def log_dict(dictionary: Any, artifact_file: str) -> None:
    _client().log_dict(_run_id(), dictionary, artifact_file)


def log_figure(figure: Any, artifact_file: str) -> None:
    _client().log_figure(_run_id(), figure, artifact_file)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    uri = get_run(_run_id()).info.artifact_uri
    return f"{uri}/{artifact_path}" if artifact_path else uri


# reading -------------------------------------------------------------------------------

def get_run(run_id: str) -> Run:
    return _client().get_run(run_id)


def get_experiment(experiment_id: str) -> Experiment:
    return _client().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    return _client().get_experiment_by_name(name)


def get_logged_model(model_id: str) -> LoggedModel:
    return _client().get_logged_model(model_id)


def get_metric_history(run_id: str, key: str) -> list[Metric]:
    return _client().get_metric_history(run_id, key)


def search_experiments(view_type: str = ViewType.ACTIVE_ONLY, max_results: int | None = None,
                       filter_string: str | None = None, order_by: Sequence[str] | None = None) -> list[Experiment]:
    """Experiments matching ``filter_string``, by default newest first: every page, up to
    ``max_results`` (None: all of them), as MLflow's ``search_experiments``."""
    client = _client()
    return all_pages(lambda size, token: client.search_experiments(view_type, size, filter_string, order_by, token),
                     max_results)


def search_runs(experiment_ids: Sequence[str] | None = None, filter_string: str = "",
                run_view_type: str = ViewType.ACTIVE_ONLY, max_results: int = 100_000,
                order_by: Sequence[str] | None = None, output_format: str = "pandas",
                search_all_experiments: bool = False, experiment_names: Sequence[str] | None = None):
    """Runs matching ``filter_string``: a pandas DataFrame (MLflow's columns) or, with
    ``output_format="list"``, a list of :class:`Run`. Without experiments: the active one.
    A name in ``experiment_names`` that no experiment has matches nothing, as in MLflow."""
    if output_format not in ("pandas", "list"):
        raise TrackingError(f"output_format must be 'pandas' or 'list', got '{output_format}'")
    client = _client()
    ids = [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids or [])
    for name in experiment_names or []:
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            ids.append(experiment.experiment_id)
    if not ids and not experiment_names:
        ids = ([e.experiment_id for e in search_experiments(ViewType.ALL)] if search_all_experiments
               else [_default_experiment_id()])
    runs: list[Run] = all_pages(lambda size, token: client.search_runs(ids, filter_string, run_view_type, size,
                                                                        order_by, token), max_results)
    if output_format == "list":
        return runs
    from flowml.tracking.frames import runs_frame

    return runs_frame(runs)


def _end_all_at_exit() -> None:
    """A script that exits with runs open ends them FINISHED, as MLflow does."""
    while _stack():
        end_run()


atexit.register(_end_all_at_exit)
