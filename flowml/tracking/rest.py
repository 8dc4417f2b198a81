"""The tracking store behind a flowml (or MLflow) tracking server: ``FLOWML_TRACKING_URI=http://...``.

:class:`RestStore` has the public methods of :class:`flowml.tracking.sql.store.SqlStore`, with
the same signatures, return types and errors, so the client, the fluent API, the pipeline
recorder and the cache index work unchanged against a server. It speaks MLflow's REST API
(``/api/2.0/mlflow/...``, fields as in MLflow's ``service.proto``) and, for what MLflow has no
route for (runs created with params and a heartbeat, child runs, heartbeats, the orphan sweep,
experiment statistics, the cache index), flowml's own routes under ``/api/2.0/flowml/...``.
Metrics travel through flowml's columnar routes (``runs/log-metrics``, ``metrics/history``),
which cost the server a fraction of MLflow's one-object-per-value shape; against a server
without them (an MLflow server) the store falls back to MLflow's ``log-batch`` and
``get-history`` after the first 404.

Wire behaviour:

- one ``httpx.Client`` per store: connections are kept alive and reused, with timeouts
  (``FLOWML_HTTP_REQUEST_TIMEOUT`` seconds, default 120; connecting: 10);
- connection failures, 429 and 5xx answers are retried with exponential backoff and jitter
  (``FLOWML_HTTP_REQUEST_MAX_RETRIES``, default 5; ``FLOWML_HTTP_REQUEST_BACKOFF_FACTOR``,
  default 0.2 s, doubling up to 5 s; a ``Retry-After`` is honoured up to that cap): about 6 s
  before giving up. A POST whose answer timed out is not retried, since the server may have
  done it (the retry would log twice). 4xx answers are never retried;
- an answer ``{"error_code", "message"}`` becomes ``TrackingError(message, error_code)``, as
  the SQL store raises it; a server out of retries (unreachable, or answering 5xx/429)
  becomes :class:`~flowml.errors.StoreError`;
- ``Authorization: Bearer <token>`` when ``FLOWML_TRACKING_TOKEN`` or ``MLFLOW_TRACKING_TOKEN``
  is set;
- ``log_batch`` splits what it is given to stay within MLflow's limits per request (1,000
  metrics, 100 params, 100 tags, 1,000 entries), params and tags first. Unlike the SQL store,
  a split batch is not all-or-nothing: the requests before a refused one stay logged.

Metric buffering. A training loop logs metrics one at a time, and one request per value would
make it as slow as the network. So metrics logged without params or tags (``log_metric``,
``log_metrics``, a ``log_batch`` of metrics only) are validated here, then buffered and sent
1,000 to a request: when 1,000 are waiting, 1 s after the oldest was logged
(a background thread), before any other call that touches the run (so reads see every value,
and the run's end, ``update_run_info``, comes after its metrics), before calls that touch
many runs (searches), on :meth:`RestStore.flush` and :meth:`RestStore.close`, and at
interpreter exit (a server out of reach then delays the exit by the retries, about 6 s, and
a warning says how many metrics were lost). A forked child starts with an empty buffer: the
parent sends its own. Params and tags are sent at once: their errors (a param logged again
with another value) surface at the call.

The trade-off: an error the server finds in buffered metrics (the run was deleted, or does
not exist) surfaces later than the call that logged them, at the flush: raised by the call
that caused the flush when it concerns that run, or else by the next call that touches the
run (its ``update_run_info`` at the latest); at exit, it is printed as a warning. Metrics the
server refused are dropped; metrics a server out of reach did not take are kept and sent by
the next flush.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import random
import sys
import threading
import time
import weakref
from typing import Any, Iterable, Sequence

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt

from flowml.errors import StoreError, TrackingError
from flowml.tracking import validation as check
from flowml.tracking.entities import (CacheRecord, Dataset, DatasetInput, Experiment, LoggedModel, LoggedModelStatus,
                                      Metric, ModelOutput, Run, RunData, RunInfo, ViewType, collector_paused,
                                      json_number)

MLFLOW_API = "/api/2.0/mlflow"
FLOWML_API = "/api/2.0/flowml"
BATCH_LIMITS = {"metrics": 1000, "params": 100, "tags": 100, "total": 1000}  # MLflow's, per log-batch request
FLUSH_AT = 1000  # buffered metrics that trigger a flush
FLUSH_AFTER_S = 1.0  # the longest a buffered metric waits
NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"


class _Busy(Exception):
    """A 429 or 5xx answer, retried; ``reply`` is kept for the error after the last try."""

    def __init__(self, reply: httpx.Response) -> None:
        super().__init__(f"HTTP {reply.status_code}")
        self.reply = reply


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        raise TrackingError(f"{name} must be a number, got {os.environ[name]!r}") from None


class RestStore:
    """Tracking data on the server at ``base_url`` (``http(s)://host:port[/prefix]``).

    ``max_retries``, ``backoff`` (seconds before the first retry, doubling) and ``timeout``
    default to the ``FLOWML_HTTP_REQUEST_*`` variables (see the module's documentation).
    """

    def __init__(self, base_url: str, *, max_retries: int | None = None, backoff: float | None = None,
                 timeout: float | None = None, token: str | None = None) -> None:
        self.url = base_url.rstrip("/")
        self.artifact_root = None  # the server decides where artifacts go
        self.max_retries = int(max_retries if max_retries is not None
                               else _env_float("FLOWML_HTTP_REQUEST_MAX_RETRIES", 5))
        self.backoff = backoff if backoff is not None else _env_float("FLOWML_HTTP_REQUEST_BACKOFF_FACTOR", 0.2)
        self.backoff_max = 5.0
        self.timeout = timeout if timeout is not None else _env_float("FLOWML_HTTP_REQUEST_TIMEOUT", 120)
        token = token or os.environ.get("FLOWML_TRACKING_TOKEN") or os.environ.get("MLFLOW_TRACKING_TOKEN")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json",
                         "User-Agent": "flowml"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._http: httpx.Client | None = None
        self._http_lock = threading.Lock()
        # the metric buffer: run id -> its checked metrics (key, value, timestamp, step), in logging order
        self._pending: dict[str, list[tuple]] = {}
        self._count = 0
        self._oldest: float | None = None  # when the oldest buffered metric was logged (monotonic)
        self._failures: dict[str, Exception] = {}  # run id -> what the server said of its buffered metrics
        self._lock = threading.Lock()  # guards the buffer and _failures
        self._wake = threading.Condition(self._lock)
        self._flushing = threading.RLock()  # one flush at a time: a run's metrics arrive in logging order
        self._sending = False  # a flush is sending (its metrics are out of the buffer, not yet on the server)
        self._timer: threading.Thread | None = None
        self._checked_keys: set[str] = set()
        self._columns = True  # the server has flowml's columnar metric routes (else: MLflow's)
        atexit.register(_flush_at_exit, weakref.ref(self))
        _STORES.add(self)

    def _start_afresh(self) -> None:
        """In a forked child: the parent's buffered metrics are the parent's to send (sending
        them here too would log them twice), its connections and threads are not ours."""
        self._http, self._timer = None, None
        self._http_lock, self._lock, self._flushing = threading.Lock(), threading.Lock(), threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._pending, self._count, self._oldest, self._sending, self._failures = {}, 0, None, False, {}

    def __repr__(self) -> str:
        return f"RestStore({self.url!r})"

    def close(self) -> None:
        """Send what is buffered and close the connections (a later call opens new ones)."""
        try:
            self.flush()
        finally:
            with self._http_lock:
                if self._http is not None:
                    self._http.close()
                    self._http = None

    # HTTP ------------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        http = self._http
        if http is None:
            with self._http_lock:
                if self._http is None:
                    self._http = httpx.Client(
                        base_url=self.url, headers=self._headers, follow_redirects=False,
                        timeout=httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)),
                        limits=httpx.Limits(max_connections=32, max_keepalive_connections=8, keepalive_expiry=4.0))
                http = self._http
        return http

    def _call(self, method: str, path: str, body: dict | str | None = None, params: dict | None = None,
              api: str = MLFLOW_API) -> dict:
        """Send one request (retried as the module says) and return its JSON answer. ``body``
        is an object, or JSON text already encoded."""
        url = api + path
        content = body if body is None or isinstance(body, str) else _json(body)

        def send() -> httpx.Response:
            reply = self._client().request(method, url, content=content, params=params)
            if reply.status_code == 429 or reply.status_code >= 500:
                raise _Busy(reply)
            return reply

        def retryable(exc: BaseException) -> bool:
            # 429 and 5xx: the server's transaction was rolled back, so trying again is safe.
            # A transport error after the request left may mean it was done: only a read is
            # repeated then, never a write (a metric must not be logged twice).
            if isinstance(exc, _Busy) or isinstance(exc, _UNSENT):
                return True
            return method == "GET" and isinstance(exc, httpx.TransportError)

        try:
            reply = Retrying(stop=stop_after_attempt(self.max_retries + 1), wait=self._wait,
                             retry=retry_if_exception(retryable), reraise=True, sleep=time.sleep)(send)
        except _Busy as exc:
            message = _error(exc.reply)[1] or exc.reply.text[:200].strip()
            raise StoreError(f"tracking server {self.url} failed (HTTP {exc.reply.status_code}"
                             f"{self._after()}): {message}") from None
        except httpx.TransportError as exc:
            error = NotSent if isinstance(exc, _UNSENT) else StoreError
            raise error(f"tracking server {self.url} cannot be reached{self._after()}: "
                        f"{type(exc).__name__}: {exc or 'no detail'}") from None
        if reply.status_code >= 400:
            code, message = _error(reply)
            if code is None:
                code = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "ENDPOINT_NOT_FOUND"}.get(
                    reply.status_code, "BAD_REQUEST")
                message = (f"tracking server {self.url} answered HTTP {reply.status_code} to {method} {url}"
                           f"{': ' + reply.text[:200].strip() if reply.text.strip() else ''}")
            raise TrackingError(message, code)
        try:
            return reply.json() if reply.content else {}
        except ValueError:
            raise StoreError(f"tracking server {self.url} answered {method} {url} with something that is not "
                             "JSON: is it a flowml or MLflow tracking server?") from None

    def _after(self) -> str:
        return f", after {self.max_retries + 1} attempts" if self.max_retries else ""

    def _wait(self, state) -> float:
        """Exponential backoff with jitter; a ``Retry-After`` (429, 503) is honoured up to the cap."""
        delay = min(self.backoff_max, self.backoff * 2 ** (state.attempt_number - 1))
        delay *= 0.75 + random.random() / 2
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Busy):
            after = exc.reply.headers.get("retry-after", "")
            if after.replace(".", "", 1).isdigit():
                delay = max(delay, min(float(after), self.backoff_max))
        return delay

    def request(self, method: str, path: str, body: dict | None = None, params: dict | None = None) -> dict:
        """One request to MLflow's API (``path`` under ``/api/2.0/mlflow``) through this store's
        connections, retries and errors, for other stores on the same server (the registry's)."""
        return self._call(method, path, body, {k: v for k, v in (params or {}).items() if v is not None})

    def _get(self, path: str, api: str = MLFLOW_API, **params) -> dict:
        return self._call("GET", path, params={k: v for k, v in params.items() if v is not None}, api=api)

    def _post(self, path: str, body: dict | str, api: str = MLFLOW_API) -> dict:
        return self._call("POST", path, body, api=api)

    # experiments -----------------------------------------------------------------------

    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: dict[str, str] | None = None) -> str:
        check.experiment_name(name)
        body: dict = {"name": name, "tags": _pairs("tag", tags, check.tag_value)}
        if artifact_location:
            body["artifact_location"] = artifact_location
        return str(self._post("/experiments/create", body)["experiment_id"])

    def get_experiment(self, experiment_id: str) -> Experiment:
        return _experiment(self._get("/experiments/get", experiment_id=str(experiment_id))["experiment"])

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            return _experiment(self._get("/experiments/get-by-name", experiment_name=name)["experiment"])
        except TrackingError as exc:
            if exc.error_code == NOT_FOUND:
                return None
            raise

    def search_experiments(self, view_type: str = ViewType.ACTIVE_ONLY, max_results: int = 1000,
                           filter_string: str | None = None, order_by: Sequence[str] | None = None,
                           page_token: str | None = None) -> tuple[list[Experiment], str | None]:
        """One page of experiments matching ``filter_string``, and the next page's token."""
        body: dict = {"view_type": view_type, "max_results": int(max_results), "order_by": list(order_by or [])}
        if filter_string:
            body["filter"] = filter_string
        if page_token:
            body["page_token"] = page_token
        reply = self._post("/experiments/search", body)
        return [_experiment(e) for e in reply.get("experiments", [])], reply.get("next_page_token") or None

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        check.experiment_name(new_name)
        self._post("/experiments/update", {"experiment_id": str(experiment_id), "new_name": new_name})

    def delete_experiment(self, experiment_id: str) -> None:
        self.flush()  # its runs' metrics before the runs go
        self._post("/experiments/delete", {"experiment_id": str(experiment_id)})

    def restore_experiment(self, experiment_id: str) -> None:
        self._post("/experiments/restore", {"experiment_id": str(experiment_id)})

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        check.check_key("tag", key)
        self._post("/experiments/set-experiment-tag",
                   {"experiment_id": str(experiment_id), "key": key, "value": check.tag_value(key, value)})

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self._post("/experiments/delete-experiment-tag", {"experiment_id": str(experiment_id), "key": key})

    # runs ------------------------------------------------------------------------------

    def create_run(self, experiment_id: str, user_id: str = "", start_time: int | None = None,
                   tags: dict[str, str] | None = None, run_name: str | None = None,
                   params: dict[str, str] | None = None, heartbeat: bool = False) -> Run:
        """A new RUNNING run (see :meth:`SqlStore.create_run`). With params or ``heartbeat``, it
        goes through flowml's route, which creates the run with them in one transaction."""
        body: dict = {"experiment_id": str(experiment_id), "user_id": check.user_id(user_id),
                      "tags": _pairs("tag", tags, check.tag_value)}
        if start_time is not None:
            body["start_time"] = check.int64("start_time", start_time)
        if run_name is not None:
            body["run_name"] = check.run_name(run_name)
        if params or heartbeat:
            body.update(params=_pairs("param", params, check.param_value), heartbeat=bool(heartbeat))
            return _run(self._post("/runs/create", body, api=FLOWML_API)["run"])
        return _run(self._post("/runs/create", body)["run"])

    def get_run(self, run_id: str) -> Run:
        self._settle(run_id)
        return _run(self._get("/runs/get", run_id=run_id)["run"])

    def update_run_info(self, run_id: str, status: str | None = None, end_time: int | None = None,
                        run_name: str | None = None) -> RunInfo:
        """Change a run's status, end time or name, after its buffered metrics are sent; a failure
        of those metrics is raised only once the run's end is recorded (else it stays RUNNING)."""
        if self._pending or self._sending:
            self.flush(run_id)
        body: dict = {"run_id": run_id}
        if status is not None:
            body["status"] = status
        if end_time is not None:
            body["end_time"] = check.int64("end_time", end_time)
        if run_name:
            body["run_name"] = run_name
        try:
            return _run_info(self._post("/runs/update", body)["run_info"])
        finally:
            self._raise_failure(run_id)  # after the update, so a failure never leaves the run RUNNING

    def delete_run(self, run_id: str) -> None:
        self._settle(run_id)
        self._post("/runs/delete", {"run_id": run_id})

    def restore_run(self, run_id: str) -> None:
        self._post("/runs/restore", {"run_id": run_id})

    def heartbeat(self, run_ids: Sequence[str]) -> None:
        """Say that the process writing these runs is alive (see :meth:`mark_orphans`)."""
        self._post("/runs/heartbeat", {"run_ids": list(run_ids)}, api=FLOWML_API)

    def mark_orphans(self, stale_after_ms: int = 10 * 60 * 1000) -> list[str]:
        """Mark as KILLED the RUNNING runs whose writer is gone; returns their ids.

        The server runs its store's sweep (see ``flowml.server.routes.flowml``): runs created
        through a server carry the server's process, not the client's, so only heartbeats
        (pipeline runs send them) find a remote writer dead, and a restarted server takes the
        RUNNING runs created by its previous process for orphans.
        """
        self.flush()
        return list(self._post("/runs/mark-orphans", {"stale_after_ms": int(stale_after_ms)},
                               api=FLOWML_API).get("run_ids", []))

    # params, tags, metrics -------------------------------------------------------------

    def log_param(self, run_id: str, key: str, value: object) -> None:
        self.log_batch(run_id, params={key: value})

    def set_tag(self, run_id: str, key: str, value: object) -> None:
        self.log_batch(run_id, tags={key: value})

    def delete_tag(self, run_id: str, key: str) -> None:
        self._settle(run_id)
        self._post("/runs/delete-tag", {"run_id": run_id, "key": key})

    def log_inputs(self, run_id: str, inputs: list[DatasetInput]) -> None:
        self._settle(run_id)
        self._post("/runs/log-inputs", {"run_id": run_id, "datasets": [i.to_dict() for i in inputs]})

    def log_model_inputs(self, run_id: str, model_ids: list[str]) -> None:
        self._settle(run_id)
        self._post("/runs/log-inputs", {"run_id": run_id, "models": [{"model_id": m} for m in model_ids]})

    def log_outputs(self, run_id: str, outputs: list[ModelOutput]) -> None:
        self._settle(run_id)
        self._post("/runs/outputs", {"run_id": run_id, "models": [o.to_dict() for o in outputs]})

    def log_metric(self, run_id: str, metric: Metric) -> None:
        self.log_batch(run_id, metrics=[metric])

    def log_batch(self, run_id: str, metrics: Iterable[Metric] = (), params: dict[str, object] | None = None,
                  tags: dict[str, object] | None = None) -> None:
        """Log metrics, params and tags. Metrics alone are buffered (see the module's
        documentation); with params or tags, everything is sent now, split into requests
        within MLflow's limits, params and tags first."""
        rows = self._metric_rows(metrics)
        param_list = _pairs("param", params, check.param_value)
        tag_list = _pairs("tag", tags, check.tag_value)
        if not param_list and not tag_list:
            if rows:
                self._buffer(run_id, rows)
            return
        self._settle(run_id)
        for body in _split(run_id, rows, param_list, tag_list):
            self._post("/runs/log-batch", body)

    def _metric_rows(self, metrics: Iterable[Metric]) -> list[tuple]:
        """Metrics checked as the SQL store checks them, so that a bad one fails at the call,
        never at the flush."""
        return check.metric_rows(metrics, self._checked_keys)

    def _log_metrics(self, run_id: str, rows: list[tuple]) -> None:
        """Send at most 1,000 checked metrics of a run: as columns through flowml's route (a
        fifth of the server's work for MLflow's objects), or, to a server without it (an
        MLflow server), through MLflow's ``log-batch``."""
        if self._columns:
            keys, values, timestamps, steps = zip(*rows)
            if not all(map(math.isfinite, values)):
                values = [json_number(v) for v in values]
            try:
                self._post("/runs/log-metrics", {"run_id": run_id, "keys": keys, "values": values,
                                                 "timestamps": timestamps, "steps": steps}, api=FLOWML_API)
                return
            except TrackingError as exc:
                if exc.error_code != "ENDPOINT_NOT_FOUND":
                    raise
                self._columns = False
        self._post("/runs/log-batch", _batch(run_id, rows))

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every value of ``key``, by step (NaN and the infinities back as floats). Through
        flowml's route, as columns (a 20,000-point history costs the server a third of
        MLflow's objects, and half to read here), or else through MLflow's ``get-history``."""
        self._settle(run_id)
        with collector_paused():  # tens of thousands of new objects
            if self._columns:
                try:
                    reply = self._get("/metrics/history", api=FLOWML_API, run_id=run_id, metric_key=key)
                except TrackingError as exc:
                    if exc.error_code != "ENDPOINT_NOT_FOUND":
                        raise
                    self._columns = False
                else:
                    values = reply.get("values", [])
                    if not all(type(v) is float for v in values):
                        values = [_float(v) for v in values]
                    return [Metric(key, v, t, st) for v, t, st in zip(values, reply["timestamps"], reply["steps"])]
            reply = self._get("/metrics/get-history", run_id=run_id, metric_key=key)
            return [Metric(key, _float(m["value"]), m["timestamp"], m.get("step", 0)) for m in reply.get("metrics", ())]

    # search ----------------------------------------------------------------------------

    def search_runs(self, experiment_ids: Sequence[str], filter_string: str = "",
                    run_view_type: str = ViewType.ACTIVE_ONLY, max_results: int = 1000,
                    order_by: Sequence[str] | None = None, page_token: str | None = None) -> tuple[list[Run], str | None]:
        """One page of runs matching ``filter_string`` (MLflow's grammar), and the next page's token."""
        self.flush()
        body: dict = {"experiment_ids": [str(e) for e in experiment_ids], "run_view_type": run_view_type,
                      "max_results": int(max_results), "order_by": list(order_by or [])}
        if filter_string:
            body["filter"] = filter_string
        if page_token:
            body["page_token"] = page_token
        reply = self._post("/runs/search", body)
        return [_run(r) for r in reply.get("runs", [])], reply.get("next_page_token") or None

    def child_runs(self, run_id: str) -> list[Run]:
        """Runs tagged with ``mlflow.parentRunId`` = ``run_id``, oldest first."""
        self.flush()
        return [_run(r) for r in self._get("/runs/children", api=FLOWML_API, run_id=run_id).get("runs", [])]

    def experiment_stats(self) -> dict[str, tuple[int, int | None]]:
        """Per experiment: how many active runs it has, and when the latest one started."""
        reply = self._get("/experiments/stats", api=FLOWML_API)
        return {str(e["experiment_id"]): (int(e["active_runs"]), e.get("last_start_time"))
                for e in reply.get("experiments", [])}

    # cache index -----------------------------------------------------------------------

    def get_cache_entry(self, key: str) -> CacheRecord | None:
        entry = self._get("/cache-entries/get", api=FLOWML_API, key=key).get("entry")
        return _cache_record(entry) if entry else None

    def put_cache_entry(self, record: CacheRecord) -> None:
        self._post("/cache-entries/put", {"entry": {
            "key": record.key, "pipeline": record.pipeline, "node": record.node, "manifest": record.manifest,
            "outputs": record.outputs, "metrics": record.metrics, "duration_s": record.duration_s,
            "run_id": record.run_id}}, api=FLOWML_API)

    def cache_outputs(self, keys: set[str] | None = None) -> list[str]:
        """The outputs JSON of every cache entry (or of ``keys``), for garbage collection."""
        body = {} if keys is None else {"keys": sorted(keys)}
        return list(self._post("/cache-entries/outputs", body, api=FLOWML_API).get("outputs", []))

    def drop_cache_entries(self, keep: set[str], dry_run: bool = False) -> int:
        """Delete every cache entry whose key is not in ``keep``; returns how many (would) go."""
        return int(self._post("/cache-entries/drop", {"keep": sorted(keep), "dry_run": bool(dry_run)},
                              api=FLOWML_API).get("dropped", 0))

    # logged models (MLflow 3) ---------------------------------------------------------

    def create_logged_model(self, experiment_id: str, name: str | None = None, source_run_id: str | None = None,
                            tags: dict[str, str] | None = None, params: dict[str, str] | None = None,
                            model_type: str | None = None) -> LoggedModel:
        body: dict = {"experiment_id": str(experiment_id), "tags": _pairs("tag", tags, check.tag_value),
                      "params": _pairs("param", params, check.param_value)}
        body.update({k: v for k, v in (("name", name), ("source_run_id", source_run_id),
                                       ("model_type", model_type)) if v})
        if source_run_id:
            self._settle(source_run_id)
        return _logged_model(self._post("/logged-models", body)["model"])

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        return _logged_model(self._get(f"/logged-models/{_segment(model_id)}")["model"])

    def finalize_logged_model(self, model_id: str, status: str) -> LoggedModel:
        wire = LoggedModelStatus.WIRE.get(status, status)
        reply = self._call("PATCH", f"/logged-models/{_segment(model_id)}", {"model_id": model_id, "status": wire})
        return _logged_model(reply["model"])

    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None:
        self._call("PATCH", f"/logged-models/{_segment(model_id)}/tags",
                   {"model_id": model_id, "tags": _pairs("tag", tags, check.tag_value)})

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self._call("DELETE", f"/logged-models/{_segment(model_id)}/tags/{_segment(key)}")

    def log_logged_model_params(self, model_id: str, params: dict[str, str]) -> None:
        self._post(f"/logged-models/{_segment(model_id)}/params",
                   {"model_id": model_id, "params": _pairs("param", params, check.param_value)})

    def delete_logged_model(self, model_id: str) -> None:
        self._call("DELETE", f"/logged-models/{_segment(model_id)}")

    def search_logged_models(self, experiment_ids: Sequence[str], filter_string: str = "", max_results: int = 100,
                             page_token: str | None = None) -> tuple[list[LoggedModel], str | None]:
        body: dict = {"experiment_ids": [str(e) for e in experiment_ids], "max_results": int(max_results)}
        if filter_string:
            body["filter"] = filter_string
        if page_token:
            body["page_token"] = page_token
        reply = self._post("/logged-models/search", body)
        return [_logged_model(m) for m in reply.get("models", [])], reply.get("next_page_token") or None

    # the metric buffer -----------------------------------------------------------------

    def _buffer(self, run_id: str, rows: list[tuple]) -> None:
        with self._lock:
            failure = self._failures.pop(run_id, None)
            self._pending.setdefault(run_id, []).extend(rows)
            self._count += len(rows)
            if self._oldest is None:
                self._oldest = time.monotonic()
                self._wake.notify()
            full = self._count >= FLUSH_AT
            if self._timer is None:
                self._timer = threading.Thread(target=self._flush_later, name="flowml-metrics", daemon=True)
                self._timer.start()
        if failure is not None:
            raise failure
        if full:
            self.flush()
            self._raise_failure(run_id)

    def _flush_later(self) -> None:
        """The background thread: send buffered metrics at most ``FLUSH_AFTER_S`` after they were logged."""
        while True:
            with self._lock:
                while self._oldest is None:
                    self._wake.wait()
                delay = self._oldest + FLUSH_AFTER_S - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
            try:
                self.flush()
            except Exception:  # kept in the buffer (server out of reach): the next flush tries again
                time.sleep(FLUSH_AFTER_S)

    def flush(self, run_id: str | None = None) -> None:
        """Send the buffered metrics (of ``run_id``, or all). What the server refuses is kept
        in ``_failures`` for the run's next call; a server out of reach raises StoreError and
        leaves the unsent metrics in the buffer."""
        if not self._pending and not self._sending:
            return
        with self._flushing:  # also waits for a flush under way, whose metrics a read must see
            self._sending = True  # before the metrics leave the buffer: _settle must not miss them
            try:
                with self._lock:
                    if run_id is None:
                        taken, self._pending = self._pending, {}
                    else:
                        rows = self._pending.pop(run_id, None)
                        taken = {run_id: rows} if rows else {}
                    self._count -= sum(len(rows) for rows in taken.values())
                    if not self._pending:
                        self._oldest = None
                self._send(taken)
            finally:
                self._sending = False

    def _send(self, taken: dict[str, list[tuple]]) -> None:
        """POST ``taken`` (run id -> metrics) in batches of 1,000 (see :meth:`flush`)."""
        runs = list(taken)
        for position, rid in enumerate(runs):
            rows = taken[rid]
            for start in range(0, len(rows), BATCH_LIMITS["metrics"]):
                try:
                    self._log_metrics(rid, rows[start:start + BATCH_LIMITS["metrics"]])
                except TrackingError as exc:
                    with self._lock:
                        self._failures.setdefault(rid, TrackingError(
                            f"{exc} ({len(rows) - start} buffered metrics of run {rid} were not logged)",
                            exc.error_code))
                    break
                except NotSent:
                    self._requeue({rid: rows[start:], **{r: taken[r] for r in runs[position + 1:]}})
                    raise
                except StoreError as exc:  # the batch may have been logged: never send it twice
                    with self._lock:
                        self._failures.setdefault(rid, TrackingError(
                            f"{exc} ({len(rows) - start} buffered metrics of run {rid} may not have been logged)",
                            "TEMPORARILY_UNAVAILABLE"))
                    break

    def _requeue(self, unsent: dict[str, list[tuple]]) -> None:
        """Put back metrics that could not be sent, before any logged since."""
        with self._lock:
            for rid, rows in unsent.items():
                self._pending[rid] = rows + self._pending.get(rid, [])
                self._count += len(rows)
            if self._pending and self._oldest is None:
                self._oldest = time.monotonic()
                self._wake.notify()

    def _settle(self, run_id: str) -> None:
        """Before a call that touches ``run_id``: send its buffered metrics, raise what the
        server said of them."""
        if self._pending or self._sending:
            self.flush(run_id)
        if self._failures:
            self._raise_failure(run_id)

    def _raise_failure(self, run_id: str) -> None:
        with self._lock:
            failure = self._failures.pop(run_id, None)
        if failure is not None:
            raise failure


_STORES: "weakref.WeakSet[RestStore]" = weakref.WeakSet()
# Transport failures that happen before a request leaves: it is certainly not done.
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class NotSent(StoreError):
    """The server could not be reached: the request was certainly not carried out."""


def _after_fork() -> None:
    for store in list(_STORES):
        store._start_afresh()


os.register_at_fork(after_in_child=_after_fork)


def _flush_at_exit(ref: "weakref.ref[RestStore]") -> None:
    """atexit: send what is still buffered; report what cannot be (a script's exit never fails for it)."""
    store = ref()
    if store is None:
        return
    try:
        store.flush()
    except Exception as exc:  # noqa: BLE001 - the interpreter is going away: say it, do not raise
        print(f"warning: {store._count} metrics could not be sent to {store.url}: {exc}", file=sys.stderr)
    for run_id, failure in store._failures.items():
        print(f"warning: run {run_id}: {failure}", file=sys.stderr)


# JSON -> entities ----------------------------------------------------------------------

def _error(reply: httpx.Response) -> tuple[str | None, str | None]:
    """(error_code, message) of an MLflow error answer, or (None, None)."""
    try:
        body = reply.json()
    except ValueError:
        return None, None
    if isinstance(body, dict) and isinstance(body.get("error_code"), str):
        return body["error_code"], str(body.get("message") or body["error_code"])
    return None, None


def _pairs(kind: str, values: dict | None, check_value) -> list[dict[str, str]]:
    """``{"key", "value"}`` objects of ``values``, checked as the SQL store checks them."""
    return [{"key": check.check_key(kind, k), "value": check_value(k, v)} for k, v in (values or {}).items()]


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _batch(run_id: str, metrics: list[tuple], params: list[dict] | None = None, tags: list[dict] | None = None) -> str:
    """The body of MLflow's ``log-batch`` request. The metrics are written with one short
    f-string each: json.dumps of as many dicts costs three times more."""
    parts = [f'{{"run_id":{_json(run_id)}']
    if metrics:
        objects = []
        quoted: dict[str, str] = {}
        for key, value, timestamp, step in metrics:
            name = quoted.get(key) or quoted.setdefault(key, _json(key))
            # a finite float's repr is valid JSON (0.5, 1e-05, 1e+16); NaN and the infinities are strings
            number = repr(value) if math.isfinite(value) else f'"{json_number(value)}"'
            objects.append(f'{{"key":{name},"value":{number},"timestamp":{timestamp},"step":{step}}}')
        parts.append(f',"metrics":[{",".join(objects)}]')
    if params:
        parts.append(f',"params":{_json(params)}')
    if tags:
        parts.append(f',"tags":{_json(tags)}')
    parts.append("}")
    return "".join(parts)


def _split(run_id: str, metrics: list[tuple], params: list[dict], tags: list[dict]) -> list[str]:
    """Bodies of ``log-batch`` requests within MLflow's limits: params and tags first, metrics after."""
    bodies = []
    while params or tags or metrics:
        p, params = params[:BATCH_LIMITS["params"]], params[BATCH_LIMITS["params"]:]
        t, tags = tags[:BATCH_LIMITS["tags"]], tags[BATCH_LIMITS["tags"]:]
        room = min(BATCH_LIMITS["metrics"], BATCH_LIMITS["total"] - len(p) - len(t))
        m, metrics = metrics[:room], metrics[room:]
        bodies.append(_batch(run_id, m, p, t))
    return bodies


def _float(value) -> float:
    """A metric value from JSON: a number, or "NaN", "Infinity", "-Infinity"."""
    return value if type(value) is float else float(value)


def _pair_dict(items: list | None) -> dict[str, str]:
    return {item["key"]: item.get("value", "") for item in items or ()}


def _experiment(e: dict) -> Experiment:
    return Experiment(str(e["experiment_id"]), e.get("name", ""), e.get("artifact_location", ""),
                      e.get("lifecycle_stage", "active"), e.get("creation_time"), e.get("last_update_time"),
                      _pair_dict(e.get("tags")))


def _run_info(i: dict) -> RunInfo:
    return RunInfo(i.get("run_id") or i["run_uuid"], str(i["experiment_id"]), i.get("run_name", ""),
                   i.get("user_id", ""), i.get("status", "RUNNING"), i.get("start_time"), i.get("end_time"),
                   i.get("artifact_uri", ""), i.get("lifecycle_stage", "active"))


def _run(r: dict) -> Run:
    data = r.get("data") or {}
    run_data = RunData(params=_pair_dict(data.get("params")), tags=_pair_dict(data.get("tags")))
    for m in data.get("metrics") or ():
        metric = Metric(m["key"], _float(m["value"]), m.get("timestamp", 0), m.get("step", 0))
        run_data.metrics[metric.key] = metric.value
        run_data.latest[metric.key] = metric
    inputs = [DatasetInput(Dataset(d["dataset"]["name"], d["dataset"]["digest"], d["dataset"]["source_type"],
                                   d["dataset"]["source"], d["dataset"].get("schema"), d["dataset"].get("profile")),
                           _pair_dict(d.get("tags")))
              for d in (r.get("inputs") or {}).get("dataset_inputs") or ()]
    model_inputs = [m["model_id"] for m in (r.get("inputs") or {}).get("model_inputs") or ()]
    model_outputs = [ModelOutput(m["model_id"], int(m.get("step", 0)))
                     for m in (r.get("outputs") or {}).get("model_outputs") or ()]
    return Run(_run_info(r["info"]), run_data, inputs, model_inputs, model_outputs)


def _logged_model(m: dict) -> LoggedModel:
    info, data = m.get("info") or {}, m.get("data") or {}
    return LoggedModel(info["model_id"], str(info["experiment_id"]), info.get("name", ""), info.get("artifact_uri", ""),
                       info.get("creation_timestamp_ms"), info.get("last_updated_timestamp_ms"),
                       LoggedModelStatus.parse(info.get("status")) or LoggedModelStatus.PENDING,
                       info.get("status_message"), info.get("model_type"), info.get("source_run_id"),
                       _pair_dict(info.get("tags")), _pair_dict(data.get("params")))


def _segment(value: str) -> str:
    """An id or key as one URL path segment (a tag key may hold a slash)."""
    from urllib.parse import quote

    return quote(str(value), safe="")


def _cache_record(e: dict) -> CacheRecord:
    return CacheRecord(e["key"], e["pipeline"], e["node"], e["manifest"], e["outputs"], e.get("metrics"),
                       e.get("duration_s"), e.get("run_id"))
