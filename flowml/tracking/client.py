"""``FlowmlClient``: the tracking API with explicit ids, as MLflow's ``MlflowClient``.

A thin layer over a store: it fills in what callers may leave out (timestamps, the user),
takes MLflow's entity lists for ``log_batch`` as well as dicts, and moves artifacts
between the local disk and the run's artifact repository.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
import tempfile
from typing import Any, Callable, Iterable, Sequence

from flowml.artifacts import repository
from flowml.errors import TrackingError
from flowml.tracking.entities import (Experiment, LoggedModel, LoggedModelStatus, Metric, ModelOutput, Param, Run,
                                      RunInfo, RunStatus, RunTag, ViewType, now_ms)
from flowml.tracking.search import SEARCH_MAX_RESULTS
from flowml.tracking.stores import get_store, resolve_uri


class PagedList(list):
    """A page of results; ``token`` fetches the next page (None on the last)."""

    def __init__(self, items: Iterable, token: str | None) -> None:
        super().__init__(items)
        self.token = token


def all_pages(search: Callable[[int, str | None], PagedList], max_results: int | None = None) -> list:
    """Everything a paged search finds, page after page, up to ``max_results`` (None: all), as
    MLflow's fluent searches collect it; ``search(max_results, page_token)`` fetches one page."""
    found: list = []
    token = None
    while max_results is None or len(found) < max_results:
        size = SEARCH_MAX_RESULTS if max_results is None else min(SEARCH_MAX_RESULTS, max_results - len(found))
        page = search(size, token)
        found.extend(page)
        token = page.token
        if token is None:
            break
    return found


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class FlowmlClient:
    """``root``: the project whose ``.flowml/`` holds the default store and artifacts (default:
    found from the working folder)."""

    def __init__(self, tracking_uri: str | None = None, root: str | None = None) -> None:
        if tracking_uri is None:  # as MlflowClient(): the URI set_tracking_uri chose, if it was called
            tracking_uri = getattr(sys.modules.get("flowml.tracking.fluent"), "_uri", None)
        self.tracking_uri = resolve_uri(tracking_uri, root)
        self.store = get_store(self.tracking_uri, root)

    # experiments ---------------------------------------------------------------------

    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: dict[str, Any] | None = None) -> str:
        return self.store.create_experiment(name, artifact_location, tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.store.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.store.get_experiment_by_name(name)

    def search_experiments(self, view_type: str = ViewType.ACTIVE_ONLY, max_results: int = 1000,
                           filter_string: str | None = None, order_by: Sequence[str] | None = None,
                           page_token: str | None = None) -> PagedList:
        """One page of experiments matching ``filter_string`` (MLflow's grammar: ``name``,
        ``creation_time``, ``last_update_time``, ``tags.<key>``), by default newest first."""
        found, token = self.store.search_experiments(view_type, max_results, filter_string, order_by, page_token)
        return PagedList(found, token)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self.store.rename_experiment(experiment_id, new_name)

    def delete_experiment(self, experiment_id: str) -> None:
        self.store.delete_experiment(experiment_id)

    def restore_experiment(self, experiment_id: str) -> None:
        self.store.restore_experiment(experiment_id)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        self.store.set_experiment_tag(experiment_id, key, value)

    # runs ----------------------------------------------------------------------------

    def create_run(self, experiment_id: str, start_time: int | None = None, tags: dict[str, Any] | None = None,
                   run_name: str | None = None) -> Run:
        return self.store.create_run(experiment_id, current_user(), start_time, tags, run_name)

    def get_run(self, run_id: str) -> Run:
        return self.store.get_run(run_id)

    def get_parent_run(self, run_id: str) -> Run | None:
        parent = self.get_run(run_id).data.tags.get("mlflow.parentRunId")
        return self.get_run(parent) if parent else None

    def child_runs(self, run_id: str) -> list[Run]:
        return self.store.child_runs(run_id)

    def mark_orphans(self) -> list[str]:
        """Mark RUNNING runs whose writer is gone as KILLED; returns their ids."""
        return self.store.mark_orphans()

    def heartbeat(self, run_ids: list[str]) -> None:
        """Say that the runs' writer is alive."""
        self.store.heartbeat(run_ids)

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> RunInfo:
        return self.store.update_run_info(run_id, status=status, run_name=name)

    def set_terminated(self, run_id: str, status: str = RunStatus.FINISHED, end_time: int | None = None) -> None:
        self.store.update_run_info(run_id, status=status, end_time=end_time if end_time is not None else now_ms())

    def delete_run(self, run_id: str) -> None:
        self.store.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self.store.restore_run(run_id)

    def search_runs(self, experiment_ids: Sequence[str] | str, filter_string: str = "",
                    run_view_type: str = ViewType.ACTIVE_ONLY, max_results: int = 1000,
                    order_by: Sequence[str] | None = None, page_token: str | None = None) -> PagedList:
        ids = [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids)
        runs, token = self.store.search_runs(ids, filter_string, run_view_type, max_results, order_by, page_token)
        return PagedList(runs, token)

    # data ----------------------------------------------------------------------------

    def log_param(self, run_id: str, key: str, value: Any) -> Any:
        self.store.log_batch(run_id, params={key: value})
        return value

    def log_metric(self, run_id: str, key: str, value: float, timestamp: int | None = None,
                   step: int | None = None) -> None:
        self.store.log_batch(run_id, metrics=[Metric(key, value, timestamp if timestamp is not None else now_ms(),
                                                     step or 0)])

    def log_batch(self, run_id: str, metrics: Iterable[Metric] = (), params: Iterable[Param] | dict = (),
                  tags: Iterable[RunTag] | dict = ()) -> None:
        self.store.log_batch(run_id, metrics=list(metrics), params=_pairs(params, "param"), tags=_pairs(tags))

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.store.log_batch(run_id, tags={key: value})

    def delete_tag(self, run_id: str, key: str) -> None:
        self.store.delete_tag(run_id, key)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        return self.store.get_metric_history(run_id, key)

    # artifacts -----------------------------------------------------------------------

    def artifact_repository(self, run_id: str):
        return repository(self.get_run(run_id).info.artifact_uri, self.tracking_uri)

    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        repo = self.artifact_repository(run_id)
        if os.path.isdir(local_path):
            name = os.path.basename(os.path.normpath(local_path))
            repo.log_artifacts(local_path, f"{artifact_path}/{name}" if artifact_path else name)
        else:
            repo.log_artifact(local_path, artifact_path)

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        self.artifact_repository(run_id).log_artifacts(local_dir, artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.artifact_repository(run_id).write_bytes(artifact_file, text.encode("utf-8"))

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        """JSON, or YAML when ``artifact_file`` ends in .yaml/.yml (as MLflow does)."""
        if artifact_file.endswith((".yaml", ".yml")):
            import yaml

            text = yaml.safe_dump(dictionary, sort_keys=False)
        else:
            text = json.dumps(dictionary, indent=2)
        self.log_text(run_id, text, artifact_file)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        """A matplotlib or plotly figure, saved in the format ``artifact_file``'s extension names."""
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, os.path.basename(artifact_file))
            if hasattr(figure, "savefig"):
                figure.savefig(path)
            elif hasattr(figure, "write_html") and path.endswith(".html"):
                figure.write_html(path)
            elif hasattr(figure, "write_image"):
                figure.write_image(path)
            else:
                raise TrackingError(f"log_figure takes a matplotlib or plotly figure, got {type(figure).__name__}")
            self.artifact_repository(run_id).log_artifact(path, os.path.dirname(artifact_file) or None)

    def list_artifacts(self, run_id: str, path: str | None = None):
        return self.artifact_repository(run_id).list_artifacts(path)

    def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
        return self.artifact_repository(run_id).download_artifacts(path, dst_path or tempfile.mkdtemp())


    # logged models (MLflow 3) ---------------------------------------------------------

    def create_logged_model(self, experiment_id: str, name: str | None = None, source_run_id: str | None = None,
                            tags: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
                            model_type: str | None = None) -> LoggedModel:
        """A PENDING logged model: upload its files (:meth:`log_model_artifacts`), then finalize it."""
        return self.store.create_logged_model(experiment_id, name, source_run_id, _strings(tags), _strings(params),
                                              model_type)

    def get_logged_model(self, model_id: str) -> LoggedModel:
        return self.store.get_logged_model(model_id)

    def finalize_logged_model(self, model_id: str, status: str) -> LoggedModel:
        """Mark a logged model READY (its files are all there) or FAILED (``LOGGED_MODEL_READY``
        and MLflow's other wire names are accepted too)."""
        parsed = LoggedModelStatus.parse(status)
        if parsed is None:
            raise TrackingError(f"a logged model is finalized as READY or FAILED, not {status!r}")
        return self.store.finalize_logged_model(model_id, parsed)

    def set_logged_model_tags(self, model_id: str, tags: dict[str, Any]) -> None:
        self.store.set_logged_model_tags(model_id, _strings(tags))

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self.store.delete_logged_model_tag(model_id, key)

    def log_model_params(self, model_id: str, params: dict[str, Any]) -> None:
        self.store.log_logged_model_params(model_id, _strings(params))

    def delete_logged_model(self, model_id: str) -> None:
        self.store.delete_logged_model(model_id)

    def search_logged_models(self, experiment_ids: Sequence[str] | str, max_results: int = 100,
                             page_token: str | None = None, filter_string: str = "") -> PagedList:
        """One page of the experiments' active logged models, newest first."""
        ids = [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids)
        return PagedList(*self.store.search_logged_models(ids, filter_string, max_results, page_token))

    def log_outputs(self, run_id: str, outputs: Sequence[ModelOutput]) -> None:
        """Record the logged models run ``run_id`` made (``run.model_outputs``)."""
        self.store.log_outputs(run_id, list(outputs))

    def log_model_inputs(self, run_id: str, model_ids: Sequence[str]) -> None:
        """Record the logged models run ``run_id`` read, e.g. to evaluate them (``run.model_inputs``)."""
        self.store.log_model_inputs(run_id, list(model_ids))

    def logged_model_repository(self, model_id: str):
        """The artifact repository of a logged model's files (its ``artifact_location``)."""
        return repository(self.get_logged_model(model_id).artifact_location, self.tracking_uri)

    def log_model_artifacts(self, model_id: str, local_dir: str) -> None:
        """Upload a model directory's files as the logged model's artifacts."""
        self.logged_model_repository(model_id).log_artifacts(local_dir)


def _strings(values: dict[str, Any] | None) -> dict[str, str] | None:
    """Tag and param values as the store keeps them: text."""
    return None if values is None else {k: str(v) for k, v in values.items()}


def _pairs(items: Iterable | dict, unique: str | None = None) -> dict[str, Any]:
    """``Param``/``RunTag`` entities (or a dict) as a dict. With ``unique`` (params), a key given
    twice with two values is refused rather than the last silently winning, as in MLflow."""
    if isinstance(items, dict):
        return dict(items)
    out: dict[str, Any] = {}
    for item in items:
        if unique and item.key in out and str(out[item.key]) != str(item.value):
            raise TrackingError(f"{unique} '{item.key}' is given twice in one batch, with values "
                                f"'{out[item.key]}' and '{item.value}'")
        out[item.key] = item.value
    return out
