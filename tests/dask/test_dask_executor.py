"""``flowml run --executor dask`` against a real ``dask scheduler`` and two ``dask worker``
processes, each started in its own empty folder on 127.0.0.1 (one thread each, so that two
ready steps land on different workers), with a flowml server as the tracking store (conftest.py).

The steps append a line (step, working folder, pid) to a marker file outside every
workspace: that is how the tests see where a step ran, and that a rerun ran nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from flowml.tracking.client import FlowmlClient  # noqa: E402
from tests.dask.conftest import dask_run, running_cluster, tiny_env_pipeline  # noqa: E402

PIPELINE = """\
    name: fan
    steps:
      left:
        run: python work.py left
        inputs: [work.py, src.txt]
        outputs: [out/left.txt]
        env_vars: {{MARKER: "{marker}"}}
      right:
        run: python work.py right
        inputs: [work.py, src.txt]
        outputs: [out/right.txt]
        env_vars: {{MARKER: "{marker}"}}
      join:
        run: python join.py
        inputs: [join.py, out]
        outputs: [joined.txt]
        env_vars: {{MARKER: "{marker}"}}
    """
WORK = """\
import os, sys, time
side = sys.argv[1]
with open(os.environ["MARKER"], "a") as fh:
    fh.write(f"{side} {os.getcwd()} {os.getpid()}\\n")
time.sleep(1)  # long enough for both sides to be running at once
print(f"{side} says hello")
os.makedirs("out", exist_ok=True)
open(f"out/{side}.txt", "w").write(open("src.txt").read().strip() + f" via {side}\\n")
"""
JOIN = """\
import os
with open(os.environ["MARKER"], "a") as fh:
    fh.write(f"join {os.getcwd()} {os.getpid()}\\n")
open("joined.txt", "w").write(open("out/left.txt").read() + open("out/right.txt").read())
"""


@pytest.fixture
def fan(project, tmp_path_factory, server, cluster):
    """The fan-out project, run against the module's cluster and server."""
    marker = tmp_path_factory.mktemp("marker") / "steps.log"
    marker.touch()
    project.pipeline(PIPELINE.format(marker=marker))
    project.write("work.py", WORK)
    project.write("join.py", JOIN)
    project.write("src.txt", "payload\n")
    project.marker = marker
    project.env = {"FLOWML_TRACKING_URI": server.url}
    return project


def marker_lines(project) -> list[list[str]]:
    return [line.split() for line in project.marker.read_text().splitlines()]


def test_a_fan_out_runs_on_two_workers_and_the_outputs_come_home(fan, cluster, server):
    summary = dask_run(fan, cluster)
    assert summary["code"] == 0, summary["stderr"]
    assert {s["name"]: s["status"] for s in summary["steps"]} == {"left": "ran", "right": "ran", "join": "ran"}
    assert fan.read("joined.txt") == "payload via left\npayload via right\n"
    assert fan.read("out/left.txt") == "payload via left\n"
    where = {step: cwd for step, cwd, _ in marker_lines(fan)}
    assert not any(cwd.startswith(str(fan.root)) for cwd in where.values()), where  # never the client's folder
    workers = {step: next(i for i, f in enumerate(cluster.folders) if cwd.startswith(str(f))) for step, cwd in where.items()}
    assert workers["left"] != workers["right"], where  # one thread per worker: the two sides ran apart
    for folder in cluster.folders:  # each workspace is gone after its step
        assert not list(folder.glob("flowml-step-*"))

    client = FlowmlClient(server.url)
    runs = {c.data.tags["flowml.node"]: c for c in client.child_runs(summary["run_id"])}
    assert {n: r.info.status for n, r in runs.items()} == {"left": "FINISHED", "right": "FINISHED", "join": "FINISHED"}
    logs = client.download_artifacts(runs["left"].info.run_id, "logs", str(fan.root / "fetched"))
    assert Path(logs, "stdout.txt").read_text() == "left says hello\n"

    lines = len(marker_lines(fan))
    before = cluster.transitions()
    again = dask_run(fan, cluster)
    assert again["code"] == 0, again["stderr"]
    assert {s["status"] for s in again["steps"]} == {"cached"}
    assert len(marker_lines(fan)) == lines
    assert cluster.transitions() == before  # nothing was submitted


def test_a_deleted_output_is_restored_without_the_cluster(fan, cluster):
    assert dask_run(fan, cluster)["code"] == 0
    (fan.root / "joined.txt").unlink()
    before = cluster.transitions()
    again = dask_run(fan, cluster)
    assert again["by_name"]["join"]["status"] == "cached"
    assert fan.read("joined.txt") == "payload via left\npayload via right\n"
    assert cluster.transitions() == before


