"""flowml's own routes, under ``/api/2.0/flowml``: what flowml's client
(:class:`flowml.tracking.rest.RestStore`) needs beyond MLflow's API, in MLflow's conventions
(GET fields in the query string, POST ones in a JSON body, errors as ``{"error_code", "message"}``).

- ``runs/create``: a run created with its params and, for a pipeline's runs, a first
  heartbeat, in one transaction (MLflow's ``runs/create`` takes neither);
- ``runs/log-metrics`` and ``metrics/history``: metrics as columns (``keys``, ``values``,
  ``timestamps``, ``steps``), which the server reads and writes at a fraction of the cost of
  MLflow's one object per value (``log-batch``, ``get-history``, still there for MLflow's clients);
- ``runs/children``, ``runs/heartbeat``, ``runs/mark-orphans``, ``experiments/stats``;
- ``cache-entries/{get,put,outputs,drop}``: the shared cache index (``CacheRecord`` fields,
  the JSON ones as text, as the store keeps them).

``runs/mark-orphans`` runs the store's sweep on the server, which marks a RUNNING run KILLED
when its heartbeat is stale or when its recorded process is gone from the host it was created
on. Runs created through the server record the server's host and process, not the client's.
Two limits follow: the server cannot see a client's processes, so only heartbeats (which
pipeline runs send) find a remote writer dead, and a script's run whose process died stays
RUNNING until ended; and once the server process is restarted, the RUNNING runs created
through the previous one look orphaned, and the next sweep (the first run a script or a
pipeline starts) marks them KILLED while their writers live on (their own end sets the final
status again). Lifting both needs the store to record the client's host and pid (or none)
for runs created through the server.
"""

from __future__ import annotations

import math

from fastapi import APIRouter

from flowml.errors import TrackingError
from flowml.server.protocol import Params
from flowml.server.routes import mlflow_route
from flowml.tracking.entities import CacheRecord, Metric, json_number

router = APIRouter()
MAX_IDS = 50_000  # run ids in one heartbeat, keys in one cache request: bounds the work of one request
MAX_METRICS = 1000  # per runs/log-metrics request, as MLflow's log-batch
_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _route(path: str, *methods: str):
    return mlflow_route(router, path, *methods)


# runs ----------------------------------------------------------------------------------

@_route("/runs/create")
def create_run(store, p: Params) -> dict:
    """Create a RUNNING run with its params, and a first heartbeat if asked."""
    run = store.create_run(p.str("experiment_id") or "0", p.str("user_id") or "", p.int("start_time"),
                           p.pairs("tags"), p.str("run_name"), p.pairs("params"), heartbeat=_bool(p, "heartbeat"))
    return {"run": run.to_dict()}


@_route("/runs/log-metrics")
def log_metrics(store, p: Params) -> dict:
    """Log up to 1,000 metric values of a run, given as four columns of equal length."""
    run_id = p.str("run_id", True)
    keys, values, timestamps, steps = (p.list(name) for name in ("keys", "values", "timestamps", "steps"))
    if not len(keys) == len(values) == len(timestamps) == len(steps):
        raise TrackingError("keys, values, timestamps and steps must have the same length")
    if len(keys) > MAX_METRICS:
        raise TrackingError(f"at most {MAX_METRICS} metrics in one request, got {len(keys)}")
    if not all(type(k) is str for k in keys):
        raise TrackingError("invalid value for parameter 'keys': expected a list of strings")
    if not all(type(v) is float for v in values):
        values = [_metric_value(v) for v in values]
    # the keys' names, the timestamps and the steps are checked by the store, as for every other write
    store.log_batch(run_id, metrics=[Metric(*row) for row in zip(keys, values, timestamps, steps)])
    return {}


@_route("/metrics/history", "GET")
def metric_history(store, p: Params) -> dict:
    """Every value of one metric of a run, by step, as three columns."""
    history = store.get_metric_history(p.str("run_id", True), p.str("metric_key", True))
    values = [m.value for m in history]
    if not all(map(math.isfinite, values)):
        values = [json_number(v) for v in values]
    return {"values": values, "timestamps": [m.timestamp for m in history], "steps": [m.step for m in history]}


