"""The module-level API (``flowml.start_run``, ``flowml.log_metric`` ...) on an SQLite store.

The ``fl`` fixture gives each test a fresh store in its tmp_path as the working folder, and
puts the module's state (active runs, tracking URI, experiment, open stores) back afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from flowml.errors import TrackingError

ENV = ("FLOWML_TRACKING_URI", "MLFLOW_TRACKING_URI", "FLOWML_RUN_ID", "MLFLOW_RUN_ID", "FLOWML_EXPERIMENT_NAME",
       "MLFLOW_EXPERIMENT_NAME", "FLOWML_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_ID", "FLOWML_ARTIFACT_ROOT")


@pytest.fixture
def fl(tmp_path, monkeypatch):
    """``flowml`` with a clean slate: no active run, no experiment set, a store at
    ``tmp_path/flowml.db``; everything the test changed is undone, and its stores closed."""
    import flowml
    from flowml.tracking import fluent, stores

    for var in ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(fluent, "_state", threading.local())
    for name, value in (("_uri", None), ("_experiment_id", None), ("_last_run_id", None)):
        monkeypatch.setattr(fluent, name, value)
    monkeypatch.setattr(fluent, "_clients", {})
    monkeypatch.setattr(stores, "_stores", {})
    flowml.set_tracking_uri(tmp_path / "flowml.db")
    yield flowml
    while fluent.active_run() is not None:
        fluent.end_run()
    for opened in stores._stores.values():
        opened.close()


def artifacts_of(fl, run_id: str) -> Path:
    return Path(fl.get_run(run_id).info.artifact_uri)


def test_the_issues_example(fl, tmp_path):
    flowml = fl
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots/roc.png").write_bytes(b"\x89PNG fake")

    with flowml.start_run(run_name="baseline"):
        flowml.log_params({"alpha": 0.5})
        for epoch in range(10):
            flowml.log_metric("loss", 1 / (epoch + 1), step=epoch)
        flowml.set_tag("team", "fraud")
        flowml.log_artifact("plots/roc.png")
    runs = flowml.search_runs(experiment_names=["wine"], filter_string="metrics.rmse < 0.8 and params.alpha = '0.5'",
                              order_by=["metrics.rmse ASC"])

    assert len(runs) == 0  # no experiment "wine" yet: nothing, as in MLflow
    run = flowml.last_active_run()
    assert flowml.active_run() is None
    assert (run.info.run_name, run.info.status, run.info.experiment_id) == ("baseline", "FINISHED", "0")
    assert run.data.params == {"alpha": "0.5"}
    assert run.data.metrics == {"loss": 0.1}
    assert run.data.tags["team"] == "fraud" and run.data.tags["mlflow.runName"] == "baseline"
    assert [(m.step, m.value) for m in flowml.get_metric_history(run.info.run_id, "loss")] == [
        (epoch, 1 / (epoch + 1)) for epoch in range(10)]
    assert (artifacts_of(fl, run.info.run_id) / "roc.png").read_bytes() == b"\x89PNG fake"
    assert str(tmp_path / "artifacts" / "0" / run.info.run_id / "artifacts") == run.info.artifact_uri

    # The same search once "wine" has runs: only the one that matches both clauses.
    flowml.set_experiment("wine")
    made = {}
    for name, alpha, rmse in (("good", 0.5, 0.5), ("better", 0.5, 0.2), ("bad", 0.5, 0.9), ("other", 0.7, 0.1)):
        with flowml.start_run(run_name=name) as active:
            flowml.log_params({"alpha": alpha})
            flowml.log_metric("rmse", rmse)
        made[name] = active.info.run_id
    runs = flowml.search_runs(experiment_names=["wine"], filter_string="metrics.rmse < 0.8 and params.alpha = '0.5'",
                              order_by=["metrics.rmse ASC"])
    assert list(runs["run_id"]) == [made["better"], made["good"]]
    assert list(runs["metrics.rmse"]) == [0.2, 0.5]
    assert list(runs["params.alpha"]) == ["0.5", "0.5"]
    assert list(runs["tags.mlflow.runName"]) == ["better", "good"]


def test_start_run_returns_an_active_run(fl):
    run = fl.start_run(run_name="r", tags={"k": 1}, description="notes")
    assert fl.active_run() is run
    assert run.info.status == "RUNNING" and run.info.run_name == "r"
    stored = fl.get_run(run.info.run_id)
    assert stored.data.tags["k"] == "1" and stored.data.tags["mlflow.note.content"] == "notes"
    assert stored.data.tags["mlflow.source.type"] == "LOCAL" and stored.data.tags["mlflow.user"]
    assert fl.get_artifact_uri() == stored.info.artifact_uri
    assert fl.get_artifact_uri("a/b.txt") == stored.info.artifact_uri + "/a/b.txt"
    fl.end_run()
    assert fl.active_run() is None
    assert fl.get_run(run.info.run_id).info.status == "FINISHED"
    fl.end_run()  # nothing active: nothing to do
    fl.start_run()
    fl.end_run("KILLED")
    assert fl.last_active_run().info.status == "KILLED"


def test_nested_runs(fl):
    with fl.start_run(run_name="parent") as parent:
        with fl.start_run(run_name="child", nested=True) as child:
            assert fl.active_run().info.run_id == child.info.run_id
            fl.log_metric("m", 1.0)
            with fl.start_run(nested=True) as grandchild:
                pass
        assert fl.active_run().info.run_id == parent.info.run_id
        assert fl.get_run(child.info.run_id).info.status == "FINISHED"
        assert fl.get_run(parent.info.run_id).info.status == "RUNNING"
    tags = fl.get_run(child.info.run_id).data.tags
    assert tags["mlflow.parentRunId"] == parent.info.run_id
    assert fl.get_run(grandchild.info.run_id).data.tags["mlflow.parentRunId"] == child.info.run_id
    assert "mlflow.parentRunId" not in fl.get_run(parent.info.run_id).data.tags
    assert fl.get_run(child.info.run_id).data.metrics == {"m": 1.0}
    assert fl.get_run(parent.info.run_id).data.metrics == {}
    assert fl.get_run(parent.info.run_id).info.status == "FINISHED"
    # An explicit parent, with nothing active.
    with fl.start_run(parent_run_id=parent.info.run_id) as adopted:
        pass
    assert fl.get_run(adopted.info.run_id).data.tags["mlflow.parentRunId"] == parent.info.run_id


def test_start_run_while_one_is_active_needs_nested(fl):
    with fl.start_run() as outer:
        with pytest.raises(TrackingError, match="already active") as info:
            fl.start_run()
        assert info.value.error_code == "INVALID_STATE"
        assert fl.active_run().info.run_id == outer.info.run_id
    assert len(fl.search_runs(output_format="list")) == 1


def test_resume_by_run_id(fl):
    with fl.start_run(run_name="first") as run:
        fl.log_param("a", 1)
        fl.log_metric("m", 1.0, step=0)
    run_id = run.info.run_id
    assert fl.get_run(run_id).info.status == "FINISHED"
    with fl.start_run(run_id=run_id) as resumed:
        assert resumed.info.run_id == run_id and resumed.info.status == "RUNNING"
        assert fl.get_run(run_id).info.status == "RUNNING"
        fl.log_metric("m", 2.0, step=1)
        fl.log_param("a", 1)
        with pytest.raises(TrackingError, match="immutable"):
            fl.log_param("a", 2)
    run = fl.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "first"
    assert [m.value for m in fl.get_metric_history(run_id, "m")] == [1.0, 2.0]
    assert run.data.params == {"a": "1"}
    assert len(fl.search_runs(output_format="list")) == 1
    with pytest.raises(TrackingError) as info:
        fl.start_run(run_id="0" * 32)
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert fl.active_run() is None


def test_a_deleted_run_cannot_be_resumed(fl):
    with fl.start_run() as run:
        pass
    fl.FlowmlClient().delete_run(run.info.run_id)
    with pytest.raises(TrackingError, match="deleted"):
        fl.start_run(run_id=run.info.run_id)
    assert fl.active_run() is None


STEP_SCRIPT = """
import flowml
flowml.log_metric("from_step", 3.0, step=2)
flowml.log_param("p", "x")
flowml.set_tag("t", "v")
print(flowml.active_run().info.run_id)
"""


def test_resume_through_the_environment(fl, tmp_path):
    """What a pipeline step does: its process gets the store and its run in the environment."""
    with fl.start_run(run_name="step") as run:
        fl.log_metric("before", 1.0)
    env = {k: v for k, v in os.environ.items() if k not in ENV}
    env.update({"FLOWML_TRACKING_URI": f"sqlite:///{tmp_path / 'flowml.db'}", "FLOWML_RUN_ID": run.info.run_id})
    proc = subprocess.run([sys.executable, "-c", STEP_SCRIPT], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == run.info.run_id
    got = fl.get_run(run.info.run_id)
    assert got.data.metrics == {"before": 1.0, "from_step": 3.0}
    assert got.data.latest["from_step"].step == 2
    assert got.data.params == {"p": "x"} and got.data.tags["t"] == "v"
    assert got.info.status == "FINISHED"  # ended when the script exited
    assert len(fl.search_runs(output_format="list")) == 1  # no other run was made


def test_mlflow_variables_are_left_to_mlflow(fl, tmp_path):
    """MLFLOW_RUN_ID and MLFLOW_TRACKING_URI name MLflow's runs and stores: flowml ignores them."""
    with fl.start_run(run_name="other") as run:
        pass
    env = {k: v for k, v in os.environ.items() if k not in ENV}
    env.update({"FLOWML_TRACKING_URI": f"sqlite:///{tmp_path / 'flowml.db'}", "MLFLOW_RUN_ID": run.info.run_id,
                "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})
    proc = subprocess.run([sys.executable, "-c", STEP_SCRIPT], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() != run.info.run_id
    assert fl.get_run(proc.stdout.strip()).data.metrics["from_step"] == 3.0
    assert "from_step" not in fl.get_run(run.info.run_id).data.metrics


def test_logging_with_no_active_run_starts_one(fl):
    assert fl.active_run() is None
    fl.log_metric("m", 0.5)
    run = fl.active_run()
    assert run is not None and run.info.experiment_id == "0"
    fl.log_param("p", 1)
    fl.end_run()
    stored = fl.get_run(run.info.run_id)
    assert stored.data.metrics == {"m": 0.5} and stored.data.params == {"p": "1"}
    assert stored.info.status == "FINISHED"


def test_an_exception_inside_with_fails_the_run(fl):
    with pytest.raises(ZeroDivisionError):
        with fl.start_run() as run:
            fl.log_metric("m", 1.0)
            1 / 0
    assert fl.active_run() is None
    info = fl.get_run(run.info.run_id).info
    assert info.status == "FAILED" and info.end_time is not None
    with pytest.raises(KeyboardInterrupt):
        with fl.start_run() as run:
            raise KeyboardInterrupt
    assert fl.get_run(run.info.run_id).info.status == "KILLED"


def test_set_experiment(fl):
    assert fl.get_experiment_by_name("wine") is None
    experiment = fl.set_experiment("wine")
    assert experiment.name == "wine" and experiment.experiment_id == "1"
    assert fl.get_experiment_by_name("wine").experiment_id == "1"
    assert fl.set_experiment("wine").experiment_id == "1"  # exists now: the same one
    with fl.start_run() as run:
        pass
    assert run.info.experiment_id == "1"
    assert fl.set_experiment(experiment_id="0").name == "Default"
    with fl.start_run() as run:
        pass
    assert run.info.experiment_id == "0"
    with fl.start_run(experiment_id="1") as run:
        pass
    assert run.info.experiment_id == "1"
    with pytest.raises(TrackingError, match="exactly one"):
        fl.set_experiment("wine", experiment_id="1")
    with pytest.raises(TrackingError, match="exactly one"):
        fl.set_experiment()
    with pytest.raises(TrackingError) as info:
        fl.set_experiment(experiment_id="42")
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    fl.FlowmlClient().delete_experiment("1")
    with pytest.raises(TrackingError, match="deleted") as info:
        fl.set_experiment("wine")
    assert info.value.error_code == "INVALID_STATE"
    assert [e.name for e in fl.search_experiments()] == ["Default"]
    assert [e.name for e in fl.search_experiments(view_type="ALL", order_by=["experiment_id"])] == ["Default", "wine"]


def test_search_experiments_takes_mlflows_arguments_and_reads_every_page(fl, monkeypatch):
    from flowml.tracking import client as client_module

    client = fl.FlowmlClient()
    ids = {name: client.create_experiment(name, tags={"kind": "brew" if name == "beer" else "drink"})
           for name in ("wine", "water", "Whisky", "beer")}
    assert [e.name for e in fl.search_experiments(filter_string="name LIKE 'w%'", order_by=["name"])] == [
        "water", "wine"]
    assert [e.name for e in fl.search_experiments(filter_string="name ILIKE 'w%'", order_by=["name DESC"])] == [
        "wine", "water", "Whisky"]
    assert [e.name for e in fl.search_experiments(filter_string="tags.kind = 'brew'")] == ["beer"]
    client.delete_experiment(ids["water"])
    # positional, as mlflow.search_experiments(view_type, max_results, filter_string, order_by)
    assert [e.name for e in fl.search_experiments("DELETED_ONLY", None, "tags.kind = 'drink'", None)] == ["water"]
    assert [e.name for e in fl.search_experiments("ALL", 2, "tags.kind = 'drink'", ["experiment_id DESC"])] == [
        "Whisky", "water"]

    # pages of at most SEARCH_MAX_RESULTS, read one after another up to max_results
    pages = []
    real = client_module.FlowmlClient.search_experiments

    def counting(self, *args, **kw):
        page = real(self, *args, **kw)
        pages.append(len(page))
        return page

    monkeypatch.setattr(client_module, "SEARCH_MAX_RESULTS", 2)
    monkeypatch.setattr(client_module.FlowmlClient, "search_experiments", counting)
    everything = fl.search_experiments(view_type="ALL", order_by=["experiment_id"])
    assert [e.name for e in everything] == ["Default", "wine", "water", "Whisky", "beer"] and pages == [2, 2, 1]
    pages.clear()
    assert [e.name for e in fl.search_experiments(max_results=3, order_by=["experiment_id"])] == [
        "Default", "wine", "Whisky"]
    assert pages == [2, 1]
    with pytest.raises(TrackingError, match="invalid filter") as info:
        fl.search_experiments(filter_string="metrics.a > 1")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_experiment_from_the_environment(fl, monkeypatch):
    monkeypatch.setenv("FLOWML_EXPERIMENT_NAME", "from-env")
    with fl.start_run() as run:
        pass
    assert fl.get_experiment(run.info.experiment_id).name == "from-env"


def test_set_experiment_handles_a_creation_race(fl, monkeypatch):
    """Another process creates the experiment between our look-up and our create."""
    from flowml.tracking.client import FlowmlClient

    other = fl.FlowmlClient()
    real = FlowmlClient.get_experiment_by_name
    calls = []

    def late(self, name):
        calls.append(name)
        if len(calls) == 1:
            other.create_experiment(name)  # "meanwhile"
            return None
        return real(self, name)

    monkeypatch.setattr(FlowmlClient, "get_experiment_by_name", late)
    assert fl.set_experiment("raced").experiment_id == real(other, "raced").experiment_id
    assert calls == ["raced", "raced"]


def test_search_runs_frame(fl):
    fl.set_experiment("e")
    with fl.start_run(run_name="a") as a:
        fl.log_metrics({"rmse": 0.5, "mae": 0.25}, step=3)
        fl.log_params({"alpha": 0.5, "model": "lr"})
        fl.set_tags({"team": "x"})
    with fl.start_run(run_name="b") as b:
        fl.log_metric("rmse", 0.75)
    frame = fl.search_runs(order_by=["metrics.rmse DESC"])
    assert list(frame["run_id"]) == [b.info.run_id, a.info.run_id]
    base = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    assert list(frame.columns[:6]) == base
    assert {"metrics.rmse", "metrics.mae", "params.alpha", "params.model", "tags.team",
            "tags.mlflow.runName", "tags.mlflow.user"} <= set(frame.columns)
    row = frame.iloc[1]
    assert (row["metrics.rmse"], row["metrics.mae"], row["params.alpha"], row["tags.team"]) == (0.5, 0.25, "0.5", "x")
    assert row["status"] == "FINISHED" and row["experiment_id"] == "1"
    assert str(frame["start_time"].dtype).startswith("datetime64") and frame["start_time"].dt.tz is not None
    assert frame.iloc[0]["metrics.rmse"] == 0.75
    assert frame.iloc[0][["metrics.mae", "params.alpha", "tags.team"]].isna().all()  # b has none of these
    assert fl.get_run(a.info.run_id).data.latest["mae"].step == 3


def test_search_runs_list_and_experiments(fl):
    ids = {}
    for name in ("one", "two"):
        fl.set_experiment(name)
        with fl.start_run() as run:
            fl.log_metric("m", 1.0 if name == "one" else 2.0)
        ids[name] = run.info.run_id
    with fl.start_run(experiment_id="0") as default_run:
        pass

    def run_ids(**kw):
        return {r.info.run_id for r in fl.search_runs(output_format="list", **kw)}

    assert run_ids() == {ids["two"]}  # the active experiment
    assert run_ids(experiment_names=["one"]) == {ids["one"]}
    assert run_ids(experiment_names=["one", "two", "missing"]) == {ids["one"], ids["two"]}
    assert run_ids(experiment_ids=["1"]) == {ids["one"]}
    assert run_ids(experiment_ids="1") == {ids["one"]}
    assert run_ids(experiment_ids=["1"], experiment_names=["two"]) == {ids["one"], ids["two"]}
    assert run_ids(search_all_experiments=True) == {ids["one"], ids["two"], default_run.info.run_id}
    assert run_ids(experiment_ids=["1", "2"], filter_string="metrics.m > 1.5") == {ids["two"]}
    assert len(fl.search_runs(experiment_ids=["1", "2"], max_results=1, output_format="list")) == 1
    runs = fl.search_runs(experiment_names=["one"], output_format="list")
    assert runs[0].data.metrics == {"m": 1.0}
    empty = fl.search_runs(experiment_names=["missing"])
    assert len(empty) == 0 and "run_id" in empty.columns
    with pytest.raises(TrackingError, match="output_format"):
        fl.search_runs(output_format="json")
    with pytest.raises(TrackingError) as info:
        fl.search_runs(filter_string="metrics.m >> 1")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_logging_calls(fl):
    from flowml.tracking.entities import Metric, Param, RunTag

    with fl.start_run() as run:
        assert fl.log_param("p", 5) == 5
        fl.log_batch(metrics=[Metric("b", 2.0, 10, 1)], params=[Param("q", "z")], tags=[RunTag("t", "1")])
        fl.log_metric("m", 1.0, step=4, timestamp=123)
        fl.set_tag("gone", "x")
        fl.delete_tag("gone")
        with pytest.raises(TrackingError) as info:
            fl.delete_tag("gone")
        assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    got = fl.get_run(run.info.run_id)
    assert got.data.params == {"p": "5", "q": "z"}
    assert got.data.metrics == {"b": 2.0, "m": 1.0}
    assert [(m.value, m.timestamp, m.step) for m in fl.get_metric_history(run.info.run_id, "m")] == [(1.0, 123, 4)]
    assert got.data.tags["t"] == "1" and "gone" not in got.data.tags


def test_artifacts_land_in_the_run_folder(fl, tmp_path):
    yaml = pytest.importorskip("yaml")
    (tmp_path / "one.txt").write_text("one")
    (tmp_path / "dir/sub").mkdir(parents=True)
    (tmp_path / "dir/a.txt").write_text("a")
    (tmp_path / "dir/sub/b.txt").write_text("b")
    with fl.start_run() as run:
        fl.log_text("hello", "notes/hello.txt")
        fl.log_dict({"b": 1, "a": [1, 2]}, "config.json")
        fl.log_dict({"b": 1, "a": [1, 2]}, "config/params.yaml")
        fl.log_artifact(str(tmp_path / "one.txt"))
        fl.log_artifact(str(tmp_path / "one.txt"), "copies")
        fl.log_artifacts(str(tmp_path / "dir"), "tree")
        fl.log_artifacts(str(tmp_path / "dir"))
        fl.log_artifact(str(tmp_path / "dir"))  # a folder: kept under its name
    root = artifacts_of(fl, run.info.run_id)
    assert root == tmp_path / "artifacts" / "0" / run.info.run_id / "artifacts"
    assert (root / "notes/hello.txt").read_text() == "hello"
    assert json.loads((root / "config.json").read_text()) == {"b": 1, "a": [1, 2]}
    assert yaml.safe_load((root / "config/params.yaml").read_text()) == {"b": 1, "a": [1, 2]}
    assert (root / "one.txt").read_text() == "one" and (root / "copies/one.txt").read_text() == "one"
    assert (root / "tree/a.txt").read_text() == "a" and (root / "tree/sub/b.txt").read_text() == "b"
    assert (root / "a.txt").read_text() == "a" and (root / "sub/b.txt").read_text() == "b"
    assert (root / "dir/sub/b.txt").read_text() == "b"
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == sorted(["notes/hello.txt", "config.json", "config/params.yaml", "one.txt", "copies/one.txt",
                            "tree/a.txt", "tree/sub/b.txt", "a.txt", "sub/b.txt", "dir/a.txt", "dir/sub/b.txt"])
    with pytest.raises(TrackingError):
        fl.log_text("x", "../escape.txt")
    assert not (root.parent / "escape.txt").exists()


def test_log_figure(fl):
    """A matplotlib figure is anything with ``savefig``, a plotly one has ``write_html``/``write_image``."""
    class Matplotlib:
        def savefig(self, path):
            Path(path).write_bytes(b"png:" + os.path.basename(path).encode())

    class Plotly:
        def write_html(self, path):
            Path(path).write_text("<html>")

        def write_image(self, path):
            Path(path).write_bytes(b"img")

    with fl.start_run() as run:
        fl.log_figure(Matplotlib(), "plots/line.png")
        fl.log_figure(Matplotlib(), "top.png")
        fl.log_figure(Plotly(), "plots/chart.html")
        fl.log_figure(Plotly(), "plots/chart.svg")
        with pytest.raises(TrackingError, match="figure"):
            fl.log_figure(object(), "x.png")
    root = artifacts_of(fl, run.info.run_id)
    assert (root / "plots/line.png").read_bytes() == b"png:line.png"
    assert (root / "top.png").read_bytes() == b"png:top.png"
    assert (root / "plots/chart.html").read_text() == "<html>"
    assert (root / "plots/chart.svg").read_bytes() == b"img"
    assert not (root / "x.png").exists()


def test_tracking_uri(fl, tmp_path):
    assert fl.get_tracking_uri() == f"sqlite:///{tmp_path / 'flowml.db'}"
    fl.set_tracking_uri("sqlite:///" + str(tmp_path / "other.db"))
    assert fl.get_tracking_uri() == f"sqlite:///{tmp_path / 'other.db'}"
    with fl.start_run() as run:
        pass
    assert (tmp_path / "other.db").exists()
    assert fl.get_run(run.info.run_id).info.artifact_uri.startswith(str(tmp_path / "artifacts"))


def test_import_flowml_loads_no_sqlalchemy(tmp_path):
    """``import flowml`` stays cheap: the store's dependencies load when the API is first used."""
    probe = "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'alembic', 'pandas', 'psycopg'}))"
    for code, expected in ((f"import sys, flowml; {probe}", "[]"),
                           (f"import sys, flowml; flowml.start_run; {probe}", "[]"),
                           (f"import sys, flowml; flowml.start_run(); {probe}", "['alembic', 'sqlalchemy']")):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                              cwd=tmp_path, env={k: v for k, v in os.environ.items() if k not in ENV})
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == expected, code


def test_client_follows_set_tracking_uri(fl, tmp_path):
    """As MlflowClient(): without a URI, the one set_tracking_uri chose."""
    fl.set_tracking_uri(tmp_path / "chosen.db")
    assert fl.FlowmlClient().tracking_uri == f"sqlite:///{tmp_path / 'chosen.db'}"
