"""The container engine: Docker's API wherever ``DOCKER_HOST`` points (Docker, or Podman's
``podman system service``), opened once per process."""

from __future__ import annotations

import functools
import os

from flowml.deployments import DeploymentError


@functools.cache
def engine():
    """A ``docker.DockerClient`` that has answered a ping.

    Raises:
        DeploymentError: naming the address tried, when no engine answers there.
    """
    import docker
    import docker.errors

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        where = os.environ.get("DOCKER_HOST") or "the default socket (DOCKER_HOST is not set)"
        raise DeploymentError(f"no container engine answers at {where}: {exc}; start Docker, or Podman's "
                              "Docker API (podman system service unix:///path/podman.sock) and set DOCKER_HOST") from None
    return client
