"""Records a pipeline execution in the tracking store: one parent run for the pipeline and
one child run per step execution, cache hits included.

It is a :class:`~flowml.runs.Listener`, so the scheduler knows nothing of tracking. A run
where every step was already up to date records nothing (nothing happened); as soon as one
step runs or is restored, the parent run is created and every selected step gets its child
run, the up-to-date ones as cache hits pointing at the run that produced their outputs.

A step's stdout and stderr are written straight into its run's artifacts while it runs.
A heartbeat thread keeps the runs' ``heartbeat_time`` fresh, so that a flowml killed with
``kill -9`` leaves runs that the next start marks KILLED (see ``SqlStore.mark_orphans``).
"""

from __future__ import annotations

import functools
import json
import os
import socket
import sys
import threading

from flowml.artifacts.local import LocalArtifactRepository, local_path
from flowml.errors import FlowmlError
from flowml.plan import Plan
from flowml.runs import Listener, NodeResult, RunSummary, StepContext
from flowml.tracking.entities import RunStatus, now_ms
from flowml.tracking.validation import MAX_RUN_NAME

HEARTBEAT_S = 60
_STATUS = {"ran": RunStatus.FINISHED, "cached": RunStatus.FINISHED, "failed": RunStatus.FAILED,
           "killed": RunStatus.KILLED}
_PIPELINE_STATUS = {"success": RunStatus.FINISHED, "failed": RunStatus.FAILED, "interrupted": RunStatus.KILLED}


def _tracking(hook):
    """A tracking failure (the store gone, a value it refuses) stops tracking for the rest of
    the run with one warning; it never fails the steps, whose outputs are cached anyway."""
    @functools.wraps(hook)
    def call(self, *args):
        if self.broken:
            return None
        try:
            return hook(self, *args)
        except FlowmlError as exc:
            self.broken = True
            self._stop.set()
            print(f"warning: tracking stopped, the run goes on untracked: {exc}", file=sys.stderr, flush=True)
            return None

    return call


