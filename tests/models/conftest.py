"""Fixtures for the model tests: iris data and fitted estimators, a clean tracking state in a
temporary project (``fl``), and a real flowml server (``model_server``)."""

from __future__ import annotations

import threading

import pytest

TRACKING_ENV = ("FLOWML_TRACKING_URI", "MLFLOW_TRACKING_URI", "FLOWML_RUN_ID", "MLFLOW_RUN_ID",
                "FLOWML_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_NAME", "FLOWML_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_ID",
                "FLOWML_ARTIFACT_ROOT")


@pytest.fixture(scope="session")
def iris():
    """(X as a DataFrame of four double columns, y as int64 labels)."""
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True, as_frame=True)


@pytest.fixture(scope="session")
def classifier(iris):
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    return LogisticRegression(max_iter=500).fit(X, y)


@pytest.fixture(scope="session")
def iris_model(tmp_path_factory, iris, classifier):
    """``classifier`` saved by ``flowml.sklearn.save_model`` (skops, signature from five rows):
    the model the serving, batch and Spark tests read and never change."""
    import flowml.sklearn

    path = tmp_path_factory.mktemp("models") / "iris"
    flowml.sklearn.save_model(classifier, str(path), input_example=iris[0][:5])
    return path


@pytest.fixture(scope="session")
def array_classifier(iris):
    """Fitted on a plain array (no feature names), for tensor signatures."""
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    return LogisticRegression(max_iter=500).fit(X.to_numpy(), y.to_numpy())


@pytest.fixture
def fl(tmp_path, monkeypatch):
    """``flowml`` with a clean slate in ``tmp_path`` (the working folder): no active run, a
    store at ``tmp_path/.flowml/flowml.db``; the test's runs are ended and its stores closed."""
    import flowml
    from flowml.tracking import fluent, stores

    for var in TRACKING_ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".flowml").mkdir()
    monkeypatch.setattr(fluent, "_state", threading.local())
    for name, value in (("_uri", None), ("_experiment_id", None), ("_last_run_id", None)):
        monkeypatch.setattr(fluent, name, value)
    monkeypatch.setattr(fluent, "_clients", {})
    monkeypatch.setattr(stores, "_stores", {})
    yield flowml
    while fluent.active_run() is not None:
        fluent.end_run()
    for opened in stores._stores.values():
        opened.close()


@pytest.fixture(scope="module")
def model_server(tmp_path_factory):
    """A flowml server on SQLite for this module's tests."""
    from tests.servers import start_server

    running = start_server(tmp_path_factory.mktemp("model-server"))
    yield running
    running.stop()
