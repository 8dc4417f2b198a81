"""The container engine: Docker's API wherever ``DOCKER_HOST`` points (Docker, or Podman's
``podman system service``), opened once per process; what it refuses becomes a
:class:`DeploymentError` (:func:`engine_errors`), never a traceback."""

from __future__ import annotations

import contextlib
import functools
import os
from typing import Iterator

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


@contextlib.contextmanager
def engine_errors(doing: str) -> Iterator[None]:
    """Turn what the docker SDK raises inside (an API error, a lost connection to the engine)
    into a DeploymentError that says what was being done.

    Raises:
        DeploymentError: ``doing`` and the engine's explanation.
    """
    import docker.errors
    import requests

    try:
        yield
    except docker.errors.APIError as exc:
        raise DeploymentError(f"{doing} failed: the container engine answered: {exc.explanation or exc}") from None
    except docker.errors.DockerException as exc:
        raise DeploymentError(f"{doing} failed: {exc}") from None
    except requests.exceptions.RequestException as exc:
        raise DeploymentError(f"{doing} failed: the container engine did not answer: {exc}") from None
