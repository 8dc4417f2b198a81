"""Models to deploy, and cleanup: every deployment a test makes is stopped, even when it fails."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def line_model():
    """``line_model(path, slope)`` saves a model there; see :func:`save_line`."""
    return save_line


@pytest.fixture
def predict_one():
    """``predict_one(url, x)``; see :func:`predict`."""
    return predict


def save_line(path: Path, slope: float) -> Path:
    """A scikit-learn model predicting ``slope * x`` (so an answer tells which model made it)."""
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    import flowml.sklearn

    X = pd.DataFrame({"x": [float(i) for i in range(10)]})
    flowml.sklearn.save_model(LinearRegression().fit(X, slope * X["x"]), str(path), input_example=X[:2])
    return path


def stop_deployments(root: Path) -> None:
    """Stop every local deployment of the project at ``root`` (its records say where they are)."""
    from flowml.deployments import processes
    from flowml.deployments.records import Records

    for record in Records(str(root)).all():
        if record.target == "local":
            processes.stop(record.handle, grace=2)


@pytest.fixture
def deployments_of(project):
    """The project; its deployments are stopped at the end of the test, whatever happens."""
    yield project
    stop_deployments(project.root)


def predict(url: str, x: float = 2.0) -> tuple[float, str | None]:
    """(prediction for one row, rounded, and the X-Flowml-Model-Version header) from a deployment."""
    import httpx

    reply = httpx.post(url + "/invocations", json={"dataframe_split": {"columns": ["x"], "data": [[x]]}}, timeout=10)
    assert reply.status_code == 200, reply.text
    return round(reply.json()["predictions"][0], 6), reply.headers.get("x-flowml-model-version")
