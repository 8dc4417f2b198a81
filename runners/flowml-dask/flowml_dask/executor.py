"""``--executor dask``: each step that must run becomes one task on a Dask cluster.

The scheduler decides cache hits before a step reaches an executor, so cached steps never
reach the cluster. A step that runs is submitted as :func:`flowml_dask.worker.run_step` with
its :class:`~flowml.executors.StepSpec` and the project's files (archived once per run, when
the first step is submitted, and held by the cluster as the result of a task that carries them,
so that the scheduler makes them again should every worker holding them die; data scattered
to the workers would be lost with them, and every step waiting on it cancelled); ``run``
waits on the task's future in the
scheduler's thread for that step. The worker uploads the outputs to the step's run on the
tracking server and returns their digests with the step's logs, which are written where the
step's logs go locally (the run recorder uploads them, as for any step).

Ctrl-C (``kill_all``) tells every worker to stop this run's steps (their process groups get
SIGTERM, then SIGKILL), waits a little for them to report, and cancels what is left. A worker
that dies mid-step loses its task to Dask, which runs it again on another worker; the first
attempt's process dies with the worker (:mod:`flowml_dask.guard`).

Steps that declare GPUs ask Dask for the worker resource ``GPU`` (start such workers with
``--resources GPU=N``); the offer the scheduler admits steps against is the cluster's
threads, memory and GPUs when the run starts, unless ``--cpus/--memory/--gpus`` say otherwise,
and no step may ask for more than the largest worker has (it would wait for ever).
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
import zlib

from flowml.errors import FlowmlError, Problem, SpecError
from flowml.executors import Capacity, Executor, ProcessResult, Task
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
        self._project = None  # the future of the project's files
        self._lock = threading.Lock()
        self._running: dict[str, object] = {}  # step id -> its Dask future
        self._killing = False
        self._placed: dict[str, str | None] = {}  # step id -> the worker it was asked for on

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

    def capacity(self) -> Capacity:
        """The cluster's worker threads, memory and ``GPU`` resources now, in all and on its
        largest worker (a worker without a memory limit has no known memory).

        Raises:
            SpecError: when the cluster has no workers.
        """
        workers = self.client.scheduler_info(n_workers=-1)["workers"].values()
        if not workers:
            raise SpecError(Problem(f"the Dask cluster at {self.address} has no workers", "command line",
                                    field="--scheduler"))
        threads = [float(w["nthreads"]) for w in workers]
        memory = [w.get("memory_limit") or 0 for w in workers]
        gpus = [int((w.get("resources") or {}).get("GPU", 0)) for w in workers]
        known = all(memory)
        return Capacity((sum(threads), sum(memory) if known else None, sum(gpus)),
                        (max(threads), max(memory) if known else None, max(gpus)),
                        f"the Dask cluster at {self.address}")

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
            worker = None if gpus else self._least_loaded_worker()
            placement = {"workers": [worker], "allow_other_workers": True} if worker else {}
            future = self._client.submit(run_step, task.step, task.name, task.timeout, project, step_id,
                                         key=f"flowml-step-{_safe(task.name)}-{step_id}", pure=False,
                                         resources={"GPU": gpus} if gpus else None, **placement)
            self._running[step_id] = future
            self._placed[step_id] = worker
        try:
            outcome = future.result()
        except CancelledError:
            return ProcessResult(None, time.perf_counter() - start, killed=True)
        except Exception as exc:  # the cluster's fault (a worker that kept dying, a lost connection)
            return ProcessResult(None, time.perf_counter() - start, error=f"on the Dask cluster: {exc!r}")
        finally:
            with self._lock:
                self._running.pop(step_id, None)
                self._placed.pop(step_id, None)
        for stream, path in (("stdout", task.stdout), ("stderr", task.stderr)):
            with open(path, "ab") as fh:
                fh.write(zlib.decompress(outcome.logs[stream]))
        process = outcome.process
        process.duration_s = time.perf_counter() - start
        process.killed = process.killed or self._killing
        return process

    def _least_loaded_worker(self) -> str | None:
        """The worker with the fewest of this run's steps per thread (called under the lock).

        Every step depends on the project's archive, and Dask places a task on a worker that
        holds its dependencies: left to itself it queued every step on the one worker holding
        the archive while the others idled (work stealing moved them only sometimes). So each
        step is asked for on the least loaded worker, counted here (the scheduler may not have
        seen the previous submission yet), as a loose restriction: Dask still places it elsewhere
        when that worker is gone. A step needing GPUs is left to Dask, which matches resources."""
        workers = self._client.scheduler_info(n_workers=-1)["workers"]
        if len(workers) < 2:
            return None
        load = {address: 0 for address in workers}
        for address in self._placed.values():
            if address in load:
                load[address] += 1
        return min(load, key=lambda a: (load[a] / max(float(workers[a].get("nthreads") or 1), 1.0), a))

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
        """The future of the project's files, archived and submitted on first use.

        Raises:
            ProjectTooBig: when they are too big to ship.
        """
        import dask

        from flowml_dask.project import project_archive
        from flowml_dask.worker import held

        client = self.client
        with self._lock:
            if self._project is None:
                nodes = self.plan.nodes.values()
                archive = project_archive(self.plan.root, [o for n in nodes for o in n.outputs],
                                          [i for n in nodes for i in n.inputs])
                # the archive is the graph's only large part, and bounded by the project's limit
                with dask.config.set({"distributed.admin.large-graph-warning-threshold": len(archive) + 2**24}):
                    self._project = client.submit(held, archive, key=f"flowml-project-{uuid.uuid4().hex}",
                                                  pure=False)
            return self._project


def _safe(name: str) -> str:
    """A node name as a Dask key part (matrix nodes hold brackets and '=')."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
