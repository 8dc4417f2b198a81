"""The ``docker`` deployment target: the model's image, run as a container on the host's network.

``deploy`` builds the image (:mod:`flowml_docker.image`), tagged ``flowml-<name>:v<version>``,
starts a container serving it on the deployment's port, and waits until the container
listens there itself and ``/ping`` answers; only then is the container it replaces stopped
(gracefully: it finishes what it accepted). A build that fails changes nothing; a new
container that fails its check, or whose deploy fails or is interrupted in any other way (an
engine error, Ctrl-C, SIGTERM), is removed, and the old one keeps serving; the last log
lines of a container that failed its check go into the error. Containers carry the labels
``flowml.deployment`` and ``flowml.project``, by which ``delete`` finds every container of a
deployment. What the engine refuses is a :class:`DeploymentError` naming what was being done.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from flowml.deployments import Deployment, DeploymentError, DeploymentTarget, processes
from flowml.deployments.health import READY_TIMEOUT_S, ping, url_of, wait_ready
from flowml.deployments.versions import current_version, tracking_uri_of
from flowml.models.serving.workers import REUSE_PORT_ENV

from flowml_docker.engine import engine, engine_errors
from flowml_docker.image import MODEL_PATH, DockerImageBuilder

STOP_TIMEOUT_S = 10


class DockerTarget(DeploymentTarget):
    kind = "docker"

    def deploy(self, name: str, model_uri: str, config: dict[str, Any]) -> Deployment:
        with self.records.lock(name), engine_errors(f"deploying {model_uri} as '{name}'"):
            old = self.records.find(name)
            if old is not None and old.target != self.kind:
                raise DeploymentError(f"deployment '{name}' runs on target '{old.target}': delete it first, "
                                      f"or deploy with --target {old.target}", exit_code=2)
            version = current_version(model_uri, self.root)
            host, port, workers = self.placement(old, config)
            tag = f"flowml-{name.lower()}:{'v' + version if version else 'latest'}"
            DockerImageBuilder().build(model_uri, tag, base_image=config.get("base_image"),
                                       tracking_uri=tracking_uri_of(self.root))
            url = url_of(host, port)
            kept = f"; {old.model_uri} is still served at {old.url}" if old else ""
            container_name = f"flowml-{name.lower()}-{uuid.uuid4().hex[:8]}"
            try:
                container = self._start(name, container_name, tag, host, port, workers)
                problem = self._check(container, url, port, float(config.get("timeout") or READY_TIMEOUT_S))
                if problem:
                    raise DeploymentError(f"deploying {model_uri} as '{name}' failed: {problem}{kept}\n"
                                          f"{_tail(container)}")
            except BaseException:  # a failed check, an engine error, Ctrl-C, SIGTERM: no new container left
                _discard(container_name)
                raise
            deployment = Deployment(name, self.kind, model_uri, port, url, version, "running", None, time.time(),
                                    {"container": container.id, "image": tag}, host=host, workers=workers)
            self.records.save(deployment)  # first: stopped mid-way, delete still finds both by their labels
            if old is not None:
                _remove_id(old.handle.get("container"))
            return deployment

    def status(self, name: str) -> Deployment:
        deployment = self.records.get(name)
        with engine_errors(f"checking deployment '{name}'"):
            container = _container(deployment.handle.get("container"))
        if container is None or container.status != "running":
            deployment.state = "stopped"
        else:
            deployment.state = "running" if ping(deployment.url) else "unhealthy"
        return deployment

    def delete(self, name: str) -> None:
        with self.records.lock(name), engine_errors(f"deleting deployment '{name}'"):
            self.records.get(name)
            for container in engine().containers.list(all=True, filters={"label": self._labels(name)}):
                _remove(container)
            self.records.remove(name)

    def logs(self, name: str, tail: int | None = None) -> str:
        record = self.records.get(name)
        with engine_errors(f"reading the logs of deployment '{name}'"):
            container = _container(record.handle.get("container"))
            return "" if container is None else container.logs(tail=tail or "all").decode("utf-8", "replace")

    def _labels(self, name: str) -> list[str]:
        return [f"flowml.deployment={name}", f"flowml.project={self.root}"]

    def _start(self, name: str, container_name: str, image: str, host: str, port: int, workers: int):
        """Create and start the container ``container_name`` serving ``image`` on the host's network."""
        command = ["flowml", "models", "serve", "-m", MODEL_PATH, "--host", host, "--port", str(port),
                   "--workers", str(workers)]
        labels = dict(label.split("=", 1) for label in self._labels(name))
        container = engine().containers.create(image, command, network_mode="host", labels=labels,
                                               name=container_name, environment={REUSE_PORT_ENV: "1"})
        container.start()
        return container

    def _check(self, container, url: str, port: int, timeout: float) -> str | None:
        """Why the new container is not ready, or None: it must answer ``/ping`` and, since an
        old container on the same port could answer for it, listen on the port itself."""
        def alive() -> bool:
            container.reload()
            return container.status in ("created", "running")

        problem = wait_ready(url, alive, timeout)
        if problem:
            return problem.replace("server", "container")
        deadline = time.monotonic() + timeout
        while True:
            container.reload()
            pid = container.attrs.get("State", {}).get("Pid")
            if pid and processes.listens_on({"pid": pid}, port):
                return None
            if container.status != "running":
                return "the container exited before it listened on its port"
            if time.monotonic() > deadline:
                return f"the container did not listen on port {port} within {timeout:g} s"
            time.sleep(0.1)


def _container(container_id: str | None):
    import docker.errors

    if not container_id:
        return None
    try:
        return engine().containers.get(container_id)
    except docker.errors.NotFound:
        return None


def _remove_id(container_id: str | None) -> None:
    container = _container(container_id)
    if container is not None:
        _remove(container)


def _discard(container_id: str) -> None:
    """Remove the container ``container_id`` (an id or a name) at once, if it exists: one that
    never served has no request to finish. Quiet, so that the error that led here is the one raised."""
    import docker.errors
    import requests

    try:
        engine().containers.get(container_id).remove(force=True)
    except (docker.errors.DockerException, requests.exceptions.RequestException, DeploymentError):
        pass


def _remove(container) -> None:
    """Stop gracefully (SIGTERM: the server finishes its requests), then remove."""
    import docker.errors

    try:
        container.stop(timeout=STOP_TIMEOUT_S)
    except docker.errors.APIError:
        pass
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass


def _tail(container, lines: int = 20) -> str:
    import docker.errors

    try:
        text = container.logs(tail=lines).decode("utf-8", "replace").rstrip()
    except docker.errors.APIError:
        return ""
    return "container log (last lines):\n" + "\n".join("  " + line for line in text.splitlines())
