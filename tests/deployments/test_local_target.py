"""The local deployment target through the `flowml deployments` CLI: real servers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import threading
import time

import httpx


def _record(project, name: str) -> dict:
    return json.loads((project.root / ".flowml" / "deployments" / name / "deployment.json").read_text())


def test_create_status_logs_list_delete(deployments_of, line_model, predict_one):
    project = deployments_of
    line_model(project.root / "m1", 3.0)
    res = project.flowml("deployments", "create", "lines", "-m", "m1")
    assert res.code == 0, res.err
    record = _record(project, "lines")
    assert "serving at " + record["url"] in res.out
    assert record["model_uri"] == str(project.root / "m1")  # a folder is recorded absolute
    assert predict_one(record["url"])[0] == 6.0

    status = project.flowml("deployments", "status", "lines", "--json")
    assert status.code == 0 and status.json["state"] == "running"
    listed = project.flowml("deployments", "list", "--json").json["deployments"]
    assert [(d["name"], d["target"], d["state"]) for d in listed] == [("lines", "local", "running")]
    logs = project.flowml("deployments", "logs", "lines", "--tail", "1")
    assert logs.code == 0 and logs.out.startswith("serving ") and logs.out.count("\n") == 1

    pid = record["handle"]["pid"]
    res = project.flowml("deployments", "delete", "lines")
    assert res.code == 0, res.err
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert project.flowml("deployments", "list", "--json").json == {"deployments": []}
    gone = project.flowml("deployments", "status", "lines")
    assert gone.code == 2 and "no deployment named 'lines'" in gone.err


def test_a_dead_server_is_reported_and_a_redeploy_keeps_its_port(deployments_of, line_model, predict_one):
    project = deployments_of
    line_model(project.root / "m1", 3.0)
    assert project.flowml("deployments", "create", "lines", "-m", "m1").code == 0
    record = _record(project, "lines")
    os.killpg(record["handle"]["pid"], 9)
    deadline = time.monotonic() + 10
    while project.flowml("deployments", "status", "lines", "--json").json["state"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert project.flowml("deployments", "create", "lines", "-m", "m1").code == 0
    assert _record(project, "lines")["port"] == record["port"]
    assert predict_one(record["url"])[0] == 6.0


def test_bad_input_is_exit_code_2_without_a_traceback(deployments_of):
    project = deployments_of
    for args, message in ((("create", "a b", "-m", "x"), "cannot name a deployment"),
                          (("create", "x", "-m", "x", "--target", "nope"), "deployment target 'nope' is not installed"),
                          (("logs", "missing"), "no deployment named 'missing'")):
        res = project.flowml("deployments", *args)
        assert res.code == 2 and message in res.err and "Traceback" not in res.err, res.err


def test_a_failed_deploy_leaves_the_old_one_serving(deployments_of, line_model, predict_one):
    project = deployments_of
    line_model(project.root / "good", 3.0)
    line_model(project.root / "broken", 5.0)
    (project.root / "broken" / "model.skops").write_bytes(b"not a model")
    assert project.flowml("deployments", "create", "lines", "-m", "good").code == 0
    before = _record(project, "lines")

    res = project.flowml("deployments", "create", "lines", "-m", "broken", "--timeout", "60")
    assert res.code == 1, res.err
    assert "failed" in res.err and "still served" in res.err and "Traceback" not in res.err
    assert _record(project, "lines") == before
    assert predict_one(before["url"])[0] == 6.0
    assert project.flowml("deployments", "status", "lines", "--json").json["state"] == "running"


def test_moving_the_alias_rolls_over_with_no_failed_request(deployments_of, line_model, predict_one):
    """The redeploy of an alias URI under a stream of requests: SIGHUP, the new version swapped
    in; every request answered, by version 1 and then by version 2. The deploy returns once
    both workers serve version 2, not when the first one does."""
    from flowml.registry import RegistryClient

    project = deployments_of
    registry = RegistryClient(root=str(project.root))
    registry.register(str(line_model(project.root / "v1", 3.0)), "lines", alias="live")
    registry.register(str(line_model(project.root / "v2", 5.0)), "lines")
    assert project.flowml("deployments", "create", "lines", "-m", "models:/lines@live", "--workers", "2").code == 0
    url = _record(project, "lines")["url"]
    assert predict_one(url) == (6.0, "1")

    answers, failures, stop = [], [], threading.Event()

    def stream():
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                try:
                    reply = client.post(url + "/invocations", json={"dataframe_split": {"columns": ["x"], "data": [[2.0]]}})
                    (answers if reply.status_code == 200 else failures).append(
                        (reply.headers.get("x-flowml-model-version"), round(reply.json()["predictions"][0], 6)))
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

    threads = [threading.Thread(target=stream) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        registry.set_registered_model_alias("lines", "live", 2)
        res = project.flowml("deployments", "create", "lines", "-m", "models:/lines@live")
        assert res.code == 0 and "(version 2)" in res.out, res.err
        assert [w["model_version"] for w in httpx.get(url + "/version").json()["workers"]] == ["2", "2"]
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert set(answers) == {("1", 6.0), ("2", 10.0)}
    assert answers[-1] == ("2", 10.0)
    assert _record(project, "lines")["version"] == "2"


def test_switching_to_another_uri_starts_the_new_server_beside_the_old(deployments_of, line_model, predict_one):
    from flowml.registry import RegistryClient

    project = deployments_of
    registry = RegistryClient(root=str(project.root))
    registry.register(str(line_model(project.root / "v1", 3.0)), "lines")
    registry.register(str(line_model(project.root / "v2", 5.0)), "lines")
    assert project.flowml("deployments", "create", "lines", "-m", "models:/lines/1").code == 0
    old = _record(project, "lines")
    res = project.flowml("deployments", "create", "lines", "-m", "models:/lines/2")
    assert res.code == 0, res.err
    new = _record(project, "lines")
    assert new["port"] == old["port"] and new["handle"]["pid"] != old["handle"]["pid"]
    assert predict_one(new["url"]) == (10.0, "2")


def test_a_redeploy_with_other_workers_or_host_restarts_the_server(deployments_of, line_model, predict_one):
    """The same alias URI on the same port, but ``--workers`` or ``--host`` changed: a new server
    with the new settings replaces the old one; a redeploy that names neither keeps them."""
    from flowml.registry import RegistryClient

    project = deployments_of
    RegistryClient(root=str(project.root)).register(str(line_model(project.root / "v1", 3.0)), "lines", alias="live")
    assert project.flowml("deployments", "create", "lines", "-m", "models:/lines@live").code == 0
    first = _record(project, "lines")
    assert (first["host"], first["workers"]) == ("127.0.0.1", 1)

    res = project.flowml("deployments", "create", "lines", "-m", "models:/lines@live", "--workers", "2")
    assert res.code == 0, res.err
    second = _record(project, "lines")
    assert second["handle"]["pid"] != first["handle"]["pid"] and second["workers"] == 2
    assert second["port"] == first["port"]
    assert len(httpx.get(second["url"] + "/version").json()["workers"]) == 2

    assert project.flowml("deployments", "create", "lines", "-m", "models:/lines@live").code == 0
    assert _record(project, "lines")["handle"] == second["handle"]  # nothing asked to change

    res = project.flowml("deployments", "create", "lines", "-m", "models:/lines@live", "--host", "0.0.0.0")
    assert res.code == 0, res.err
    third = _record(project, "lines")
    assert third["handle"]["pid"] != second["handle"]["pid"]
    assert (third["host"], third["workers"], third["url"]) == ("0.0.0.0", 2, second["url"])
    assert predict_one(third["url"]) == (6.0, "1")


def test_a_version_that_fails_to_load_fails_the_reload_at_once(deployments_of, line_model, predict_one):
    """Two workers, the alias moved to a broken version 2: the deploy fails as soon as the server
    reports it (not after --timeout), and every worker still serves version 1."""
    from flowml.registry import RegistryClient

    project = deployments_of
    registry = RegistryClient(root=str(project.root))
    registry.register(str(line_model(project.root / "v1", 3.0)), "lines", alias="live")
    broken = line_model(project.root / "v2", 5.0)
    (broken / "model.skops").write_bytes(b"not a model")
    registry.register(str(broken), "lines")
    assert project.flowml("deployments", "create", "lines", "-m", "models:/lines@live", "--workers", "2").code == 0
    before = _record(project, "lines")

    registry.set_registered_model_alias("lines", "live", 2)
    started = time.monotonic()
    res = project.flowml("deployments", "create", "lines", "-m", "models:/lines@live", "--timeout", "120")
    took = time.monotonic() - started
    assert res.code == 1 and "could not load version 2" in res.err and "Traceback" not in res.err, res.err
    assert "version 1 is still served" in res.err
    assert took < 30, took
    assert _record(project, "lines") == before
    version = httpx.get(before["url"] + "/version").json()
    assert [w["model_version"] for w in version["workers"]] == ["1", "1"]
    assert [f["model_version"] for f in version["failed"]] == ["2"]
    assert predict_one(before["url"]) == (6.0, "1")
