"""MLflow's tracking API: experiments, runs, params, metrics and tags (``service.proto``)."""

from __future__ import annotations

from fastapi import APIRouter

from flowml.errors import TrackingError
from flowml.server.protocol import Params
from flowml.server.routes import mlflow_route
from flowml.server.security import validate_artifact_location
from flowml.tracking.entities import Dataset, DatasetInput, Metric, ModelOutput, RunStatus, ViewType, now_ms

router = APIRouter()
LOG_BATCH_LIMITS = {"metrics": 1000, "params": 100, "tags": 100, "total": 1000}  # MLflow's


def _route(path: str, *methods: str):
    return mlflow_route(router, path, *methods)


# experiments ---------------------------------------------------------------------------

@_route("/experiments/create")
def create_experiment(store, p: Params) -> dict:
    """Create an experiment; RESOURCE_ALREADY_EXISTS if the name is taken."""
    return {"experiment_id": store.create_experiment(p.str("name", True),
                                                     validate_artifact_location(p.str("artifact_location")),
                                                     p.pairs("tags"))}


@_route("/experiments/get", "GET")
def get_experiment(store, p: Params) -> dict:
    """An experiment by id (deleted ones too)."""
    return {"experiment": store.get_experiment(p.str("experiment_id", True)).to_dict()}


@_route("/experiments/get-by-name", "GET")
def get_experiment_by_name(store, p: Params) -> dict:
    """An experiment by name; RESOURCE_DOES_NOT_EXIST if there is none."""
    name = p.str("experiment_name", True)
    experiment = store.get_experiment_by_name(name)
    if experiment is None:
        raise TrackingError(f"no experiment named '{name}'", "RESOURCE_DOES_NOT_EXIST")
    return {"experiment": experiment.to_dict()}


@_route("/experiments/search", "POST", "GET")
def search_experiments(store, p: Params) -> dict:
    """Experiments matching a filter, one page at a time."""
    found, token = store.search_experiments(_view_type(p, "view_type"), p.int("max_results", default=1000),
                                            p.str("filter") or "", p.strings("order_by"), p.str("page_token"))
    reply: dict = {"experiments": [e.to_dict() for e in found]}
    if token:
        reply["next_page_token"] = token
    return reply


@_route("/experiments/update")
def update_experiment(store, p: Params) -> dict:
    """Rename an experiment."""
    new_name = p.str("new_name")
    if new_name:
        store.rename_experiment(p.str("experiment_id", True), new_name)
    return {}


@_route("/experiments/delete")
def delete_experiment(store, p: Params) -> dict:
    """Soft-delete an experiment and its runs."""
    store.delete_experiment(p.str("experiment_id", True))
    return {}


@_route("/experiments/restore")
def restore_experiment(store, p: Params) -> dict:
    """Bring back a deleted experiment and the runs deleted with it."""
    store.restore_experiment(p.str("experiment_id", True))
    return {}


@_route("/experiments/set-experiment-tag")
def set_experiment_tag(store, p: Params) -> dict:
    """Set a tag on an experiment."""
    store.set_experiment_tag(p.str("experiment_id", True), p.str("key", True), p.str("value", True))
    return {}


@_route("/experiments/delete-experiment-tag")
def delete_experiment_tag(store, p: Params) -> dict:
    """Remove a tag from an experiment."""
    store.delete_experiment_tag(p.str("experiment_id", True), p.str("key", True))
    return {}


# runs ----------------------------------------------------------------------------------

@_route("/runs/create")
def create_run(store, p: Params) -> dict:
    """Create a RUNNING run in an experiment."""
    run = store.create_run(p.str("experiment_id") or "0", p.str("user_id") or "", p.int("start_time"),
                           p.pairs("tags"), p.str("run_name"))
    return {"run": run.to_dict()}


