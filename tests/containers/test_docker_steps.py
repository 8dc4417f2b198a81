"""Steps in containers (the flowml-docker plugin's ``docker`` environment) through ``flowml run``
on Podman: the step runs in the image with the project mounted, as the caller, with its
variables, tracking variables and resource limits; its output is streamed, cached and
restored; a built image is built once per content of its folder and a changed Dockerfile
reruns only its steps; an interrupted run leaves no container; a missing image is bad input.
The functions behind the container's options are checked as units at the end."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx

from flowml_docker.environment import context_digest
from flowml_docker.step import OWNER_LABEL, PROJECT_LABEL, container_options, device_requests, mounts

BASE = "localhost/bookworm-python"  # .ci/podman builds it: there is no registry to pull from here

INSIDE = f"""\
[ -e /run/.containerenv ] || [ -e /.dockerenv ] && echo container
[ -e {sys.executable} ] || echo no-host-python
test -f "${{FLOWML_TRACKING_URI#sqlite:///}}" && echo store-visible
cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes
cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo "$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"
env | grep -E '^(GREETING|HOST_ONLY|FLOWML_|MLFLOW_)' | sort
echo "hello from the container"
echo "to stderr" >&2
"""

BOX = f"""\
name: boxed
environments:
  box: {{docker: {{image: {BASE}}}}}
steps:
  inside:
    run: sh inside.sh > out/inside.txt
    env: box
    inputs: [inside.sh]
    outputs: [out/inside.txt]
    env_vars: {{GREETING: hello}}
    resources: {{cpus: 0.5, memory: 256Mi}}
  fails:
    run: exit 7
    env: box
"""


def test_a_step_runs_in_the_container_as_the_caller_and_its_output_is_cached(project, engine, tmp_path_factory):
    project.pipeline(BOX)
    project.write("inside.sh", INSIDE)
    (project.root / "out").mkdir()
    store = tmp_path_factory.mktemp("store") / "flowml.db"  # outside the project: mounted too
    args = ("--tracking-uri", f"sqlite:///{store}")
    first = project.run_json(*args, env={"HOST_ONLY": "1"})
    assert first["code"] == 1, first["stderr"]
    step, failed = first["by_name"]["inside"], first["by_name"]["fails"]
    assert step["status"] == "ran", step
    assert (failed["status"], failed["error"]) == ("failed", "exit code 7")

    out = project.read("out/inside.txt").splitlines()
    assert out[:3] == ["container", "no-host-python", "store-visible"]
    assert out[3:5] == [str(256 * 2**20), "50000 100000"]  # memory and CPU limits: cgroup v2 or v1
    variables = dict(line.split("=", 1) for line in out[5:-1])
    assert variables["GREETING"] == "hello" and "HOST_ONLY" not in variables
    assert variables["FLOWML_RUN_ID"] == step["run_id"]
    assert variables["FLOWML_TRACKING_URI"] == f"sqlite:///{store}"
    assert variables["FLOWML_STEP"] == "inside"
    assert out[-1] == "hello from the container"
    written = os.stat(project.root / "out" / "inside.txt")
    assert (written.st_uid, written.st_gid) == (os.getuid(), os.getgid())
    with open(step["logs"]["stderr"]) as err:
        assert err.read() == "to stderr\n"

    (project.root / "out" / "inside.txt").unlink()
    second = project.run_json(*args, "--target", "inside")
    assert second["code"] == 0 and second["by_name"]["inside"]["status"] == "cached", second["stderr"]
    assert project.read("out/inside.txt").splitlines()[:3] == ["container", "no-host-python", "store-visible"]
    assert engine.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project.root}"}) == []


def _built_pipeline(unique: str) -> str:
    return f"""\
name: built
environments:
  {unique}: {{docker: {{build: image/, image: "flowml-{unique}-built:latest"}}}}
  box: {{docker: {{image: {BASE}}}}}
steps:
  built:
    run: echo "$MARK $(id -u):$(id -g)" > built.txt
    env: {unique}
    outputs: [built.txt]
  plain:
    run: echo plain > plain.txt
    env: box
    outputs: [plain.txt]
