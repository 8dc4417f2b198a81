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


def engine(error: ErrorType = DeploymentError):
    """A ``docker.DockerClient`` that has answered a ping (one per process).

    Raises:
        error: naming the address tried, when no engine answers there.
    """
    import docker.errors
    import requests

    try:
        return _connected()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        where = os.environ.get("DOCKER_HOST") or "the default socket (DOCKER_HOST is not set)"
        raise error(f"no container engine answers at {where}: {exc}; start Docker, or Podman's "
                    "Docker API (podman system service unix:///path/podman.sock) and set DOCKER_HOST") from None


@functools.cache
def _connected():
    """The client, speaking the API version that the engine's ``/_ping`` names in its headers
    (Docker and Podman both send it). The SDK would ask ``/version``, which costs Podman about
    half a second, paid by every step in a container and by every ``flowml run``."""
    import docker

    probe = docker.from_env(version=docker.constants.MINIMUM_DOCKER_API_VERSION)  # connects to nothing yet
    try:
        reply = probe.api.get(probe.api.base_url + "/_ping", timeout=probe.api.timeout)
        reply.raise_for_status()
    finally:
        probe.close()
    client = docker.from_env(version=reply.headers.get("Api-Version") or "auto")
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