@_route("/runs/get", "GET")
def get_run(store, p: Params) -> dict:
    """A run with its params, tags and latest metrics."""
    return {"run": store.get_run(_run_id(p)).to_dict()}


@_route("/runs/update")
def update_run(store, p: Params) -> dict:
    """Change a run's status, end time or name."""
    status = p.str("status")
    if status is not None and status not in RunStatus.ALL:
        raise TrackingError(f"invalid run status '{status}'; expected one of {', '.join(RunStatus.ALL)}")
    info = store.update_run_info(_run_id(p), status=status, end_time=p.int("end_time"), run_name=p.str("run_name"))
    return {"run_info": info.to_dict()}


@_route("/runs/delete")
def delete_run(store, p: Params) -> dict:
    """Soft-delete a run."""
    store.delete_run(_run_id(p))
    return {}


@_route("/runs/restore")
def restore_run(store, p: Params) -> dict:
    """Bring back a deleted run."""
    store.restore_run(_run_id(p))
    return {}


@_route("/runs/search", "POST", "GET")
def search_runs(store, p: Params) -> dict:
    """Runs matching MLflow's filter grammar, ordered, one page at a time."""
    runs, token = store.search_runs(p.strings("experiment_ids"), p.str("filter") or "",
                                    _view_type(p, "run_view_type"), p.int("max_results", default=1000),
                                    p.strings("order_by"), p.str("page_token"))
    reply: dict = {"runs": [r.to_dict() for r in runs]}
    if token:
        reply["next_page_token"] = token
    return reply


@_route("/runs/log-metric")
def log_metric(store, p: Params) -> dict:
    """Log one metric value."""
    metric = Metric(p.str("key", True), p.number("value", True), p.int("timestamp", default=now_ms()),
                    p.int("step", default=0))
    store.log_batch(_run_id(p), metrics=[metric])
    return {}


@_route("/runs/log-parameter")
def log_param(store, p: Params) -> dict:
    """Log a param (immutable once logged)."""
    store.log_batch(_run_id(p), params={p.str("key", True): p.str("value", True)})
    return {}


@_route("/runs/set-tag")
def set_tag(store, p: Params) -> dict:
    """Set a tag on a run."""
    store.log_batch(_run_id(p), tags={p.str("key", True): p.str("value", True)})
    return {}


@_route("/runs/delete-tag")
def delete_tag(store, p: Params) -> dict:
    """Remove a tag from a run."""
    store.delete_tag(_run_id(p), p.str("key", True))
    return {}


@_route("/runs/log-batch")
def log_batch(store, p: Params) -> dict:
    """Log metrics, params and tags at once, within MLflow's limits per request."""
    metrics, params, tags = p.list("metrics"), p.pairs("params"), p.pairs("tags")
    for name, count in (("metrics", len(metrics)), ("params", len(params)), ("tags", len(tags)),
                        ("total", len(metrics) + len(params) + len(tags))):
        if count > LOG_BATCH_LIMITS[name]:
            what = "entries" if name == "total" else name
            raise TrackingError(f"a batch may hold at most {LOG_BATCH_LIMITS[name]} {what}, got {count}")
    store.log_batch(_run_id(p), metrics=[_metric(m) for m in metrics], params=params, tags=tags)
    return {}


@_route("/runs/log-inputs")
def log_inputs(store, p: Params) -> dict:
    """Record the datasets and the logged models a run read."""
    inputs = []
    for item in p.list("datasets"):
        if not isinstance(item, dict) or not isinstance(item.get("dataset"), dict):
            raise TrackingError(f"invalid dataset input {item!r}: expected {{\"dataset\": {{...}}, \"tags\": [...]}}")
        ds = Params(item["dataset"])
        dataset = Dataset(ds.str("name", True), ds.str("digest", True), ds.str("source_type", True),
                          ds.str("source", True), ds.str("schema"), ds.str("profile"))
        inputs.append(DatasetInput(dataset, Params(item).pairs("tags")))
    models = [_model_link(item).model_id for item in p.list("models")]
    if inputs:
        store.log_inputs(_run_id(p), inputs)
    if models:
        store.log_model_inputs(_run_id(p), models)
    if not inputs and not models:
        store.get_run(_run_id(p))
    return {}


