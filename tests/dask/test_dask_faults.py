"""The Dask executor where things go wrong: a worker killed mid-step, a step too big for any
worker, declared inputs that git ignores or that lie outside the project, a worker whose
environment differs from the client's. Real ``dask scheduler``/``dask worker`` processes and a
flowml server (conftest.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("distributed")

from tests.dask.conftest import _wait_for_workers, dask_run, running_cluster, tiny_env_pipeline  # noqa: E402
from tests.dask.test_dask_executor import _ends  # noqa: E402
from tests.environments.conftest import build_wheel  # noqa: E402
from tests.servers import stop_group  # noqa: E402

SLOW_ONCE = """\
import os, subprocess
marker = os.environ["MARKER"]
first = not os.path.exists(marker)
with open(marker, "a") as fh:
    fh.write(os.getcwd() + "\\n")
if first:  # a grandchild in the step's process group, as `sh -c "sleep 60; ..."` makes
    sleeper = subprocess.Popen(["sleep", "60"])
    open(marker + ".sleeper", "w").write(str(sleeper.pid))
    sleeper.wait()
open("out.txt", "w").write("done\\n")
"""


def test_a_one_step_run_whose_worker_dies_reruns_elsewhere_and_leaves_no_orphan(project, server, tmp_path_factory):
    marker = tmp_path_factory.mktemp("marker") / "attempts.log"
    project.pipeline(f"""\
        name: lone
        steps:
          slow:
            run: python slow.py
            inputs: [slow.py]
            outputs: [out.txt]
            env_vars: {{MARKER: "{marker}"}}
        """)
    project.write("slow.py", SLOW_ONCE)
    # one worker when the run starts, so that it alone holds the project's files; a second joins
    with running_cluster(tmp_path_factory.mktemp("dying"), workers=1) as own:
        proc = subprocess.Popen([sys.executable, "-m", "flowml", "run", "--executor", "dask", "--scheduler", own.address],
                                cwd=project.root, env={**os.environ, "FLOWML_TRACKING_URI": server.url},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        sleeper = marker.with_name("attempts.log.sleeper")
        deadline = time.monotonic() + 60
        while not sleeper.exists() or not sleeper.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, "the step did not start"
            time.sleep(0.05)
        spare = tmp_path_factory.mktemp("spare")
        joining = subprocess.Popen([sys.executable, "-m", "dask", "worker", own.address, "--host", "127.0.0.1",
                                    "--nthreads", "1", "--no-nanny", "--no-dashboard", "--local-directory", str(spare)],
                                   cwd=spare, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        try:
            _wait_for_workers(own.address, 2)
            os.killpg(own.processes[1].pid, signal.SIGKILL)  # the worker alone: the step is its orphan
            assert proc.wait(timeout=60) == 0, proc.stderr.read()
        finally:
            stop_group(joining)
        assert _ends(int(sleeper.read_text()), within=10), "the first attempt's process outlived its worker"
        first, *others = marker.read_text().splitlines()
        assert len(others) == 1 and others[0].startswith(str(spare)), others
        workspace = os.path.dirname(first)
        deadline = time.monotonic() + 10
        while os.path.exists(workspace) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not os.path.exists(workspace), "the dead worker's workspace was left behind"
    assert project.read("out.txt") == "done\n"


def test_a_step_asking_more_gpus_than_any_worker_has_is_refused_before_anything_runs(project, server,
                                                                                    tmp_path_factory):
    project.pipeline("""\
        name: wide
        steps:
          small: {run: touch small.txt, outputs: [small.txt]}
          big:
            run: touch big.txt
            outputs: [big.txt]
            resources: {gpus: 2}
        """)
    with running_cluster(tmp_path_factory.mktemp("gpus"), worker_args=("--resources", "GPU=1")) as own:
        res = project.flowml("run", "--executor", "dask", "--scheduler", own.address,
                             env={"FLOWML_TRACKING_URI": server.url}, timeout=60)
    assert res.code == 2, res.err
    assert (f"step big asks for 2 GPUs but the run offers at most 1 GPU to a step (the most one machine of "
            f"the Dask cluster at {own.address} has)") in res.err
    assert "Traceback" not in res.err
    assert not (project.root / "small.txt").exists()


def test_declared_inputs_that_git_ignores_are_shipped(project, cluster, server):
    project.pipeline("""\
        name: ignored
        steps:
          count:
            run: wc -l < data/raw.csv > lines.txt
            inputs: [data/raw.csv]
            outputs: [lines.txt]
        """)
    project.write("data/raw.csv", "a\nb\nc\n")
    project.write(".gitignore", "data/\n")
    subprocess.run(["git", "init", "-q", str(project.root)], check=True)
    summary = dask_run(project, cluster, env={"FLOWML_TRACKING_URI": server.url})
    assert summary["code"] == 0, summary["stderr"]
    assert project.read("lines.txt").strip() == "3"


def test_an_input_outside_the_project_is_reported_as_not_shipped(project, cluster, server, tmp_path):
    (project.root / "inner").mkdir()
    (project.root / "shared.txt").write_text("x\n")
    project.write("inner/pipeline.yaml", """\
        name: outside
        steps:
          copy:
            run: cp ../shared.txt copy.txt
            inputs: [../shared.txt]
            outputs: [copy.txt]
        """)
    summary = project.run_json("inner", "--executor", "dask", "--scheduler", cluster.address,
                               env={"FLOWML_TRACKING_URI": server.url})
    assert summary["code"] == 1
    error = summary["by_name"]["copy"]["error"]
    assert "../shared.txt did not reach this worker: not shipped" in error, error
    assert "edited" not in error


def test_a_worker_whose_environment_resolves_otherwise_fails_the_step(project, cluster, server, pip_offline,
                                                                   tmp_path):
    newer = tmp_path / "wheels"
    newer.mkdir()
    build_wheel(newer, "flowtiny", "2.0", "VALUE = 2\n")
    project.pipeline(tiny_env_pipeline("drift"))
    project.write("requirements.txt", "flowtiny\n")  # the client's index has 2.0, the workers' 1.0
    env = {**pip_offline, "PIP_FIND_LINKS": str(newer), "FLOWML_TRACKING_URI": server.url,
           "FLOWML_ENV_DIR": str(tmp_path / "client-envs")}
    summary = dask_run(project, cluster, env=env)
    assert summary["code"] == 1
    error = summary["by_name"]["use"]["error"]
    assert "environment tiny differs on this worker from the client's" in error, error
    assert not (project.root / "value.txt").exists()
