"""The ``local`` target: ``flowml models serve`` as a managed process on this machine.

The server runs detached in its own session, so it outlives the command (or the pipeline
step) that deployed it; its pid, address, worker count, model URI, version and log file are
in the deployment's record. Switching a running deployment to a new model drops no request:

* the same alias URI (``models:/wine@candidate`` now naming version 4) on the same host,
  port and number of workers: the server is sent SIGHUP, re-resolves the alias and swaps the
  model in place; the deploy waits until ``/version`` reports that every worker serves the
  new version, and fails at once when the server reports that the version did not load;
* any other change (another URI, ``--host``, ``--port`` or ``--workers``): a new server
  starts beside the old one (on the same port both bind with SO_REUSEPORT), is checked to
  listen and answer ``/ping``, and only then is the old one stopped gracefully (it finishes
  what it accepted).

A new server that fails its check is stopped and the old one keeps serving untouched.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

from flowml.deployments import Deployment, DeploymentError, DeploymentTarget, processes
from flowml.deployments.health import READY_TIMEOUT_S, ping, url_of, wait_ready
from flowml.deployments.versions import current_version, movable, tracking_uri_of

LOG = "server.log"


class LocalTarget(DeploymentTarget):
    kind = "local"

    def deploy(self, name: str, model_uri: str, config: dict[str, Any]) -> Deployment:
        with self.records.lock(name):
            old = self.records.find(name)
            if old is not None and old.target != self.kind:
                raise DeploymentError(f"deployment '{name}' runs on target '{old.target}': delete it first, "
                                      f"or deploy with --target {old.target}", exit_code=2)
            running = old if old is not None and processes.alive(old.handle) else None
            version = current_version(model_uri, self.root)
            host, port, workers = self.placement(old, config)
            if (running and movable(model_uri) and running.model_uri == model_uri
                    and (running.host, running.port, running.workers) == (host, port, workers)):
                deployment = self._reload(running, version, config)
            else:
                deployment = self._replace(name, model_uri, version, (host, port, workers), config, running)
            self.records.save(deployment)
            return deployment

    def status(self, name: str) -> Deployment:
        deployment = self.records.get(name)
        if not processes.alive(deployment.handle):
            deployment.state = "stopped"
        elif not ping(deployment.url):
            deployment.state = "unhealthy"
        else:
            deployment.state = "running"
        return deployment

    def delete(self, name: str) -> None:
        with self.records.lock(name):
            deployment = self.records.get(name)
            processes.stop(deployment.handle)
            self.records.remove(name)

    def logs(self, name: str, tail: int | None = None) -> str:
        deployment = self.records.get(name)
        try:
            with open(deployment.log, encoding="utf-8", errors="replace") as fh:
                lines = fh.readlines()
        except OSError:
            return ""
        return "".join(lines[-tail:] if tail else lines)

    # switching -----------------------------------------------------------------------

    def _reload(self, running: Deployment, version: str | None, config: dict[str, Any]) -> Deployment:
        """SIGHUP: the server re-resolves its alias and swaps the model in every worker without
        a restart. Done when every worker serves ``version``; failed as soon as the server
        reports that ``version`` did not load (its workers then keep the old one)."""
        if version == running.version:
            return running
        told = time.time()
        processes.send(running.handle, signal.SIGHUP)
        timeout = float(config.get("timeout") or READY_TIMEOUT_S)
        deadline = time.monotonic() + timeout
        see = f"see flowml deployments logs {running.name}"
        while True:
            served = _served(running.url)
            failure = _failure(served, version, since=told)
            if failure is not None:
                raise DeploymentError(f"deployment '{running.name}' could not load version {version} of "
                                      f"{running.model_uri}: {failure}; version {running.version} is still "
                                      f"served at {running.url}")
            if _serves(served, version):
                break
            if not processes.alive(running.handle):
                raise DeploymentError(f"deployment '{running.name}' stopped while reloading "
                                      f"{running.model_uri}; {see}")
            if time.monotonic() > deadline:
                raise DeploymentError(f"deployment '{running.name}' does not serve version {version} in every "
                                      f"worker {timeout:g} s after being told to load it; {see}")
            time.sleep(0.1)
        running.version, running.updated = version, time.time()
        return running

    def _replace(self, name: str, model_uri: str, version: str | None, placement: tuple[str, int, int],
                 config: dict[str, Any], running: Deployment | None) -> Deployment:
        """Start a new server, check it, then stop the old one (if any)."""
        from flowml.models.serving.workers import REUSE_PORT_ENV

        host, port, workers = placement
        log = os.path.join(self.records.folder(name), LOG)
        argv = [sys.executable, "-m", "flowml", "models", "serve", "-m", model_uri, "--host", host,
                "--port", str(port), "--workers", str(workers)]
        env = {**os.environ, "FLOWML_TRACKING_URI": tracking_uri_of(self.root), REUSE_PORT_ENV: "1"}
        label = f" (version {version})" if version else ""
        handle = processes.start(argv, self.root, env, log, f"deploy {model_uri}{label} on {host}:{port}")
        url = url_of(host, port)
        try:
            problem = self._check(handle, url, port, float(config.get("timeout") or READY_TIMEOUT_S))
        except BaseException:  # Ctrl-C or SIGTERM mid-deploy: no half-started server left behind
            processes.stop(handle)
            raise
        if problem:
            processes.stop(handle)
            kept = f"; {running.model_uri} is still served at {running.url}" if running else ""
            raise DeploymentError(f"deploying {model_uri} as '{name}' failed: {problem}{kept}\n"
                                  f"{_tail(log, 15)}")
        if running is not None:
            processes.stop(running.handle)
        return Deployment(name, self.kind, model_uri, port, url, version, "running", log, time.time(), handle,
                          host=host, workers=workers)

    def _check(self, handle: dict[str, Any], url: str, port: int, timeout: float) -> str | None:
        """Why the new server is not ready, or None: it must answer ``/ping`` and, since an
        old server on the same port could answer for it, hold a listening socket itself."""
        problem = wait_ready(url, lambda: processes.alive(handle), timeout)
        if problem:
            return problem
        deadline = time.monotonic() + timeout
        while not processes.listens_on(handle, port):
            if not processes.alive(handle):
                return "the server exited before it listened on its port"
            if time.monotonic() > deadline:
                return f"the server did not listen on port {port} within {timeout:g} s"
            time.sleep(0.05)
        return None


def _served(url: str) -> dict[str, Any]:
    """What ``url``/version reports (empty when it does not answer)."""
    import httpx

    try:
        served = httpx.get(url + "/version", timeout=2.0).json()
    except (httpx.HTTPError, ValueError):
        return {}
    return served if isinstance(served, dict) else {}


def _serves(served: dict[str, Any], version: str | None) -> bool:
    """Whether the server serves ``version`` in every worker. ``/version`` is answered by one
    worker; the supervisor tells each worker what all of them serve (``workers``). A server
    started by a flowml before that list existed is taken at its answering worker's word."""
    workers = served.get("workers")
    if served.get("model_version") != version or not isinstance(workers, (list, type(None))):
        return False
    return all(isinstance(w, dict) and w.get("model_version") == version for w in workers or [])


def _failure(served: dict[str, Any], version: str | None, since: float) -> str | None:
    """Why ``version`` failed to load, if the server reports so for a try made after ``since``
    (an older failure of the same version is what a retry may mend)."""
    for failed in served.get("failed") or []:
        if isinstance(failed, dict) and failed.get("model_version") == version and failed.get("at", 0) >= since:
            return str(failed.get("error") or "it did not load")
    return None


def _tail(path: str, lines: int) -> str:
    """The last ``lines`` lines of the server's log, indented, for an error message."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            kept = fh.readlines()[-lines:]
    except OSError:
        return ""
    return "server log (last lines):\n" + "".join("  " + line for line in kept).rstrip()