@_route("/runs/children", "GET")
def child_runs(store, p: Params) -> dict:
    """The runs whose ``mlflow.parentRunId`` tag names this run, oldest first."""
    return {"runs": [r.to_dict() for r in store.child_runs(p.str("run_id", True))]}


@_route("/runs/heartbeat")
def heartbeat(store, p: Params) -> dict:
    """Say that the process writing these runs is alive."""
    run_ids = _strings(p, "run_ids")
    if run_ids:
        store.heartbeat(run_ids)
    return {}


@_route("/runs/mark-orphans")
def mark_orphans(store, p: Params) -> dict:
    """Mark as KILLED the RUNNING runs whose heartbeat is older than ``stale_after_ms`` (see the module)."""
    stale = p.int("stale_after_ms", default=10 * 60 * 1000)
    if stale < 0:
        raise TrackingError(f"stale_after_ms must be 0 or more, got {stale}")
    return {"run_ids": store.mark_orphans(stale)}


@_route("/experiments/stats", "GET")
def experiment_stats(store, p: Params) -> dict:
    """Per experiment: its number of active runs and the start time of the latest."""
    return {"experiments": [{"experiment_id": exp_id, "active_runs": count, "last_start_time": last}
                            for exp_id, (count, last) in store.experiment_stats().items()]}


# cache index ---------------------------------------------------------------------------

@_route("/cache-entries/get", "GET")
def get_cache_entry(store, p: Params) -> dict:
    """The cache entry of ``key``; ``{}`` when there is none."""
    record = store.get_cache_entry(p.str("key", True))
    return {"entry": _record_json(record)} if record else {}


@_route("/cache-entries/put")
def put_cache_entry(store, p: Params) -> dict:
    """Record (or replace) a cache entry."""
    entry = p.values.get("entry")
    if not isinstance(entry, dict):
        raise TrackingError("missing value for required parameter 'entry' (an object)")
    e = Params(entry)
    store.put_cache_entry(CacheRecord(e.str("key", True), e.str("pipeline", True), e.str("node", True),
                                      e.str("manifest", True), e.str("outputs", True), e.str("metrics"),
                                      e.number("duration_s"), e.str("run_id")))
    return {}


@_route("/cache-entries/outputs")
def cache_outputs(store, p: Params) -> dict:
    """The outputs JSON of every entry, or of the entries of ``keys``."""
    keys = set(_strings(p, "keys")) if "keys" in p.values else None
    return {"outputs": store.cache_outputs(keys)}


@_route("/cache-entries/drop")
def drop_cache_entries(store, p: Params) -> dict:
    """Delete the entries whose key is not in ``keep`` (with ``dry_run``, only count them)."""
    if not isinstance(p.values.get("keep"), list):
        raise TrackingError("missing value for required parameter 'keep' (a list of keys, maybe empty)")
    return {"dropped": store.drop_cache_entries(set(_strings(p, "keep", limit=None)), _bool(p, "dry_run"))}


# helpers -------------------------------------------------------------------------------

def _metric_value(value: object) -> float:
    """A number, or MLflow's "NaN", "Infinity", "-Infinity"."""
    if type(value) in (float, int):
        return float(value)
    if isinstance(value, str) and value in _SPECIAL:
        return _SPECIAL[value]
    raise TrackingError(f"invalid metric value {value!r}: expected a number")


def _bool(p: Params, name: str) -> bool:
    value = p.values.get(name, False)
    if isinstance(value, str) and value.lower() in ("true", "false"):  # from a query string
        value = value.lower() == "true"
    if not isinstance(value, bool):
        raise TrackingError(f"invalid value {value!r} for parameter '{name}': expected true or false")
    return value


def _strings(p: Params, name: str, limit: int | None = MAX_IDS) -> list[str]:
    values = p.list(name)
    if limit is not None and len(values) > limit:
        raise TrackingError(f"at most {limit} entries in '{name}', got {len(values)}")
    if not all(isinstance(v, str) for v in values):
        raise TrackingError(f"invalid value for parameter '{name}': expected a list of strings")
    return values


def _record_json(record: CacheRecord) -> dict:
    return {"key": record.key, "pipeline": record.pipeline, "node": record.node, "manifest": record.manifest,
            "outputs": record.outputs, "metrics": record.metrics, "duration_s": record.duration_s,
            "run_id": record.run_id}