@_route("/runs/outputs")
def log_outputs(store, p: Params) -> dict:
    """Record the logged models a run made (MLflow 3's link from a run to its models)."""
    outputs = [_model_link(item) for item in p.list("models")]
    if outputs:
        store.log_outputs(_run_id(p), outputs)
    else:
        store.get_run(_run_id(p))
    return {}


def _model_link(item) -> ModelOutput:
    """``{"model_id": ..., "step": ...}`` of log-inputs' and outputs' ``models`` lists."""
    if not isinstance(item, dict):
        raise TrackingError(f"invalid model {item!r}: expected {{\"model_id\": ..., \"step\": ...}}")
    link = Params(item)
    return ModelOutput(link.str("model_id", True), link.int("step", default=0))


# metrics -------------------------------------------------------------------------------

@_route("/metrics/get-history", "GET")
def get_metric_history(store, p: Params) -> dict:
    """Every value of one metric of a run, by step."""
    history = store.get_metric_history(_run_id(p), p.str("metric_key", True))
    return {"metrics": [m.to_dict() for m in history]}


@_route("/metrics/get-history-bulk-interval", "GET")
def get_metric_history_bulk_interval(store, p: Params) -> dict:
    """One metric of several runs, between two steps, downsampled to ``max_results`` points per run."""
    run_ids = p.list("run_ids")
    if not run_ids:
        raise TrackingError("missing value for required parameter 'run_ids'")
    if len(run_ids) > 100:
        raise TrackingError(f"at most 100 run_ids, got {len(run_ids)}")
    key = p.str("metric_key", True)
    start, end = p.int("start_step"), p.int("end_step")
    points = p.int("max_results", default=320)
    if not 1 <= points <= 1000:
        raise TrackingError(f"max_results must be between 1 and 1000, got {points}")
    out = []
    for run_id in run_ids:
        history = [m for m in store.get_metric_history(run_id, key)
                   if (start is None or m.step >= start) and (end is None or m.step <= end)]
        for metric in _downsample(history, points):
            out.append({**metric.to_dict(), "run_id": run_id})
    return {"metrics": out}


def _downsample(history: list[Metric], points: int) -> list[Metric]:
    """At most ``points`` values spread evenly over the history, keeping the first and last."""
    if len(history) <= points:
        return history
    if points == 1:
        return [history[-1]]
    last = len(history) - 1
    picks = sorted({round(i * last / (points - 1)) for i in range(points)})
    return [history[i] for i in picks]


# helpers -------------------------------------------------------------------------------

def _run_id(p: Params) -> str:
    """``run_id``, or MLflow's older name ``run_uuid``."""
    return p.str("run_id", True, "run_uuid")


def _view_type(p: Params, name: str) -> str:
    value = p.values.get(name) or ViewType.ACTIVE_ONLY
    if isinstance(value, int):  # the protobuf enum's number
        value = {1: ViewType.ACTIVE_ONLY, 2: ViewType.DELETED_ONLY, 3: ViewType.ALL}.get(value, value)
    if value not in (ViewType.ACTIVE_ONLY, ViewType.DELETED_ONLY, ViewType.ALL):
        raise TrackingError(f"invalid {name} '{value}'; expected ACTIVE_ONLY, DELETED_ONLY or ALL")
    return value


def _metric(item: object) -> Metric:
    if not isinstance(item, dict):
        raise TrackingError(f"invalid metric {item!r}: expected an object with key, value, timestamp, step")
    p = Params(item)
    return Metric(p.str("key", True), p.number("value", True), p.int("timestamp", default=now_ms()),
                  p.int("step", default=0))
