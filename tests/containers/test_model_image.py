"""`flowml models build-docker`: an image built with no network (Podman) serves the model."""

from __future__ import annotations

import sys

import httpx
import pytest
from servers import free_port, wait_until_answers

BASE = "localhost/bookworm-python"  # .ci/podman builds it: there is no registry to pull from here


@pytest.mark.slow
def test_built_image_answers_invocations(project, engine, unique, line_model):
    line_model(project.root / "model", 3.0)
    tag = f"flowml-{unique}:1"
    res = project.flowml("models", "build-docker", "-m", "model", "-n", tag, "--base-image", BASE, timeout=600)
    assert res.code == 0, res.err
    assert f"built {tag}" in res.err

    port = free_port()
    container = engine.containers.run(
        tag, ["flowml", "models", "serve", "-m", "/opt/ml/model", "--host", "127.0.0.1", "--port", str(port)],
        detach=True, network_mode="host", labels={"flowml.test": str(project.root)})
    url = f"http://127.0.0.1:{port}"

    def running() -> bool:
        container.reload()
        return container.status == "running"

    assert wait_until_answers(url + "/ping", running, timeout=120, interval=0.5), container.logs().decode()
    reply = httpx.post(url + "/invocations", json={"dataframe_split": {"columns": ["x"], "data": [[1.0], [4.0]]}})
    assert reply.status_code == 200, reply.text
    assert [round(p, 6) for p in reply.json()["predictions"]] == [3.0, 12.0]
    assert engine.images.get(tag).attrs["Config"]["ExposedPorts"] == {"8080/tcp": {}}


def test_a_base_image_that_cannot_be_pulled_is_a_clear_error(project, engine, line_model):
    line_model(project.root / "model", 3.0)
    res = project.flowml("models", "build-docker", "-m", "model", "-n", "x:1", "--base-image",
                         "localhost/flowml-no-such-base:1", timeout=300)
    assert res.code == 1 and "Traceback" not in res.err, res.err
    assert "cannot pull the base image localhost/flowml-no-such-base:1" in res.err and "--base-image" in res.err


def test_dockerfile_only_writes_the_offline_context(project, line_model):
    line_model(project.root / "model", 3.0)
    res = project.flowml("models", "build-docker", "-m", "model", "-n", "x:1", "--dockerfile-only", "ctx", timeout=300)
    assert res.code == 0, res.err
    dockerfile = (project.root / "ctx" / "Dockerfile").read_text()
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"FROM python:{python}-slim-bookworm\n" in dockerfile  # the default: the host's Python, officially
    assert "--no-index" in dockerfile and "EXPOSE 8080" in dockerfile
    wheels = sorted(p.name.split("-")[0].lower() for p in (project.root / "ctx" / "wheels").glob("*.whl"))
    assert {"flowml", "scikit_learn", "skops"} <= set(wheels)
    assert (project.root / "ctx" / "model" / "MLmodel").exists()
    again = project.flowml("models", "build-docker", "-m", "model", "-n", "x:1", "--dockerfile-only", "ctx")
    assert again.code == 2 and "not empty" in again.err


def test_dockerfile_only_leaves_nothing_when_pip_fails(project, line_model):
    """pip refuses a requirement of the model: no half-written context is left, so the next
    attempt is not refused as 'not empty'."""
    model = line_model(project.root / "model", 3.0)
    with open(model / "requirements.txt", "a", encoding="utf-8") as fh:
        fh.write("this is not a requirement\n")
    res = project.flowml("models", "build-docker", "-m", "model", "-n", "x:1", "--dockerfile-only", "out/ctx",
                         timeout=300)
    assert res.code == 1 and "pip could not build the wheels" in res.err and "Traceback" not in res.err, res.err
    assert sorted(p.name for p in (project.root / "out").iterdir()) == []
