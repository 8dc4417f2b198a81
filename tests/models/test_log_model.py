"""log_model with MLflow 3's semantics, against the local store and against a flowml server:
a READY logged model tied to its run, loadable by every URI that names it, registered when
asked; a failed save leaves a FAILED logged model and no half model."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import flowml.pyfunc
import flowml.sklearn
from flowml.models.errors import ModelError


def check_logged(fl, info, run_id, X, classifier):
    client = fl.FlowmlClient()
    logged = client.get_logged_model(info.model_id)
    assert logged.status == "READY" and logged.source_run_id == run_id and logged.name == "model"
    assert info.model_uri == f"models:/{info.model_id}" and info.run_id == run_id
    assert info.artifact_path == logged.artifact_location
    assert info.flavors["sklearn"]["serialization_format"] == "skops"
    assert info.signature.inputs.input_names() == list(X.columns)
    for uri in (info.model_uri, f"runs:/{run_id}/model"):
        model = flowml.pyfunc.load_model(uri)
        np.testing.assert_array_equal(model.predict(X[:7]), classifier.predict(X[:7]))
        assert (model.metadata.model_id, model.metadata.run_id) == (info.model_id, run_id)
    assert [(o.model_id, o.step) for o in fl.get_run(run_id).model_outputs] == [(info.model_id, 0)]
    history = json.loads(fl.get_run(run_id).data.tags["mlflow.log-model.history"])
    assert [(h["artifact_path"], h["model_id"]) for h in history] == [("model", info.model_id)]


def test_log_model_in_the_local_store(fl, iris, classifier):
    X, _ = iris
    with fl.start_run() as run:
        info = flowml.sklearn.log_model(classifier, "model", input_example=X[:3], params={"C": 1.0})
    check_logged(fl, info, run.info.run_id, X, classifier)
    assert fl.FlowmlClient().get_logged_model(info.model_id).params == {"C": "1.0"}
    estimator = flowml.sklearn.load_model(f"runs:/{run.info.run_id}/model")
    np.testing.assert_array_equal(estimator.predict(X), classifier.predict(X))


def test_log_model_through_a_server(fl, model_server, iris, classifier):
    X, _ = iris
    fl.set_tracking_uri(model_server.url)
    with fl.start_run() as run:
        info = flowml.sklearn.log_model(classifier, "model", input_example=X[:3])
    assert info.artifact_path.startswith("mlflow-artifacts:/")
    check_logged(fl, info, run.info.run_id, X, classifier)
    stored = list(model_server.artifacts.rglob("MLmodel"))
    assert any(info.model_id in str(p) for p in stored)  # uploaded through the artifact proxy


def test_mlflow_sees_a_model_flowml_logged_to_a_server(fl, model_server, iris, classifier):
    mlflow = pytest.importorskip("mlflow")
    X, _ = iris
    fl.set_tracking_uri(model_server.url)
    with fl.start_run() as run:
        info = flowml.sklearn.log_model(classifier, "model", input_example=X[:3])
    client = mlflow.MlflowClient(model_server.url)
    logged = client.get_logged_model(info.model_id)
    assert logged.source_run_id == run.info.run_id and str(logged.status) in ("READY", "LoggedModelStatus.READY")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.set_tracking_uri(model_server.url)
        try:
            by_mlflow = mlflow.pyfunc.load_model(info.model_uri)
        finally:
            mlflow.set_tracking_uri(None)
    np.testing.assert_array_equal(by_mlflow.predict(X[:5]), classifier.predict(X[:5]))


def test_without_a_run_the_model_has_no_source_run(fl, classifier):
    info = flowml.sklearn.log_model(classifier, "model")
    assert info.run_id is None and fl.active_run() is None
    assert fl.FlowmlClient().get_logged_model(info.model_id).source_run_id is None


def test_a_failed_save_finalizes_the_logged_model_failed(fl, classifier):
    with fl.start_run():
        with pytest.raises(ModelError, match="serialization_format"):
            flowml.sklearn.log_model(classifier, "model", serialization_format="joblib")
    client = fl.FlowmlClient()
    [logged] = client.search_logged_models(["0"])
    assert logged.status == "FAILED"


def test_registered_model_name_registers_a_version_once_per_content(fl, iris, classifier):
    X, _ = iris
    with fl.start_run() as run:
        first = flowml.sklearn.log_model(classifier, "model", registered_model_name="iris")
        again = flowml.sklearn.log_model(classifier, "model", registered_model_name="iris")
    assert first.registered_model_version == 1
    from flowml.registry import RegistryClient

    version = RegistryClient().get_model_version("iris", 1)
    assert (version.source, version.run_id, version.model_id) == (first.model_uri, run.info.run_id, first.model_id)
    # a model saved twice differs only by its ids and timestamps in MLmodel: a new version
    assert again.registered_model_version == 2
    for uri in ("models:/iris/1", "models:/iris/latest"):
        model = flowml.pyfunc.load_model(uri)
        np.testing.assert_array_equal(model.predict(X[:4]), classifier.predict(X[:4]))
    RegistryClient().set_registered_model_alias("iris", "production", 1)
    assert flowml.pyfunc.load_model("models:/iris@production").metadata.model_id == first.model_id


def test_custom_python_model_logs_and_loads(fl):
    class Plus(flowml.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return [x + 1 for x in model_input]

    with fl.start_run():
        info = flowml.pyfunc.log_model("plus", python_model=Plus())
    assert flowml.pyfunc.load_model(info.model_uri).predict([1, 2]) == [2, 3]
