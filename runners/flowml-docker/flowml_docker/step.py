"""One step's command in a container: ``python -m flowml_docker.step SPEC -- ARGV``.

The docker environment wraps a step's argv in this small host process, so the executor
starts, times out and stops a container step as it does any step. It creates the container,
copies the container's stdout and stderr to its own (the step's log files) as they come, and
exits with the container's exit code; 125 when the container could not be run at all. Stopped
(SIGTERM, SIGINT, SIGHUP: the executor's kill, a timeout, Ctrl-C), it stops the container (a
SIGTERM, SIGKILL after a short grace), removes it and exits with 128 + the signal's number.

The container gets:
- the project folder at its own path, as the working folder, so the step's relative and
  absolute paths mean what they mean on the host; also the folder of an SQLite tracking store
  (its artifacts beside it) and ``FLOWML_ARTIFACT_ROOT`` when they lie outside the project;
- the caller's uid and gid, so that what it writes belongs to the caller;
- the host's network, so a tracking server on 127.0.0.1 answers inside too;
- the variables the step declares (``env_vars``) and those named ``FLOWML_*`` or ``MLFLOW_*``
  (the step's run, its tracking URI); not the rest of the host's, whose PATH or virtualenv
  mean nothing in the image;
- its declared resources as limits: ``cpus`` a CPU quota, ``memory`` a memory limit (a step
  killed for exceeding it says so on stderr), ``gpus`` the devices the scheduler granted (or
  the environment's ``gpus``).

Containers are labelled with the project, the environment, the step and their owner (host and
this process's id), so that the next run removes those of an owner that died before it could.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import uuid
from typing import Any

from flowml.errors import FlowmlError

from flowml_docker.engine import engine, engine_errors

PROJECT_LABEL = "flowml.project"
ENVIRONMENT_LABEL = "flowml.environment"
STEP_LABEL = "flowml.step"
OWNER_LABEL = "flowml.owner"  # "<host>:<pid>" of the process that runs the container
PASSED_PREFIXES = ("FLOWML_", "MLFLOW_")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
STOP_TIMEOUT_S = 2  # the executor's own grace (5 s) must cover the stop and the removal
ENGINE_FAILED = 125  # what `docker run` exits with when the container could not be run


class _Stopped(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def main(args: list[str]) -> int:
    spec, argv = json.loads(args[0]), args[args.index("--") + 1:]
    for sig in STOP_SIGNALS:
        signal.signal(sig, _raise_stopped)
    name = container_name(spec.get("step") or spec["environment"])
    try:
        return _run(spec, argv, name)
    except _Stopped as stopped:
        return 128 + stopped.signum
    except FlowmlError as exc:
        _say(str(exc))
        return ENGINE_FAILED
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # a second Ctrl-C must not cut the clean-up short
        _discard(name)


def _run(spec: dict[str, Any], argv: list[str], name: str) -> int:
    """Run ``argv`` in a new container ``name``; its exit code."""
    client = engine()
    what = f"step {spec['step']}" if spec.get("step") else "a command"
    with engine_errors(f"running {what} in image {spec['image']}"):
        container = client.containers.create(spec["image"], argv, name=name, **container_options(spec, os.environ))
        stream = client.api.attach(container.id, stdout=True, stderr=True, stream=True, logs=True, demux=True)
        container.start()
        for out, err in stream:
            _copy(out, sys.stdout)
            _copy(err, sys.stderr)
        code = container.wait()["StatusCode"]
        container.reload()
    if container.attrs.get("State", {}).get("OOMKilled"):
        _say(f"the container ran out of memory (its limit: {spec.get('memory')} bytes) and was killed")
    return code


def container_options(spec: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    """The keyword arguments of ``containers.create`` for ``spec`` (see the module's
    documentation), the container's variables taken from ``environ``."""
    root = spec["root"]
    options: dict[str, Any] = {
        "working_dir": root,
        "volumes": {path: {"bind": path, "mode": "rw"} for path in mounts(root, environ)},
        "user": f"{os.getuid()}:{os.getgid()}",
        "network_mode": "host",
        "environment": {k: v for k, v in environ.items() if k in spec.get("pass", ()) or k.startswith(PASSED_PREFIXES)},
        "labels": {PROJECT_LABEL: root, ENVIRONMENT_LABEL: spec["environment"], STEP_LABEL: spec.get("step") or "",
                   OWNER_LABEL: f"{socket.gethostname()}:{os.getpid()}"},
    }
    if spec.get("cpus"):
        options["nano_cpus"] = round(float(spec["cpus"]) * 1e9)
    if spec.get("memory"):
        options["mem_limit"] = int(spec["memory"])
    devices = device_requests(spec.get("gpus"), environ)
    if devices:
        options["device_requests"] = devices
    return options


def mounts(root: str, environ: dict[str, str]) -> list[str]:
    """The project folder, plus the folders of a local tracking store outside it."""
    folders = [root]
    uri = environ.get("FLOWML_TRACKING_URI", "")
    if uri.startswith("sqlite:///") and uri != "sqlite:///:memory:":
        folders.append(os.path.dirname(os.path.abspath(uri[len("sqlite:///"):])))
    artifacts = environ.get("FLOWML_ARTIFACT_ROOT", "")
    if artifacts.startswith("/"):
        folders.append(artifacts)
    elif artifacts.startswith("file:///"):
        folders.append(artifacts[len("file://"):])
    chosen: list[str] = []
    for folder in sorted(set(map(os.path.normpath, folders)), key=len):  # parents first
        if not any(folder == c or folder.startswith(c.rstrip("/") + "/") for c in chosen) and os.path.isdir(folder):
            chosen.append(folder)
    return chosen


def device_requests(gpus: Any, environ: dict[str, str]) -> list:
    """GPU requests: ``granted`` is the devices in ``CUDA_VISIBLE_DEVICES`` (the scheduler's
    grant to a step that declared gpus), ``all`` every GPU, a number that many."""
    from docker.types import DeviceRequest

    if gpus == "granted":
        ids = [d.strip() for d in environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
        return [DeviceRequest(device_ids=ids, capabilities=[["gpu"]])] if ids else []
    if gpus == "all":
        return [DeviceRequest(count=-1, capabilities=[["gpu"]])]
    if isinstance(gpus, int) and gpus > 0:
        return [DeviceRequest(count=gpus, capabilities=[["gpu"]])]
    return []


def container_name(step: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", step).strip("-._")[:40] or "step"
    return f"flowml-step-{slug}-{uuid.uuid4().hex[:8]}"


def _discard(name: str) -> None:
    """Stop and remove the container ``name`` if it exists. Quiet: whatever ended the step is
    what the step's log and exit code tell."""
    import docker.errors
    import requests

    try:
        container = engine().containers.get(name)
        if container.status == "running":
            container.stop(timeout=STOP_TIMEOUT_S)
        container.remove(force=True)
    except (docker.errors.DockerException, requests.exceptions.RequestException, FlowmlError):
        pass


def _copy(chunk: bytes | None, stream) -> None:
    if chunk:
        stream.buffer.write(chunk)
        stream.buffer.flush()


def _say(message: str) -> None:
    print(f"flowml-docker: {message}", file=sys.stderr, flush=True)


def _raise_stopped(signum: int, frame) -> None:
    raise _Stopped(signum)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
