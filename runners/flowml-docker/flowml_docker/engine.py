"""The container engine: Docker's API wherever ``DOCKER_HOST`` points (Docker, or Podman's
``podman system service``), opened once per process and shared by model images, deployments
and step environments; what it refuses becomes a flowml error (:func:`engine_errors`), never a
traceback: a :class:`DeploymentError` by default, or the error type of the caller's domain."""

from __future__ import annotations

import contextlib
import functools
import os
from typing import Callable, Iterator

from flowml.deployments import DeploymentError
from flowml.errors import FlowmlError

ErrorType = Callable[[str], FlowmlError]


def engine(error: ErrorType = DeploymentError, api_version: str | None = None):
    """A ``docker.DockerClient`` that has answered a ping (one per process and ``api_version``).

    Args:
        api_version: the API version to speak, as another client found it (``client.api.api_version``);
            default: ask the engine, which costs Podman about half a second.

    Raises:
        error: naming the address tried, when no engine answers there.
    """
    import docker.errors

    try:
        return _connected(api_version)
    except docker.errors.DockerException as exc:
        where = os.environ.get("DOCKER_HOST") or "the default socket (DOCKER_HOST is not set)"
        raise error(f"no container engine answers at {where}: {exc}; start Docker, or Podman's "
                    "Docker API (podman system service unix:///path/podman.sock) and set DOCKER_HOST") from None


@functools.cache
def _connected(api_version: str | None):
    import docker

    client = docker.from_env(version=api_version)
    client.ping()
    return client


@contextlib.contextmanager
def engine_errors(doing: str, error: ErrorType = DeploymentError) -> Iterator[None]:
    """Turn what the docker SDK raises inside (an API error, a lost connection to the engine)
    into an ``error`` that says what was being done.

    Raises:
        error: ``doing`` and the engine's explanation.
    """
    import docker.errors
    import requests

    try:
        yield
    except docker.errors.APIError as exc:
        raise error(f"{doing} failed: the container engine answered: {exc.explanation or exc}") from None
    except docker.errors.DockerException as exc:
        raise error(f"{doing} failed: {exc}") from None
    except requests.exceptions.RequestException as exc:
        raise error(f"{doing} failed: the container engine did not answer: {exc}") from None
