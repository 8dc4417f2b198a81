"""``--executor dask``: each step that must run becomes one task on a Dask cluster.

The scheduler decides cache hits before a step reaches an executor, so cached steps never
reach the cluster. A step that runs is submitted as :func:`flowml_dask.worker.run_step` with
its :class:`~flowml.executors.StepSpec` and the project's files (archived and scattered once
per run, when the first step is submitted); ``run`` waits on the task's future in the
scheduler's thread for that step. The worker uploads the outputs to the step's run on the
tracking server and returns their digests with the step's logs, which are written where the
step's logs go locally (the run recorder uploads them, as for any step).

Ctrl-C (``kill_all``) tells every worker to stop this run's steps (their process groups get
SIGTERM, then SIGKILL), waits a little for them to report, and cancels what is left. A worker
that dies mid-step loses its task to Dask, which runs it again on another worker.

Steps that declare GPUs ask Dask for the worker resource ``GPU`` (start such workers with
``--resources GPU=N``); the offer the scheduler admits steps against is the cluster's
threads, memory and GPUs when the run starts, unless ``--cpus/--memory/--gpus`` say otherwise.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
import zlib

from flowml.errors import FlowmlError, Problem, SpecError
from flowml.executors import Executor, ProcessResult, Task
from flowml.plan import Plan

SCHEDULER_VARIABLE = "FLOWML_DASK_SCHEDULER"
STOP_WAIT_S = 10  # how long Ctrl-C waits for stopped steps to report (their logs) before cancelling


class DaskExecutor(Executor):
    remote = True

    def __init__(self, scheduler: str | None = None) -> None:
        """Connects on first use, so that bad input elsewhere is reported first.

        Raises:
            SpecError: without a scheduler address.
        """
        self.address = scheduler or os.environ.get(SCHEDULER_VARIABLE)
        if not self.address:
            raise SpecError(Problem(f"--executor dask needs the cluster's scheduler: pass --scheduler tcp://HOST:8786 "
                                    f"or set {SCHEDULER_VARIABLE}", "command line", field="--scheduler"))
        self.plan: Plan | None = None
        self._client = None
        self._project = None  # the scattered archive of the project's files
        self._lock = threading.Lock()
        self._running: dict[str, object] = {}  # step id -> its Dask future
        self._killing = False

    @property
    def client(self):
        """The Dask client, connected on first use (giving up after Dask's connect timeout,
        ``distributed.comm.timeouts.connect``: 30 s unless configured).

        Raises:
            SpecError: when the scheduler cannot be reached.
        """
        with self._lock:
            if self._client is None:
                from distributed import Client

                try:
                    self._client = Client(self.address, set_as_default=False)
                except (OSError, TimeoutError, ValueError) as exc:
                    raise SpecError(Problem(f"cannot reach the Dask scheduler at {self.address}: {exc}",
                                            "command line", field="--scheduler")) from None
            return self._client

    def capacity(self) -> tuple[float, int | None, int]:
        """The cluster's worker threads, memory and ``GPU`` resources, now.

        Raises:
            SpecError: when the cluster has no workers.
        """
        workers = self.client.scheduler_info(n_workers=-1)["workers"].values()
        if not workers:
            raise SpecError(Problem(f"the Dask cluster at {self.address} has no workers", "command line",
                                    field="--scheduler"))
        memory = [w.get("memory_limit") or 0 for w in workers]
        return (float(sum(w["nthreads"] for w in workers)), sum(memory) if all(memory) else None,
                int(sum((w.get("resources") or {}).get("GPU", 0) for w in workers)))

    def start(self, plan: Plan) -> None:
        self.plan = plan

    def run(self, task: Task) -> ProcessResult:
        from concurrent.futures import CancelledError

        from flowml_dask.worker import run_step

        start = time.perf_counter()
        step_id = uuid.uuid4().hex
        try:
            project = self._project_archive()
        except FlowmlError as exc:
            return ProcessResult(None, time.perf_counter() - start, error=str(exc))
        gpus = int(task.step.node.resources.get("gpus", 0))
        with self._lock:
            if self._killing:
                return ProcessResult(None, 0.0, killed=True)
            future = self._client.submit(run_step, task.step, task.name, task.timeout, project, step_id,
                                         key=f"flowml-step-{_safe(task.name)}-{step_id}", pure=False,
                                         resources={"GPU": gpus} if gpus else None)
            self._running[step_id] = future
        try:
            outcome = future.result()
        except CancelledError:
            return ProcessResult(None, time.perf_counter() - start, killed=True)
        except Exception as exc:  # the cluster's fault (a worker that kept dying, a lost connection)
            return ProcessResult(None, time.perf_counter() - start, error=f"on the Dask cluster: {exc!r}")
        finally:
            with self._lock:
                self._running.pop(step_id, None)
        for stream, path in (("stdout", task.stdout), ("stderr", task.stderr)):
            with open(path, "ab") as fh:
                fh.write(zlib.decompress(outcome.logs[stream]))
        process = outcome.process
        process.duration_s = time.perf_counter() - start
        process.killed = process.killed or self._killing
        return process

    def kill_all(self) -> None:
        from distributed import wait

        from flowml_dask.worker import stop_steps

        with self._lock:
            self._killing = True
            running = dict(self._running)
        if not running:
            return
        try:
            self._client.run(stop_steps, list(running), on_error="ignore")
            wait(list(running.values()), timeout=STOP_WAIT_S)
        except Exception:  # a step still queued, a worker gone: cancel what did not report
            pass
        self._client.cancel([f for f in running.values() if not f.done()], force=True)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _project_archive(self):
        """The project's files, archived and scattered to the cluster on first use.

        Raises:
            ProjectTooBig: when they are too big to ship.
        """
        from flowml_dask.project import project_archive

        client = self.client
        with self._lock:
            if self._project is None:
                outputs = [o for node in self.plan.nodes.values() for o in node.outputs]
                # on every worker: a step then goes wherever a thread is free, not where the files are
                self._project = client.scatter(project_archive(self.plan.root, outputs), hash=False, broadcast=True)
            return self._project


def _safe(name: str) -> str:
    """A node name as a Dask key part (matrix nodes hold brackets and '=')."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