"""


def test_a_built_image_is_built_once_and_a_changed_dockerfile_reruns_only_its_steps(project, engine, unique):
    project.pipeline(_built_pipeline(unique))
    # USER nobody could not write to the project: the step runs as the caller all the same.
    dockerfile = f"FROM {BASE}\nENV MARK={{}}\nUSER nobody\n"
    project.write("image/Dockerfile", dockerfile.format("v1"))
    first = project.run_json("--no-track")
    assert first["code"] == 0, first["stderr"]
    assert first["stderr"].count("building image") == 1
    assert project.read("built.txt").split() == ["v1", f"{os.getuid()}:{os.getgid()}"]
    assert os.stat(project.root / "built.txt").st_uid == os.getuid()
    tagged = engine.images.get(f"flowml-{unique}-built:latest")
    assert any(f"flowml-env/{unique}:" in tag for tag in tagged.tags)

    os.utime(project.root / "image" / "Dockerfile", (1, 1))  # the content counts, not the time
    again = project.run_json("--no-track")
    assert "building image" not in again["stderr"]
    assert [s["status"] for s in again["steps"]] == ["cached", "cached"]
    engine.images.remove(tagged.id, force=True)  # the fingerprint is the folder's digest:
    hits = project.run_json("--no-track")         # cache hits need no image, and build none
    assert [s["status"] for s in hits["steps"]] == ["cached", "cached"] and "building" not in hits["stderr"]

    project.write("image/Dockerfile", dockerfile.format("v2"))
    changed = project.run_json("--no-track")
    assert changed["stderr"].count("building image") == 1
    assert changed["by_name"]["built"]["status"] == "ran" and changed["by_name"]["plain"]["status"] == "cached"
    assert "environment" in changed["by_name"]["built"]["reason"]
    assert project.read("built.txt").split()[0] == "v2"
    assert engine.images.get(f"flowml-{unique}-built:latest").id != tagged.id
    assert any(f"flowml-env/{unique}:" in tag for tag in engine.images.get(f"flowml-{unique}-built:latest").tags)


def test_tracking_variables_reach_a_server_on_the_hosts_loopback(project, engine, tracking_server):
    project.pipeline(f"""\
name: tracked
environments:
  box: {{docker: {{image: {BASE}}}}}
steps:
  log:
    run: python3 log_metric.py
    env: box
    inputs: [log_metric.py]
""")
    project.write("log_metric.py", """\
import json, os, time, urllib.request

body = {"run_id": os.environ["MLFLOW_RUN_ID"], "key": "inside", "value": 1.5, "step": 0,
        "timestamp": int(time.time() * 1000)}
request = urllib.request.Request(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-metric",
                                 json.dumps(body).encode(), {"Content-Type": "application/json"})
urllib.request.urlopen(request, timeout=10)
""")
    result = project.run_json("--tracking-uri", tracking_server.url)
    assert result["code"] == 0, result["stderr"]
    run_id = result["by_name"]["log"]["run_id"]
    run = httpx.get(f"{tracking_server.url}/api/2.0/mlflow/runs/get", params={"run_id": run_id}).json()["run"]
    assert {m["key"]: m["value"] for m in run["data"]["metrics"]} == {"inside": 1.5}


def test_output_streams_an_interrupted_run_removes_its_container_and_a_run_removes_leftovers(project, engine):
    project.pipeline(f"""\
name: stopped
environments:
  box: {{docker: {{image: {BASE}}}}}
steps:
  long:
    run: trap 'exit 143' TERM; echo begun; touch started; sleep 60 & wait
    env: box
""")
    dead = subprocess.Popen(["true"])  # the pid of an owner that is gone
    dead.wait()
    leftover = engine.containers.create(BASE, ["sleep", "60"], labels={
        PROJECT_LABEL: str(project.root), OWNER_LABEL: f"{socket.gethostname()}:{dead.pid}"})
    proc = project.start("run", "--no-track")
    try:
        project.wait_for("started", timeout=60)
        deadline = time.monotonic() + 10  # the output is in the step's log while it runs
        while [p.read_text() for p in project.root.glob(".flowml/logs/*/long.stdout")] != ["begun\n"]:
            assert time.monotonic() < deadline, "the step's output did not reach its log file"
            time.sleep(0.05)
        labelled = engine.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project.root}"})
        assert [c.id for c in labelled] != [] and leftover.id not in [c.id for c in labelled]
        stopped_at = time.monotonic()
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    assert time.monotonic() - stopped_at < 10
    assert engine.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project.root}"}) == []


def test_a_missing_image_is_bad_input_naming_it(project, docker_host):
    project.pipeline("""\