def test_a_failing_step_fails_the_run_with_its_exit_code(fan, cluster, server):
    fan.write("join.py", "import sys\nprint('no luck', file=sys.stderr)\nsys.exit(3)\n")
    summary = dask_run(fan, cluster)
    assert summary["code"] == 1
    join = summary["by_name"]["join"]
    assert join["status"] == "failed" and join["error"] == "exit code 3"
    assert not (fan.root / "joined.txt").exists()
    client = FlowmlClient(server.url)
    run = client.get_run(join["run_id"])
    assert run.info.status == "FAILED" and run.data.tags["flowml.exit_code"] == "3"
    logs = client.download_artifacts(join["run_id"], "logs", str(fan.root / "fetched"))
    assert Path(logs, "stderr.txt").read_text() == "no luck\n"


def test_ctrl_c_stops_the_remote_step(fan, cluster):
    fan.write("join.py", "import os, time\nopen(os.environ['MARKER'], 'a').write(f'join {os.getcwd()} {os.getpid()}\\n')\n"
                         "time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-m", "flowml", "run", "--executor", "dask", "--scheduler",
                             cluster.address], cwd=fan.root, env={**os.environ, **fan.env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not [line for line in marker_lines(fan) if line[0] == "join"]:
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else "no start"
        time.sleep(0.1)
    pid = int(next(line for line in marker_lines(fan) if line[0] == "join")[2])
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    assert time.monotonic() - started < 15
    assert _ends(pid, within=5), f"the step's process {pid} still runs"


def _ends(pid: int, within: float) -> bool:
    """Whether process ``pid`` is gone or a zombie (its shell died first: init reaps it) in time."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_a_step_whose_worker_dies_reruns_on_another_and_ends_as_a_local_run_does(fan, tmp_path_factory, project_class):
    with running_cluster(tmp_path_factory.mktemp("dying")) as own:
        proc = subprocess.Popen([sys.executable, "-m", "flowml", "run", "--executor", "dask", "--scheduler", own.address],
                                cwd=fan.root, env={**os.environ, **fan.env}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not [line for line in marker_lines(fan) if line[0] == "left"]:
            assert time.monotonic() < deadline and proc.poll() is None, "left did not start"
            time.sleep(0.05)
        _, cwd, pid = next(line for line in marker_lines(fan) if line[0] == "left")
        dying = next(i for i, folder in enumerate(own.folders) if cwd.startswith(str(folder)))
        os.killpg(own.processes[1 + dying].pid, signal.SIGKILL)  # the worker, not the step: it runs on, orphaned
        os.killpg(os.getpgid(int(pid)), signal.SIGKILL)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    lefts = [cwd for step, cwd, _ in marker_lines(fan) if step == "left"]
    assert len(lefts) == 2 and not lefts[1].startswith(str(own.folders[dying]))

    local = project_class(tmp_path_factory.mktemp("local"))
    for rel in ("pipeline.yaml", "work.py", "join.py", "src.txt"):
        local.write(rel, fan.read(rel))
    assert local.flowml("run", "--no-track").code == 0
    for rel in ("out/left.txt", "out/right.txt", "joined.txt"):
        assert fan.read(rel) == local.read(rel)


def test_a_python_environment_is_made_on_the_worker_that_runs_the_step(project, cluster, server, pip_offline,
                                                                     tmp_path):
    project.pipeline(tiny_env_pipeline("tiny"))
    project.write("requirements.txt", "flowtiny==1.0\n")
    env = {**pip_offline, "FLOWML_TRACKING_URI": server.url, "FLOWML_ENV_DIR": str(tmp_path / "client-envs")}
    summary = dask_run(project, cluster, env=env)
    assert summary["code"] == 0, summary["stderr"]
    assert project.read("value.txt") == "1"
    made = [f.name for f in cluster.folders if list((f / "envs").glob("*/flowml-env.json"))]
    assert len(made) == 1, made  # where the step ran, and not on the client:
    assert not list((tmp_path / "client-envs").glob("*/flowml-env.json"))


def test_the_offer_is_the_clusters(cluster):
    from flowml_dask.executor import DaskExecutor

    executor = DaskExecutor(cluster.address)
    try:
        capacity = executor.capacity()
    finally:
        executor.close()
    cpus, memory, gpus = capacity.total
    assert (cpus, gpus) == (2.0, 0) and memory > 0  # two workers of one thread each, no GPU resources
    assert capacity.largest == (1.0, memory // 2, 0) and capacity.where == f"the Dask cluster at {cluster.address}"


def test_a_local_tracking_store_is_bad_input(project, cluster):
    project.pipeline("name: local\nsteps:\n  a: {run: 'true'}\n")
    res = project.flowml("run", "--executor", "dask", "--scheduler", cluster.address,
                         env={"FLOWML_TRACKING_URI": ""})
    assert res.code == 2, res.err
    assert "--executor dask runs steps on other machines" in res.err and "Traceback" not in res.err
    assert not (project.root / ".flowml" / "flowml.db").exists()
