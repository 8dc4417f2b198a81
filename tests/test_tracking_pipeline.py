"""`flowml run` records a parent run per pipeline execution and a child run per step,
cache hits included, through the real CLI; read back through the Python client."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from flowml.tracking.client import FlowmlClient

PIPELINE = """\
    name: wine
    params: {alpha: 0.5, unused: 1}
    steps:
      prepare:
        run: python prepare.py
        inputs: [raw.txt]
        outputs: [clean.txt]
      train:
        matrix: {depth: [2, 4]}
        run: python train.py ${matrix.depth} ${params.alpha}
        inputs: [clean.txt]
        outputs: ["model-${matrix.depth}.txt"]
        metrics: "metrics-${matrix.depth}.json"
    """
PREPARE = "import sys\nprint('preparing', file=sys.stdout)\nopen('clean.txt', 'w').write(open('raw.txt').read().upper())\n"
TRAIN = """\
import json, os, sys
import flowml
depth, alpha = sys.argv[1], float(sys.argv[2])
for epoch in range(3):
    flowml.log_metric("loss", 1.0 / (epoch + 1) / alpha, step=epoch)
flowml.set_tag("seen_run_id", os.environ.get("FLOWML_RUN_ID", "none"))
open(f"model-{depth}.txt", "w").write(depth)
json.dump({"rmse": int(depth) * alpha}, open(f"metrics-{depth}.json", "w"))
"""


@pytest.fixture
def wine(project):
    project.pipeline(PIPELINE)
    project.write("prepare.py", PREPARE)
    project.write("train.py", TRAIN)
    project.write("raw.txt", "grapes\n")
    return project


def client_for(project) -> FlowmlClient:
    return FlowmlClient(f"sqlite:///{project.root}/.flowml/flowml.db")


def runs_of(client: FlowmlClient, experiment: str = "wine") -> list:
    exp = client.get_experiment_by_name(experiment)
    return list(client.search_runs([exp.experiment_id], max_results=1000)) if exp else []


def tree(client: FlowmlClient, parent_id: str) -> dict:
    return {c.data.tags["flowml.node"]: c for c in client.child_runs(parent_id)}


def test_first_run_records_a_parent_and_one_child_per_step(wine):
    summary = wine.run_json()
    assert summary["code"] == 0, summary["stderr"]
    client = client_for(wine)
    parent = client.get_run(summary["run_id"])
    assert parent.info.status == "FINISHED"
    assert client.get_experiment(parent.info.experiment_id).name == "wine"
    assert parent.data.tags["flowml.type"] == "pipeline"
    assert parent.data.params == {"alpha": "0.5", "unused": "1"}
    assert parent.data.metrics["steps_ran"] == 3
    children = tree(client, parent.info.run_id)
    assert sorted(children) == ["prepare", "train[depth=2]", "train[depth=4]"]
    for name, child in children.items():
        step = summary["by_name"][name]
        assert child.info.run_id == step["run_id"]
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["flowml.cache_key"] == step["cache_key"]
        assert child.data.tags["flowml.cache_hit"] == "false"
        assert child.data.tags["flowml.exit_code"] == "0"
        assert child.info.run_name == name
    train = children["train[depth=4]"]
    assert train.data.params == {"alpha": "0.5", "depth": "4"}  # what the step uses, not `unused`
    assert train.data.tags["flowml.step"] == "train"
    assert train.data.metrics["rmse"] == 2.0  # from its metrics: file
    # logged from inside the step, with no setup: the step's own run
    assert train.data.tags["seen_run_id"] == train.info.run_id
    assert [m.value for m in client.get_metric_history(train.info.run_id, "loss")] == [2.0, 1.0, 2.0 / 3]


def test_logs_and_output_digests_are_artifacts_of_the_step_run(wine):
    summary = wine.run_json()
    client = client_for(wine)
    prepare = client.get_run(summary["by_name"]["prepare"]["run_id"])
    folder = prepare.info.artifact_uri
    assert open(os.path.join(folder, "logs", "stdout.txt")).read() == "preparing\n"
    assert json.load(open(os.path.join(folder, "outputs.json"))) == summary["by_name"]["prepare"]["outputs"]
    assert summary["by_name"]["prepare"]["logs"]["stdout"] == os.path.join(folder, "logs", "stdout.txt")
    document = json.load(open(os.path.join(client.get_run(summary["run_id"]).info.artifact_uri, "pipeline.json")))
    assert ["prepare", "train[depth=2]"] in document["edges"]
    assert document["runs"]["prepare"] == prepare.info.run_id


def test_a_rerun_with_nothing_changed_records_nothing(wine):
    wine.run_json()
    before = len(runs_of(client_for(wine)))
    again = wine.run_json()
    assert again["code"] == 0 and again["run_id"] is None
    assert len(runs_of(client_for(wine))) == before == 4


def test_cache_hits_are_child_runs_pointing_at_the_run_that_made_the_outputs(wine):
    first = wine.run_json()
    second = wine.run_json("-P", "alpha=0.25")  # train reruns; prepare is up to date
    assert second["by_name"]["prepare"]["status"] == "cached"
    client = client_for(wine)
    children = tree(client, second["run_id"])
    prepare = children["prepare"]
    assert prepare.data.tags["flowml.cache_hit"] == "true"
    assert prepare.data.tags["flowml.cache_source_run"] == first["by_name"]["prepare"]["run_id"]
    assert prepare.info.status == "FINISHED"
    assert children["train[depth=2]"].data.tags["flowml.cache_hit"] == "false"
    assert children["train[depth=2]"].data.params["alpha"] == "0.25"
    # back to alpha=0.5: every train node is restored from the cache, a hit pointing at run one
    third = wine.run_json()
    hits = tree(client, third["run_id"])
    assert {n: r.data.tags["flowml.cache_hit"] for n, r in hits.items()} == dict.fromkeys(hits, "true")
    assert hits["train[depth=4]"].data.tags["flowml.cache_source_run"] == first["by_name"]["train[depth=4]"]["run_id"]
    assert hits["train[depth=4]"].data.metrics["rmse"] == 2.0


def test_restoring_a_deleted_output_is_a_recorded_cache_hit(wine):
    first = wine.run_json()
    (wine.root / "model-2.txt").unlink()
    second = wine.run_json()
    assert second["run_id"] is not None and wine.read("model-2.txt") == "2"
    hit = tree(client_for(wine), second["run_id"])["train[depth=2]"]
    assert hit.data.tags["flowml.cache_hit"] == "true"
    assert hit.data.tags["flowml.cache_source_run"] == first["by_name"]["train[depth=2]"]["run_id"]


def test_a_failed_step_fails_its_run_and_the_pipeline_run(project):
    project.pipeline("""\
        name: t
        steps:
          bad: {run: "echo oops >&2; exit 3", outputs: [x.txt]}
          after: {run: "cp x.txt y.txt", inputs: [x.txt], outputs: [y.txt]}
        """)
    summary = project.run_json()
    assert summary["code"] == 1
    client = client_for(project)
    parent = client.get_run(summary["run_id"])
    assert parent.info.status == "FAILED"
    children = tree(client, parent.info.run_id)
    assert list(children) == ["bad"]  # `after` never executed: it is in pipeline.json, not a run
    bad = children["bad"]
    assert (bad.info.status, bad.data.tags["flowml.exit_code"], bad.data.tags["flowml.error"]) == ("FAILED", "3", "exit code 3")
    assert open(os.path.join(bad.info.artifact_uri, "logs", "stderr.txt")).read() == "oops\n"
    document = json.load(open(os.path.join(parent.info.artifact_uri, "pipeline.json")))
    assert {s["name"]: s["status"] for s in document["steps"]} == {"bad": "failed", "after": "skipped"}


def test_experiment_option_and_no_track(wine):
    assert wine.flowml("run", "--experiment", "trials").code == 0
    client = client_for(wine)
    assert len(runs_of(client, "trials")) == 4 and runs_of(client, "wine") == []
    assert wine.flowml("run", "--no-track", "--force-all").code == 0
    assert len(runs_of(client, "trials")) == 4 and runs_of(client, "wine") == []


def test_interrupted_run_marks_its_runs_killed(project):
    project.pipeline("""\
        name: t
        steps:
          slow: {run: "touch started; sleep 30", outputs: [never.txt]}
        """)
    proc = project.start("run")
    project.wait_for("started")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    client = client_for(project)
    (parent,) = [r for r in runs_of(client, "t") if r.data.tags["flowml.type"] == "pipeline"]
    assert parent.info.status == "KILLED"
    assert tree(client, parent.info.run_id)["slow"].info.status == "KILLED"


def test_runs_left_running_by_a_killed_flowml_are_marked_killed_on_the_next_start(project):
    project.pipeline("""\
        name: t
        steps:
          slow: {run: "touch started; sleep 30", outputs: [never.txt]}
          quick: {run: "echo hi > q.txt", outputs: [q.txt]}
        """)
    proc = project.start("run", "--target", "slow")
    project.wait_for("started")
    time.sleep(0.3)
    proc.kill()  # kill -9: no chance to record anything
    proc.wait(timeout=10)
    client = client_for(project)
    stuck = runs_of(client, "t")
    assert {r.info.status for r in stuck} == {"RUNNING"} and len(stuck) == 2
    assert project.flowml("run", "--target", "quick").code == 0
    for run in stuck:
        assert client.get_run(run.info.run_id).info.status == "KILLED"


def test_runs_and_cache_entries_go_to_postgresql(wine, pg_database):
    summary = wine.run_json("--tracking-uri", pg_database)
    assert summary["code"] == 0, summary["stderr"]
    client = FlowmlClient(pg_database)
    children = tree(client, summary["run_id"])
    assert len(children) == 3
    assert not os.path.exists(wine.root / ".flowml" / "flowml.db")  # nothing tracked locally
    # the cache index is in PostgreSQL: a second workspace state (a fresh state.db) still finds
    # every entry by key, and with the objects present restores instead of running
    os.unlink(wine.root / ".flowml" / "state.db")
    again = wine.run_json("--tracking-uri", pg_database)
    assert {s["status"] for s in again["steps"]} == {"cached"}
    assert client.get_experiment_by_name("wine") is not None


def test_two_pipelines_and_a_script_logging_at_once_lose_nothing(project):
    """Two `flowml run` of different pipelines and a script share one SQLite store at the same time."""
    for name in ("a", "b"):
        steps = "\n".join(f"  s{i}: {{run: python log.py {name}{i}, outputs: [out/{name}{i}.txt]}}" for i in range(6))
        project.write(f"{name}.yaml", f"name: {name}\nsteps:\n{steps}\n")
    project.write("log.py", """\
        import sys
        import flowml
        for i in range(40):
            flowml.log_metric("m", i, step=i)
        open(f"out/{sys.argv[1]}.txt", "w").write("ok")
        """)
    project.write("script.py", """\
        import flowml
        flowml.set_experiment("script")
        with flowml.start_run():
            for i in range(300):
                flowml.log_metric("x", i, step=i)
                flowml.log_param(f"p{i}", i)
        """)
    import subprocess
    import sys

    procs = [project.start("run", "a.yaml", "-j", "2"), project.start("run", "b.yaml", "-j", "2"),
             subprocess.Popen([sys.executable, "script.py"], cwd=project.root)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    client = client_for(project)
    for name in ("a", "b"):
        steps = [r for r in runs_of(client, name) if r.data.tags["flowml.type"] == "step"]
        assert len(steps) == 6 and {r.info.status for r in steps} == {"FINISHED"}
        for run in steps:
            assert [m.value for m in client.get_metric_history(run.info.run_id, "m")] == list(range(40))
    (script_run,) = runs_of(client, "script")
    assert len(client.get_metric_history(script_run.info.run_id, "x")) == 300
    assert len(script_run.data.params) == 300


def test_values_the_store_refuses_are_dropped_with_a_warning(project):
    long = "x" * 7000  # over MLflow's 6000-character limit for a param value
    project.pipeline(f"""\
        name: t
        params: {{blob: {long}, alpha: 0.5}}
        steps:
          one:
            run: "echo ${{params.blob}} ${{params.alpha}} > one.txt; echo '{{\\"f1@0.5\\": 1, \\"rmse\\": 2}}' > m.json"
            outputs: [one.txt]
            metrics: m.json
        """)
    summary = project.run_json()
    assert summary["code"] == 0, summary["stderr"]
    err = summary["stderr"]
    assert "warning: not tracked: param 'blob' value is 7000 characters long" in err
    assert "warning: not tracked: invalid metric key 'f1@0.5'" in err and "Traceback" not in err
    assert project.read("one.txt").strip() == f"{long} 0.5"
    client = client_for(project)
    parent = client.get_run(summary["run_id"])
    assert parent.info.status == "FINISHED" and parent.data.params == {"alpha": "0.5"}
    (one,) = client.child_runs(parent.info.run_id)
    assert one.info.status == "FINISHED" and one.data.metrics == {"rmse": 2.0}


def test_an_unreachable_tracking_store_fails_the_steps_with_one_line(project):
    project.pipeline("""\
        name: t
        steps:
          one: {run: "echo 1 > one.txt", outputs: [one.txt]}
        """)
    res = project.flowml("run", "--tracking-uri", "postgresql://postgres@127.0.0.1:9/nowhere")
    assert res.code == 1 and "Traceback" not in res.err
    assert "tracking store postgresql+psycopg://postgres@127.0.0.1:9/nowhere" in res.err
    assert not (project.root / "one.txt").exists()


def test_a_step_may_log_its_own_params_again(project):
    """The recorder logs a step's params as Python's str() does, as the step's code would."""
    project.pipeline("""\
        name: t
        params: {use_gpu: false, rate: 0.5}
        steps:
          one: {run: "python one.py ${params.use_gpu} ${params.rate}", outputs: [one.txt]}
        """)
    project.write("one.py", """\
        import flowml
        flowml.log_params({"use_gpu": False, "rate": 0.5})
        open("one.txt", "w").write("ok")
        """)
    summary = project.run_json()
    assert summary["code"] == 0, summary["stderr"]
    assert client_for(project).get_run(summary["by_name"]["one"]["run_id"]).data.params == {
        "use_gpu": "False", "rate": "0.5"}


def test_a_second_workspace_sharing_the_store_runs_what_it_cannot_restore(tmp_path, project_class):
    """The index is shared, the objects are not (until the server carries them): workspace B
    finds A's entries but, lacking their outputs' objects, runs the steps instead of
    claiming a hit it cannot restore."""
    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    for name in ("a", "b"):
        workspace = project_class(tmp_path / name)
        workspace.pipeline("""\
            name: t
            steps:
              one: {run: "echo 1 > one.txt", outputs: [one.txt]}
            """)
        summary = workspace.run_json("--tracking-uri", shared)
        assert summary["code"] == 0, summary["stderr"]
        assert summary["by_name"]["one"]["status"] == "ran"
        assert workspace.read("one.txt") == "1\n"