name: missing
environments:
  box: {docker: {image: "localhost/flowml-no-such-image:1"}}
steps:
  a: {run: "true", env: box}
""")
    res = project.flowml("run")
    assert res.code == 2, res.err
    assert "pipeline.yaml:3" in res.err and "environments.box.docker.image" in res.err
    assert "localhost/flowml-no-such-image:1" in res.err and "Traceback" not in res.err
    assert not (project.root / ".flowml").exists()


def test_a_container_that_cannot_be_run_fails_its_step_with_125(project, docker_host):
    """The image went between loading the pipeline and running the step: `docker run`'s 125."""
    spec = {"image": "localhost/flowml-no-such-image:1", "root": str(project.root), "environment": "box"}
    proc = subprocess.run([sys.executable, "-m", "flowml_docker.step", json.dumps(spec), "--", "true"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 125
    assert proc.stderr.startswith("flowml-docker: running a command in image localhost/flowml-no-such-image:1 failed")
    assert "Traceback" not in proc.stderr


# units -----------------------------------------------------------------------------------------

def test_the_build_digest_follows_content_and_dockerignore_not_times(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "data.bin").write_bytes(b"x" * 10)
    first = context_digest(str(tmp_path))
    os.utime(tmp_path / "data.bin", (1, 1))
    assert context_digest(str(tmp_path)) == first
    (tmp_path / "data.bin").write_bytes(b"y" * 10)
    assert context_digest(str(tmp_path)) != first
    (tmp_path / ".dockerignore").write_text("# ignored\nscratch/\n")
    ignoring = context_digest(str(tmp_path))
    (tmp_path / "scratch").mkdir()
    (tmp_path / "scratch" / "tmp.txt").write_text("anything")
    assert context_digest(str(tmp_path)) == ignoring


def test_container_options_from_the_steps_declarations(tmp_path):
    store = tmp_path / "elsewhere"
    store.mkdir()
    project = tmp_path / "project"
    (project / ".flowml").mkdir(parents=True)
    environ = {"PATH": "/host/venv/bin", "CUDA_VISIBLE_DEVICES": "2,3", "FLOWML_RUN_ID": "r1", "SEED": "4",
               "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000", "FLOWML_TRACKING_URI": f"sqlite:///{store}/flowml.db"}
    spec = {"image": "sha256:0", "root": str(project), "environment": "gpu", "step": "train[a=1]",
            "pass": ["SEED"], "cpus": 1.5, "memory": 2**30, "gpus": "granted"}
    options = container_options(spec, environ)
    assert options["environment"] == {"FLOWML_RUN_ID": "r1", "SEED": "4", "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
                                      "FLOWML_TRACKING_URI": f"sqlite:///{store}/flowml.db"}
    assert (options["nano_cpus"], options["mem_limit"], options["network_mode"]) == (1_500_000_000, 2**30, "host")
    assert options["working_dir"] == str(project) and options["user"] == f"{os.getuid()}:{os.getgid()}"
    assert sorted(options["volumes"]) == sorted([str(project), str(store)])
    assert options["labels"]["flowml.step"] == "train[a=1]"
    [request] = options["device_requests"]
    assert request["DeviceIDs"] == ["2", "3"] and request["Capabilities"] == [["gpu"]]
    assert device_requests("all", {})[0]["Count"] == -1 and device_requests(2, {})[0]["Count"] == 2
    assert device_requests(None, environ) == [] and device_requests("granted", {}) == []
    assert mounts(str(project), {"FLOWML_TRACKING_URI": f"sqlite:///{project}/.flowml/flowml.db"}) == [str(project)]
    unlimited = container_options({**spec, "cpus": None, "memory": None, "gpus": None}, environ)
    assert not {"nano_cpus", "mem_limit", "device_requests"} & set(unlimited)

