"""The docker deployment target through the `flowml deployments` CLI, on Podman."""

from __future__ import annotations

import httpx
import pytest

BASE = "localhost/bookworm-python"  # .ci/podman builds it: there is no registry to pull from here


def _predict(url: str) -> float:
    reply = httpx.post(url + "/invocations", json={"dataframe_split": {"columns": ["x"], "data": [[2.0]]}}, timeout=10)
    assert reply.status_code == 200, reply.text
    return round(reply.json()["predictions"][0], 6)


@pytest.mark.slow
def test_create_status_failed_redeploy_and_delete(project, engine, unique, line_model):
    line_model(project.root / "good", 3.0)
    line_model(project.root / "broken", 5.0)
    (project.root / "broken" / "model.skops").write_bytes(b"not a model")
    res = project.flowml("deployments", "create", unique, "-m", "good", "--target", "docker", "--base-image", BASE,
                          timeout=600)
    assert res.code == 0, res.err
    status = project.flowml("deployments", "status", unique, "--json").json
    assert (status["target"], status["state"]) == ("docker", "running")
    assert _predict(status["url"]) == 6.0
    first = status["handle"]["container"]
    assert engine.containers.get(first).attrs["HostConfig"]["NetworkMode"] == "host"

    failed = project.flowml("deployments", "create", unique, "-m", "broken", "--target", "docker",
                            "--base-image", BASE, "--timeout", "60", timeout=600)
    assert failed.code == 1 and "failed" in failed.err and "still served" in failed.err, failed.err
    labelled = engine.containers.list(all=True, filters={"label": f"flowml.deployment={unique}"})
    assert [c.id for c in labelled] == [first]  # the failed container is gone, the old one kept
    assert _predict(status["url"]) == 6.0
    assert project.flowml("deployments", "status", unique, "--json").json["handle"]["container"] == first

    logs = project.flowml("deployments", "logs", unique)
    assert "serving /opt/ml/model" in logs.out
    assert project.flowml("deployments", "delete", unique).code == 0
    assert engine.containers.list(all=True, filters={"label": f"flowml.deployment={unique}"}) == []
    assert project.flowml("deployments", "list", "--json").json == {"deployments": []}


@pytest.mark.slow
def test_a_first_deploy_stopped_mid_check_leaves_no_container(project, engine, unique, line_model):
    """SIGTERM (a pipeline's timeout, Ctrl-C) while the new container starts: it is removed, and
    no record is left (there is nothing `deployments delete` could find)."""
    import signal
    import subprocess
    import sys
    import time

    line_model(project.root / "good", 3.0)
    proc = subprocess.Popen([sys.executable, "-m", "flowml", "deployments", "create", unique, "-m", "good",
                             "--target", "docker", "--base-image", BASE], cwd=project.root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        label = {"label": f"flowml.deployment={unique}"}
        deadline = time.monotonic() + 600
        while not engine.containers.list(all=True, filters=label):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    assert engine.containers.list(all=True, filters=label) == []
    assert project.flowml("deployments", "list", "--json").json == {"deployments": []}
