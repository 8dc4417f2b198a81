"""Podman serving Docker's API (.ci/podman), for the tests that build and run images.

The script installs Podman if needed, builds the base image ``localhost/bookworm-python``
once per machine and starts the API service; its last line is the socket's URL, which
becomes ``DOCKER_HOST`` for the tests (and the flowml processes they start). Every container
and image a test makes is removed at the end, even when the test fails.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "podman"


@pytest.fixture(scope="session")
def docker_host():
    """``unix://...`` of Podman's Docker API, also set as DOCKER_HOST for the session."""
    if os.geteuid() != 0:
        pytest.skip(".ci/podman installs and runs Podman as root; these tests need root")
    proc = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f".ci/podman failed ({proc.returncode}):\n{proc.stderr[-3000:]}", pytrace=False)
    url = proc.stdout.strip().splitlines()[-1]
    previous = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = url
    yield url
    if previous is None:
        os.environ.pop("DOCKER_HOST", None)
    else:
        os.environ["DOCKER_HOST"] = previous


@pytest.fixture
def engine(docker_host, project):
    """A docker SDK client. At the end, the containers labelled with the test's project
    (``flowml.project`` or ``flowml.test``) and the images tagged with its :func:`unique`
    prefix (or built for a docker environment named :func:`unique`) are removed, so tests on
    other workers are left alone."""
    import docker

    client = docker.DockerClient(base_url=docker_host)
    yield client
    root = str(project.root)
    for label in (f"flowml.project={root}", f"flowml.test={root}"):
        for container in client.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)
    prefix = unique_prefix(project)
    built = f"flowml-env/{prefix[len('flowml-'):]}:"  # what a docker environment named unique builds
    for image in client.images.list():
        if any(tag.split("/")[-1].startswith(prefix) or built in tag for tag in image.tags):
            try:
                client.images.remove(image.id, force=True)
            except docker.errors.APIError:
                pass


def unique_prefix(project) -> str:
    """``flowml-t<digits>``: the start of every image and deployment name a test uses."""
    import zlib

    return f"flowml-t{zlib.crc32(str(project.root).encode()):x}"


@pytest.fixture
def unique(project) -> str:
    """A name for this test's images and deployments (``t<hex>``; images get ``flowml-`` before it)."""
    return unique_prefix(project)[len("flowml-"):]


@pytest.fixture
def tracking_server(tmp_path_factory):
    """A flowml server on SQLite."""
    from tests.servers import start_server

    running = start_server(tmp_path_factory.mktemp("tracking-server"))
    yield running
    running.stop()


@pytest.fixture
def line_model():
    """``line_model(path, slope)``: a scikit-learn model predicting ``slope * x``."""
    def save(path: Path, slope: float) -> Path:
        import pandas as pd
        from sklearn.linear_model import LinearRegression

        import flowml.sklearn

        X = pd.DataFrame({"x": [float(i) for i in range(10)]})
        flowml.sklearn.save_model(LinearRegression().fit(X, slope * X["x"]), str(path), input_example=X[:2])
        return path

    return save
