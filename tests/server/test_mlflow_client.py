"""The unmodified MLflow client (mlflow-skinny) against a flowml server over real HTTP."""

from __future__ import annotations

import numpy as np
import pytest

mlflow = pytest.importorskip("mlflow")  # in the test extra: a missing one fails the import check below
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402


def test_mlflow_is_installed_for_these_tests():
    """importorskip must never hide these tests in CI: mlflow-skinny is in the test extra."""
    import importlib.metadata

    assert importlib.metadata.version("mlflow-skinny").startswith("3.")


@pytest.fixture
def tracking(server, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    mlflow.set_tracking_uri(server.url)
    yield MlflowClient(server.url)
    while mlflow.active_run():
        mlflow.end_run()


def test_fluent_logging_search_and_history(tracking, tmp_path):
    mlflow.set_experiment("compat-fluent")
    with mlflow.start_run(run_name="a") as run:
        mlflow.log_param("alpha", 0.5)
        mlflow.log_params({"layers": 3, "act": "relu"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.9, "f1": 0.8}, step=4)
        mlflow.set_tag("team", "fraud")
    with mlflow.start_run(run_name="b"):
        mlflow.log_param("alpha", 0.1)
        mlflow.log_metric("loss", 0.5)
    found = mlflow.search_runs(filter_string="params.alpha = '0.5' and metrics.loss < 0.3",
                               order_by=["metrics.loss ASC"])
    assert list(found["run_id"]) == [run.info.run_id]
    ordered = mlflow.search_runs(order_by=["metrics.loss DESC"])
    assert list(ordered["tags.mlflow.runName"]) == ["b", "a"]
    got = tracking.get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "a"
    assert got.data.params == {"alpha": "0.5", "layers": "3", "act": "relu"}
    assert got.data.metrics == {"loss": 0.2, "acc": 0.9, "f1": 0.8}
    assert got.data.tags["team"] == "fraud"
    history = tracking.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, 1.0 / (s + 1)) for s in range(5)]


def test_errors_come_back_with_mlflow_codes(tracking):
    tracking.create_experiment("compat-dup")
    with pytest.raises(MlflowException) as exc:
        tracking.create_experiment("compat-dup")
    assert exc.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as exc:
        tracking.get_run("0" * 32)
    assert exc.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    run = tracking.create_run(tracking.create_experiment("compat-immutable"))
    tracking.log_param(run.info.run_id, "p", "1")
    with pytest.raises(MlflowException) as exc:
        tracking.log_param(run.info.run_id, "p", "2")
    assert exc.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as exc:
        tracking.search_runs([run.info.experiment_id], "metrics.x < abc")
    assert exc.value.error_code == "INVALID_PARAMETER_VALUE"


def test_artifacts_round_trip_through_the_proxy(tracking, tmp_path):
    mlflow.set_experiment("compat-artifacts")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.txt").write_text("A")
    (tmp_path / "out" / "sub").mkdir()
    (tmp_path / "out" / "sub" / "b.txt").write_text("B")
    (tmp_path / "single.txt").write_text("S")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "single.txt"))
        mlflow.log_artifacts(str(tmp_path / "out"), artifact_path="out")
        mlflow.log_dict({"k": [1, 2]}, "config.json")
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    names = sorted(f.path for f in tracking.list_artifacts(run.info.run_id))
    assert names == ["config.json", "out", "single.txt"]
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="out",
                                                dst_path=str(tmp_path / "dl"))
    assert open(f"{local}/sub/b.txt").read() == "B"
    assert mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/config.json") == {"k": [1, 2]}


def test_sklearn_log_model_goes_through_logged_models(tracking, tmp_path):
    from sklearn.linear_model import LogisticRegression

    mlflow.set_experiment("compat-models")
    rng = np.random.default_rng(0)
    X = rng.random((60, 3))
    y = (X[:, 0] > 0.5).astype(int)
    model = LogisticRegression().fit(X, y)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(model, name="model", input_example=X[:2])
    logged = tracking.get_logged_model(info.model_id)
    assert str(logged.status) == "READY"
    outputs = tracking.get_run(run.info.run_id).outputs.model_outputs  # MLflow 3's link, stored
    assert [(o.model_id, o.step) for o in outputs] == [(info.model_id, 0)]
    with mlflow.start_run() as evaluation:
        tracking.log_inputs(evaluation.info.run_id, models=[mlflow.entities.LoggedModelInput(info.model_id)])
    read = tracking.get_run(evaluation.info.run_id).inputs.model_inputs
    assert [m.model_id for m in read] == [info.model_id]
    with pytest.raises(mlflow.exceptions.MlflowException, match="no logged model"):
        tracking.log_outputs(evaluation.info.run_id, [mlflow.entities.LoggedModelOutput("m-missing", 1)])
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    assert list(loaded.predict(X[:10])) == list(model.predict(X[:10]))


def test_log_input_records_the_dataset_on_the_run(tracking):
    import pandas as pd

    mlflow.set_experiment("compat-inputs")
    frame = pd.DataFrame({"a": [1, 2, 3], "b": [0.1, 0.2, 0.3]})
    dataset = mlflow.data.from_pandas(frame, name="wine", source="data/wine.csv")
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training")
        mlflow.log_input(dataset, context="training")  # the same dataset twice: one input
    (read,) = tracking.get_run(run.info.run_id).inputs.dataset_inputs
    assert (read.dataset.name, read.dataset.digest) == ("wine", dataset.digest)
    assert {t.key: t.value for t in read.tags} == {"mlflow.data.context": "training"}