class RunRecorder(Listener):
    """Tracks the execution of ``plan`` in the store at ``tracking_uri``, in ``experiment``
    (default: the pipeline's name)."""

    def __init__(self, plan: Plan, tracking_uri: str, experiment: str | None = None) -> None:
        self.plan = plan
        self.uri = tracking_uri
        self.experiment = experiment or plan.name
        self.client = None
        self.parent_id: str | None = None
        self.children: dict[str, str] = {}  # node -> its run id
        self.artifact_dirs: dict[str, str] = {}  # run id -> its artifacts folder
        self.waiting: list[NodeResult] = []  # settled before anything happened; recorded if something does
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self.broken = False

    # listener hooks ------------------------------------------------------------------

    @_tracking
    def on_node_start(self, name: str, reasons: list[str]) -> StepContext:
        self._ensure_parent()
        run_id = self._child(name)
        repo_root = self.artifact_dirs[run_id]
        os.makedirs(os.path.join(repo_root, "logs"), exist_ok=True)
        env = {"FLOWML_TRACKING_URI": self.uri, "FLOWML_RUN_ID": run_id,
               "FLOWML_EXPERIMENT_NAME": self.experiment, "FLOWML_PARENT_RUN_ID": self.parent_id}
        if self.uri.startswith(("http://", "https://")):  # MLflow's client speaks only to a server
            env.update(MLFLOW_TRACKING_URI=self.uri, MLFLOW_RUN_ID=run_id)
        return StepContext(run_id, env, {s: os.path.join(repo_root, "logs", f"{s}.txt") for s in ("stdout", "stderr")})

    @_tracking
    def on_node_end(self, result: NodeResult) -> None:
        if self.parent_id is None and (result.status == "skipped" or (result.status == "cached" and not result.restored)):
            self.waiting.append(result)
            return
        self._ensure_parent()
        self._finish_child(result)

    @_tracking
    def on_finish(self, summary: RunSummary) -> None:
        self._stop.set()
        if self.parent_id is None:
            return  # everything was up to date: nothing happened, nothing to record
        summary.run_id = self.parent_id
        client = self.client
        ran = [r for r in summary.results if r.status == "ran"]
        cached = [r for r in summary.results if r.status == "cached"]
        client.log_batch(self.parent_id, metrics=_metrics({
            "steps_ran": len(ran), "steps_cached": len(cached),
            "steps_failed": sum(r.status in ("failed", "killed") for r in summary.results),
            "duration_s": summary.duration_s,
            # what the cache hits would have cost: the durations of the executions that made them
            "time_saved_s": sum(r.saved_s for r in cached)}))
        document = summary.to_json()
        document["edges"] = [[up, name] for name, ups in self.plan.preds.items() for up in ups]
        document["runs"] = self.children
        client.log_dict(self.parent_id, document, "pipeline.json")
        client.set_terminated(self.parent_id, _PIPELINE_STATUS[summary.status])

    # runs ----------------------------------------------------------------------------

    def _ensure_parent(self) -> None:
        if self.parent_id is not None:
            return
        from flowml.tracking.client import FlowmlClient, current_user
        from flowml.tracking.gitinfo import git_tags

        self.client = FlowmlClient(self.uri)
        self.client.store.mark_orphans()
        experiment = self.client.get_experiment_by_name(self.experiment)
        experiment_id = experiment.experiment_id if experiment else _create_experiment(self.client, self.experiment)
        self.tags = {"mlflow.user": current_user(), "mlflow.source.type": "PROJECT",
                     "mlflow.source.name": self.plan.path, "flowml.host": socket.gethostname(),
                     **git_tags(self.plan.root)}
        self.experiment_id = experiment_id
        parent = self.client.store.create_run(
            experiment_id, current_user(), None, {**self.tags, "flowml.type": "pipeline",
                                                  "flowml.pipeline": self.plan.ident},
            f"{self.plan.name}", {k: _text(v) for k, v in self.plan.params.items()})
        self.parent_id = parent.info.run_id
        self.client.store.heartbeat([self.parent_id])
        for result in self.waiting:
            if result.status != "skipped":
                self._finish_child(result)
        self.waiting.clear()
        self._beat = threading.Thread(target=self._heartbeat, name="flowml-heartbeat", daemon=True)
        self._beat.start()

    def _child(self, name: str) -> str:
        node = self.plan.nodes[name]
        params = {**node.params_used, **node.matrix}
        tags = {**self.tags, "mlflow.parentRunId": self.parent_id, "flowml.type": "step", "flowml.step": node.step,
                "flowml.node": name, "flowml.environment": node.env or "local"}
        run = self.client.store.create_run(self.experiment_id, self.tags["mlflow.user"], None, tags,
                                           name[:MAX_RUN_NAME], {k: _text(v) for k, v in params.items()})
        self.children[name] = run.info.run_id
        self.artifact_dirs[run.info.run_id] = local_path(run.info.artifact_uri)
        return run.info.run_id

    def _finish_child(self, result: NodeResult) -> None:
        if result.status == "skipped":
            return  # never executed: it appears in the parent's pipeline.json, not as a run
        run_id = result.run_id = self.children.get(result.name) or self._child(result.name)
        tags = {"flowml.state": result.status, "flowml.cache_hit": str(result.status == "cached").lower(),
                "flowml.reason": "; ".join(result.reasons)[:8000], "flowml.attempts": result.attempts,
                "flowml.duration_s": round(result.duration_s, 3)}
        if result.cache_key:
            tags["flowml.cache_key"] = result.cache_key
        if result.source_run:
            tags["flowml.cache_source_run"] = result.source_run
        if result.exit_code is not None:
            tags["flowml.exit_code"] = result.exit_code
        if result.error:
            tags["flowml.error"] = result.error[:8000]
        self.client.log_batch(run_id, metrics=_metrics(result.metrics), tags=tags)
        if result.outputs:
            digests = {p: c.digest for p, c in result.outputs.items()}
            LocalArtifactRepository(self.artifact_dirs[run_id]).write_bytes(
                "outputs.json", json.dumps(digests, indent=2).encode())
        self.client.set_terminated(run_id, _STATUS[result.status])

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.client.store.heartbeat([self.parent_id, *self.children.values()])
            except Exception:  # a missed beat only risks a late orphan mark; never kill the run for it
                pass


def _create_experiment(client, name: str) -> str:
    from flowml.errors import TrackingError

    try:
        return client.create_experiment(name)
    except TrackingError as exc:  # another run created it meanwhile
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        return client.get_experiment_by_name(name).experiment_id


def _metrics(values: dict[str, float]):
    from flowml.tracking.entities import Metric

    now = now_ms()
    return [Metric(k, float(v), now, 0) for k, v in values.items()]


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)
