"""Records a pipeline execution in the tracking store: one parent run for the pipeline and
one child run per step execution, cache hits included.

It is a :class:`~flowml.runs.Listener`, so the scheduler knows nothing of tracking. A run
where every step was already up to date records nothing (nothing happened); as soon as one
step runs or is restored, the parent run is created and every selected step gets its child
run, the up-to-date ones as cache hits pointing at the run that produced their outputs.

A step's stdout and stderr are written straight into its run's artifacts while it runs when
those are a local folder; with a tracking server they are written under ``.flowml/logs/``
and uploaded when the step ends.
A heartbeat thread keeps the open runs' ``heartbeat_time`` fresh, so that a flowml killed
with ``kill -9`` leaves runs that the next start (here or on another host) marks KILLED.

Tracking never fails a step: a value the store refuses (a metric named ``f1@0.5``) is
dropped with a warning, and if the store itself fails, tracking stops with one warning
while the steps go on; the runs opened so far are closed as well as the store allows.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import sys
import threading

from flowml.artifacts import repository
from flowml.artifacts.local import LocalArtifactRepository
from flowml.errors import FlowmlError, TrackingError
from flowml.plan import Plan
from flowml.runs import Listener, NodeResult, RunSummary, StepContext
from flowml.tracking import validation as check
from flowml.tracking.entities import Metric, RunStatus, now_ms

HEARTBEAT_S = 60
_STATUS = {"ran": RunStatus.FINISHED, "cached": RunStatus.FINISHED, "failed": RunStatus.FAILED,
           "killed": RunStatus.KILLED}
_PIPELINE_STATUS = {"success": RunStatus.FINISHED, "failed": RunStatus.FAILED, "interrupted": RunStatus.KILLED}


def _tracking(hook):
    """If the store fails (or the disk under the artifacts), stop tracking with one warning."""
    @functools.wraps(hook)
    def call(self, *args):
        if self.broken:
            return None
        try:
            return hook(self, *args)
        except (FlowmlError, OSError) as exc:
            self.broken = True
            self._stop.set()
            _warn(f"tracking stopped, the run goes on untracked: {exc}")
            return None

    return call


class RunRecorder(Listener):
    """Tracks the execution of ``plan`` in the store at ``tracking_uri``, in ``experiment``
    (default: the pipeline's name); ``tags`` (where the project came from) go on every run;
    ``steps`` adds ``{"tags": ..., "params": ...}`` to some nodes' runs (a chained project's)."""

    def __init__(self, plan: Plan, tracking_uri: str, experiment: str | None = None,
                 tags: dict[str, str] | None = None, steps: dict[str, dict[str, dict]] | None = None) -> None:
        self.plan = plan
        self.source_tags = tags or {}
        self.steps = steps or {}
        self.uri = tracking_uri
        self.experiment = experiment or plan.name
        self.client = None
        self.parent_id: str | None = None
        self.children: dict[str, str] = {}  # node -> its run id
        self.open: set[str] = set()  # runs started and not yet ended (the heartbeat's list)
        self.repos: dict = {}  # run id -> its artifact repository
        self.staged_logs: dict[str, str] = {}  # run id -> local folder of logs to upload when it ends
        self.waiting: list[NodeResult] = []  # settled before anything happened; recorded if something does
        self.broken = False
        self._lock = threading.Lock()
        self._stop = threading.Event()

    # listener hooks ------------------------------------------------------------------

    @_tracking
    def on_node_start(self, name: str, reasons: list[str]) -> StepContext:
        self._ensure_parent()
        run_id = self._child(name)
        logs = self._logs_folder(run_id)
        env = {"FLOWML_TRACKING_URI": self.uri, "FLOWML_RUN_ID": run_id, "FLOWML_EXPERIMENT_NAME": self.experiment}
        if self.uri.startswith(("http://", "https://")):  # MLflow's client speaks only to a server
            env.update(MLFLOW_TRACKING_URI=self.uri, MLFLOW_RUN_ID=run_id)
        return StepContext(run_id, env, {s: os.path.join(logs, f"{s}.txt") for s in ("stdout", "stderr")})

    @_tracking
    def on_node_end(self, result: NodeResult) -> None:
        if self.parent_id is None and (result.status == "skipped" or (result.status == "cached" and not result.restored)):
            self.waiting.append(result)
            return
        self._ensure_parent()
        self._finish_child(result)

    def on_finish(self, summary: RunSummary) -> None:
        self._stop.set()
        if self.parent_id is None:
            return  # everything was up to date: nothing happened, nothing to record
        summary.run_id = self.parent_id
        if self.broken:
            self._close_open(summary)
        else:
            self._finish_parent(summary)

    # runs ----------------------------------------------------------------------------

    def _ensure_parent(self) -> None:
        if self.parent_id is not None:
            return
        from flowml.tracking.client import FlowmlClient, current_user
        from flowml.tracking.gitinfo import git_tags

        self.client = FlowmlClient(self.uri, self.plan.root)
        self.client.mark_orphans()
        experiment = self.client.get_experiment_by_name(self.experiment)
        self.experiment_id = experiment.experiment_id if experiment else _create_experiment(self.client, self.experiment)
        self.user = current_user()
        self.tags = {"mlflow.user": self.user, "mlflow.source.type": "PROJECT", "mlflow.source.name": self.plan.path,
                     "flowml.host": socket.gethostname(), **git_tags(self.plan.root), **self.source_tags}
        self.parent_id = self._create(self.plan.name, {**self.tags, "flowml.type": "pipeline",
                                                       "flowml.pipeline": self.plan.ident}, self.plan.params)
        for result in self.waiting:
            self._finish_child(result)
        self.waiting.clear()
        threading.Thread(target=self._heartbeat, name="flowml-heartbeat", daemon=True).start()

    def _child(self, name: str) -> str:
        node, extra = self.plan.nodes[name], self.steps.get(name, {})
        tags = {**self.tags, "mlflow.parentRunId": self.parent_id, "flowml.type": "step", "flowml.step": node.step,
                "flowml.node": name, "flowml.environment": node.env or "local", **extra.get("tags", {})}
        params = {**node.params_used, **node.matrix, **extra.get("params", {})}
        run_id = self.children[name] = self._create(name[:check.MAX_RUN_NAME], tags, params)
        return run_id

    def _create(self, name: str, tags: dict[str, str], params: dict) -> str:
        run = self.client.store.create_run(self.experiment_id, self.user, None, tags, name,
                                           _loggable("param", {k: str(v) for k, v in params.items()}), heartbeat=True)
        run_id = run.info.run_id
        self.repos[run_id] = repository(run.info.artifact_uri, self.uri)
        with self._lock:
            self.open.add(run_id)
        return run_id

    def _logs_folder(self, run_id: str) -> str:
        """Where a step's stdout and stderr go: into its artifacts if they are a local folder
        (a reader sees them grow), else a staging folder uploaded when the step ends."""
        repo = self.repos[run_id]
        if isinstance(repo, LocalArtifactRepository):
            folder = repo.path_of("logs")
        else:
            folder = self.staged_logs[run_id] = os.path.join(self.plan.root, ".flowml", "logs", run_id)
        os.makedirs(folder, exist_ok=True)
        return folder

    def _finish_child(self, result: NodeResult) -> None:
        if result.status == "skipped":
            return  # never executed: it appears in the parent's pipeline.json, not as a run
        run_id = result.run_id = self.children.get(result.name) or self._child(result.name)
        tags = {"flowml.state": result.status, "flowml.cache_hit": str(result.status == "cached").lower(),
                "flowml.reason": "; ".join(result.reasons)[:check.MAX_TAG_VALUE], "flowml.attempts": result.attempts,
                "flowml.duration_s": round(result.duration_s, 3)}
        if result.cache_key:
            tags["flowml.cache_key"] = result.cache_key
        if result.source_run:
            tags["flowml.cache_source_run"] = result.source_run
        if result.exit_code is not None:
            tags["flowml.exit_code"] = result.exit_code
        if result.error:
            tags["flowml.error"] = result.error[:check.MAX_TAG_VALUE]
        self.client.log_batch(run_id, metrics=_metrics(_loggable("metric", result.metrics)), tags=tags)
        if result.outputs:
            digests = {p: c.digest for p, c in result.outputs.items()}
            self.repos[run_id].write_bytes("outputs.json", json.dumps(digests, indent=2).encode())
        if run_id in self.staged_logs:  # uploaded, then dropped; kept on disk if the upload fails
            staged = self.staged_logs.pop(run_id)
            self.repos[run_id].log_artifacts(staged, "logs")
            shutil.rmtree(staged, ignore_errors=True)
        self._end(run_id, _STATUS[result.status])

    def _finish_parent(self, summary: RunSummary) -> None:
        try:
            cached = [r for r in summary.results if r.status == "cached"]
            self.client.log_batch(self.parent_id, metrics=_metrics({
                "steps_ran": sum(r.status == "ran" for r in summary.results), "steps_cached": len(cached),
                "steps_failed": sum(r.status in ("failed", "killed") for r in summary.results),
                "duration_s": summary.duration_s,
                # what the cache hits would have cost: the durations of the executions that made them
                "time_saved_s": sum(r.saved_s for r in cached)}))
            document = summary.to_json()
            document["edges"] = [[up, name] for name, ups in self.plan.preds.items() for up in ups]
            document["runs"] = self.children
            self.repos[self.parent_id].write_bytes("pipeline.json", json.dumps(document, indent=2).encode())
            self._end(self.parent_id, _PIPELINE_STATUS[summary.status])
        except (FlowmlError, OSError) as exc:
            _warn(f"tracking could not record the end of the pipeline run: {exc}")
            self._close_open(summary)

    def _end(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status)
        with self._lock:
            self.open.discard(run_id)

    def _close_open(self, summary: RunSummary) -> None:
        """After a tracking failure: end what is still open, as far as the store lets us, so
        that no run waits in RUNNING for the orphan sweep."""
        final = {self.children.get(r.name): _STATUS.get(r.status, RunStatus.FAILED) for r in summary.results}
        final[self.parent_id] = _PIPELINE_STATUS[summary.status]
        for run_id in list(self.open):
            try:
                self._end(run_id, final.get(run_id, RunStatus.FAILED))
            except (FlowmlError, OSError):
                return  # the store is gone: the next start's orphan sweep will close them

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with self._lock:
                alive = list(self.open)
            try:
                self.client.heartbeat(alive)
            except Exception:  # a missed beat only risks a late orphan mark; never kill the run for it
                pass


def _loggable(kind: str, values: dict) -> dict:
    """``values`` without the entries the store would refuse (each dropped with a warning)."""
    kept = {}
    for key, value in values.items():
        try:
            check.check_key(kind, key)
            kept[key] = check.metric_value(key, value) if kind == "metric" else check.param_value(key, value)
        except TrackingError as exc:
            _warn(f"not tracked: {exc}")
    return kept


def _create_experiment(client, name: str) -> str:
    try:
        return client.create_experiment(name)
    except TrackingError as exc:  # another run created it meanwhile
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        return client.get_experiment_by_name(name).experiment_id


def _metrics(values: dict[str, float]) -> list[Metric]:
    now = now_ms()
    return [Metric(k, float(v), now, 0) for k, v in values.items()]


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)
