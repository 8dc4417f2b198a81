"""What a Dask worker runs for one step: the project unpacked into a fresh workspace, the
inputs that upstream steps wrote fetched from the tracking server, the step run in its
environment, its outputs uploaded to its run; then the workspace is removed.

It reuses the core's parts as a local run would: :class:`ProjectCache` fetches objects from
a run's artifacts (checked against their digests), restores and saves outputs and uploads
them (``publish``), exactly as it does for a cache hit made on another machine;
:func:`load_environment` prepares the step's environment here (a uv environment lands in
this machine's shared folder); :class:`LocalExecutor` runs the process in its own process
group with the step's timeout, under :mod:`flowml_dask.guard` so that it dies with the worker.
Every input is checked against the digest the client computed its cache key with, and the
environment against the client's fingerprint, so an entry never records outputs of inputs or
packages it did not see.

The client stops a step through :func:`stop_steps` (``Client.run`` on every worker), since
cancelling a Dask future cannot interrupt a task that has started.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import zlib
from dataclasses import dataclass

from flowml.cache.hashing import Content
from flowml.cache.index import Entry
from flowml.cache.keys import MISSING
from flowml.cache.store import ProjectCache
from flowml.environments import base_env, load_environment
from flowml.errors import FlowmlError
from flowml.executors import ProcessResult, StepSpec, Task
from flowml.executors.local import LocalExecutor
from flowml_dask import guard
from flowml_dask.project import unpack

_lock = threading.Lock()
_running: dict[str, LocalExecutor] = {}  # step id -> the executor running its process here
_stopped: set[str] = set()  # step ids the client stopped, should they start here later


@dataclass
class StepOutcome:
    """What comes back to the client: how the process ended, its outputs, its logs."""

    process: ProcessResult  # with ``outputs`` when it succeeded and they were uploaded
    logs: dict[str, bytes]  # stream -> zlib-compressed text
    worker: str


class StepSetupError(FlowmlError):
    """The workspace could not be made ready for the step (an input, the environment)."""


def run_step(spec: StepSpec, name: str, timeout: float | None, archive: bytes, step_id: str) -> StepOutcome:
    """Run one attempt of step ``name`` here; never raises for the step's own faults."""
    with tempfile.TemporaryDirectory(prefix="flowml-step-", dir=_scratch()) as tmp:
        root, logs = os.path.join(tmp, "project"), {s: os.path.join(tmp, f"{s}.txt") for s in ("stdout", "stderr")}
        for path in logs.values():
            open(path, "wb").close()
        unpack(archive, root)
        cache = ProjectCache(root, spec.tracking_uri)
        try:
            process = _run(spec, name, timeout, cache, tmp, logs, step_id)
        except (FlowmlError, OSError) as exc:
            process = ProcessResult(None, 0.0, error=str(exc))
        finally:
            cache.close()
        return StepOutcome(process, {s: _compressed(p) for s, p in logs.items()}, _address())


def held(archive: bytes) -> bytes:
    """The project's files as a task's result: the scheduler can make it again from the task,
    should every worker holding it die."""
    return archive


def stop_steps(step_ids: list[str]) -> None:
    """Stop the processes of ``step_ids`` running here (SIGTERM, then SIGKILL after a grace
    period, in the background: this runs on the worker's event loop), and refuse them later."""
    with _lock:
        _stopped.update(step_ids)
        found = [_running[i] for i in step_ids if i in _running]
    for executor in found:
        threading.Thread(target=executor.kill_all, name="flowml-stop", daemon=True).start()


def _run(spec: StepSpec, name: str, timeout: float | None, cache: ProjectCache, workspace: str,
         logs: dict[str, str], step_id: str) -> ProcessResult:
    _bring_inputs(spec, cache)
    kind, env_name, config = spec.environment
    env = load_environment(kind, env_name, config, cache.root)
    if env.fingerprint() != spec.fingerprint:
        raise StepSetupError(f"environment {env_name} differs on this worker from the client's (fingerprint "
                             f"{env.fingerprint()} here, {spec.fingerprint} there), so its outputs cannot be "
                             f"recorded under the run's cache key: give the workers the client's packages"
                             f"{' (or declare a python environment)' if kind == 'local' else ''}")
    env.prepare()
    argv = [sys.executable, "-I", "-S", guard.__file__, str(os.getpid()), workspace, "--",
            *env.wrap_step(spec.command, spec.node)]
    task = Task(name, argv, cache.root, env.process_env({**base_env(), **spec.variables}), logs["stdout"],
                logs["stderr"], timeout)
    executor = LocalExecutor()
    with _lock:
        if step_id in _stopped:
            return ProcessResult(None, 0.0, killed=True)
        _running[step_id] = executor
    try:
        process = executor.run(task)
    finally:
        with _lock:
            _running.pop(step_id, None)
    if process.ok:
        process.outputs, _ = cache.save_outputs(spec.node.outputs)
        cache.publish(Entry("", name, {}, process.outputs, {}, run_id=spec.run_id))
    return process


def _bring_inputs(spec: StepSpec, cache: ProjectCache) -> None:
    """Restore the upstream outputs the step reads from the runs that hold them, then check
    every input against its digest.

    Raises:
        StepSetupError: an output that cannot be fetched, an input that differs.
    """
    by_run: dict[str | None, dict[str, Content]] = {}
    for path, (content, run_id) in spec.upstream.items():
        by_run.setdefault(run_id, {})[path] = content
    for run_id, outputs in by_run.items():
        entry = Entry("", spec.node.name, {}, outputs, {}, run_id=run_id)
        cache.fetch(entry)
        lost = [p for p, c in outputs.items() if not cache.objects.has_content(c)]
        if lost:
            raise StepSetupError(f"{', '.join(lost)}, written by an upstream step, could not be fetched from run "
                                 f"{run_id} on the tracking server {spec.tracking_uri}")
        cache.restore(entry, list(outputs), {})
    own = tuple(spec.node.outputs)
    found = {p: cache.input_digest(p, {}, own) for p in spec.inputs}
    lost = [p for p, digest in spec.inputs.items() if found[p] == MISSING and digest != MISSING]
    if lost:
        raise StepSetupError(f"{', '.join(lost)} did not reach this worker: not shipped with the project's files "
                             "(an input outside the pipeline's folder never is)")
    changed = [p for p, digest in spec.inputs.items() if found[p] != digest]
    if changed:
        raise StepSetupError(f"{', '.join(changed)} differ{'s' if len(changed) == 1 else ''} from what the run's "
                             "cache key was computed with (edited after the run began?)")


def _compressed(path: str) -> bytes:
    with open(path, "rb") as fh:
        return zlib.compress(fh.read(), 1)


def _scratch() -> str | None:
    """The worker's local directory (``dask worker --local-directory``), else the system's temp folder."""
    try:
        from distributed import get_worker

        return get_worker().local_directory
    except ValueError:  # not on a worker (called directly)
        return None


def _address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except ValueError:
        return ""
