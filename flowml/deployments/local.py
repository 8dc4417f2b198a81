"""The ``local`` target: ``flowml models serve`` as a managed process on this machine.

The server runs detached in its own session, so it outlives the command (or the pipeline
step) that deployed it; its pid, port, model URI, version and log file are in the
deployment's record. Switching a running deployment to a new model drops no request:

* the same alias URI (``models:/wine@candidate`` now naming version 4): the server is sent
  SIGHUP, re-resolves the alias and swaps the model in place; the deploy waits until
  ``/version`` reports the new version;
* any other change: a new server starts on the same port beside the old one (both bind
  with SO_REUSEPORT), is checked to listen and answer ``/ping``, and only then is the old
  one stopped gracefully (it finishes what it accepted).

A new server that fails its check is stopped and the old one keeps serving untouched.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

from flowml.deployments import Deployment, DeploymentError, DeploymentTarget, processes
from flowml.deployments.health import READY_TIMEOUT_S, free_port, ping, wait_ready
from flowml.deployments.versions import current_version, movable, tracking_uri_of

LOG = "server.log"
# Asks flowml models serve to bind with SO_REUSEPORT, so that a new server can start beside this one.
REUSE_PORT = "FLOWML_REUSE_PORT"


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
            host = config.get("host") or "127.0.0.1"
            port = int(config.get("port") or (old.port if old else 0) or free_port(host))
            if running and running.model_uri == model_uri and running.port == port and movable(model_uri):
                deployment = self._reload(running, version, config)
            else:
                deployment = self._replace(name, model_uri, version, host, port, config, running)
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
        """SIGHUP: the server re-resolves its alias and swaps the model without a restart."""
        if version == running.version:
            return running
        processes.send(running.handle, signal.SIGHUP)
        timeout = float(config.get("timeout") or READY_TIMEOUT_S)
        deadline = time.monotonic() + timeout
        while _served_version(running.url) != version:
            if not processes.alive(running.handle):
                raise DeploymentError(f"deployment '{running.name}' stopped while reloading "
                                      f"{running.model_uri}; see flowml deployments logs {running.name}")
            if time.monotonic() > deadline:
                raise DeploymentError(f"deployment '{running.name}' still serves version {running.version} "
                                      f"{timeout:g} s after being told to load version {version}; "
                                      f"see flowml deployments logs {running.name}")
            time.sleep(0.1)
        running.version, running.updated = version, time.time()
        return running

    def _replace(self, name: str, model_uri: str, version: str | None, host: str, port: int,
                 config: dict[str, Any], running: Deployment | None) -> Deployment:
        """Start a new server, check it, then stop the old one (if any)."""
        log = os.path.join(self.records.folder(name), LOG)
        argv = [sys.executable, "-m", "flowml", "models", "serve", "-m", model_uri, "--host", host, "--port", str(port)]
        if config.get("workers"):
            argv += ["--workers", str(config["workers"])]
        env = {**os.environ, "FLOWML_TRACKING_URI": tracking_uri_of(self.root), REUSE_PORT: "1"}
        label = f" (version {version})" if version else ""
        handle = processes.start(argv, self.root, env, log, f"deploy {model_uri}{label} on {host}:{port}")
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
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
        return Deployment(name, self.kind, model_uri, port, url, version, "running", log, time.time(), handle)

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


def _served_version(url: str) -> str | None:
    """The ``model_version`` that ``url``/version reports, or None when it does not answer."""
    import httpx

    try:
        return httpx.get(url + "/version", timeout=2.0).json().get("model_version")
    except (httpx.HTTPError, ValueError, AttributeError):
        return None


def _tail(path: str, lines: int) -> str:
    """The last ``lines`` lines of the server's log, indented, for an error message."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            kept = fh.readlines()[-lines:]
    except OSError:
        return ""
    return "server log (last lines):\n" + "".join("  " + line for line in kept).rstrip()
