"""Interop both ways with the real ``mlflow`` package (mlflow-skinny): MLflow loads what flowml
saved and predicts the same values; flowml loads what MLflow saved, with MLflow's loaders
mapped to its own."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import flowml.pyfunc
import flowml.sklearn

mlflow = pytest.importorskip("mlflow")
import mlflow.pyfunc  # noqa: E402
import mlflow.sklearn  # noqa: E402


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's and sklearn's own warnings are not under test
        yield


class Scaler(flowml.pyfunc.PythonModel):
    """A custom flowml model with an artifact read at load time."""

    def load_context(self, context):
        self.factor = float(open(context.artifacts["factor"]).read())

    def predict(self, context, model_input, params=None):
        return model_input * self.factor


class MlflowScaler(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.factor = float(open(context.artifacts["factor"]).read())

    def predict(self, context, model_input, params=None):
        return model_input * self.factor


@pytest.mark.parametrize("fmt", ["skops", "pickle", "cloudpickle"])
def test_mlflow_loads_flowml_sklearn_models(tmp_path, iris, classifier, fmt):
    X, _ = iris
    flowml.sklearn.save_model(classifier, tmp_path / "m", serialization_format=fmt, input_example=X[:3])
    by_mlflow = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    np.testing.assert_array_equal(by_mlflow.predict(X), classifier.predict(X))
    np.testing.assert_array_equal(by_mlflow.predict(X), flowml.pyfunc.load_model(tmp_path / "m").predict(X))
    estimator = mlflow.sklearn.load_model(str(tmp_path / "m"))
    np.testing.assert_array_equal(estimator.predict(X), classifier.predict(X))
    assert by_mlflow.metadata.get_input_schema().input_names() == list(X.columns)


def test_mlflow_loads_a_flowml_python_model(tmp_path):
    (tmp_path / "factor.txt").write_text("3")
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [0.5, 4.0]})
    flowml.pyfunc.save_model(tmp_path / "m", python_model=Scaler(), artifacts={"factor": str(tmp_path / "factor.txt")},
                             input_example=frame)
    by_mlflow = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    pd.testing.assert_frame_equal(by_mlflow.predict(frame), frame * 3)
    pd.testing.assert_frame_equal(flowml.pyfunc.load_model(tmp_path / "m").predict(frame), frame * 3)


@pytest.mark.parametrize("fmt", ["skops", "pickle", "cloudpickle"])
def test_flowml_loads_mlflow_sklearn_models(tmp_path, iris, classifier, array_classifier, fmt):
    X, _ = iris
    mlflow.sklearn.save_model(classifier, str(tmp_path / "frame"), serialization_format=fmt, input_example=X[:3])
    mlflow.sklearn.save_model(array_classifier, str(tmp_path / "array"), serialization_format=fmt,
                              input_example=X.to_numpy()[:3])
    frame_model = flowml.pyfunc.load_model(tmp_path / "frame")
    np.testing.assert_array_equal(frame_model.predict(X), classifier.predict(X))
    assert frame_model.metadata.signature.inputs.input_names() == list(X.columns)
    array_model = flowml.pyfunc.load_model(tmp_path / "array")
    np.testing.assert_array_equal(array_model.predict(X.to_numpy()), array_classifier.predict(X.to_numpy()))
    assert array_model.metadata.signature.inputs.is_tensor_spec()
    estimator = flowml.sklearn.load_model(tmp_path / "frame")
    np.testing.assert_array_equal(estimator.predict(X), classifier.predict(X))


def test_flowml_loads_an_mlflow_python_model(tmp_path):
    (tmp_path / "factor.txt").write_text("2")
    frame = pd.DataFrame({"a": [1.0, 2.0]})
    mlflow.pyfunc.save_model(str(tmp_path / "m"), python_model=MlflowScaler(),
                             artifacts={"factor": str(tmp_path / "factor.txt")}, input_example=frame)
    model = flowml.pyfunc.load_model(tmp_path / "m")
    pd.testing.assert_frame_equal(model.predict(frame), frame * 2)
    assert isinstance(model.unwrap_python_model(), MlflowScaler)


def test_signatures_read_the_same_on_both_sides(tmp_path, iris, classifier):
    from mlflow.models import infer_signature as mlflow_infer

    from flowml.models.signature import infer_signature

    X, _ = iris
    frame = X.assign(n=np.arange(len(X), dtype="int32"), flag=True, label="x")[:5]
    ours = infer_signature(frame, classifier.predict(X[:5]), params={"k": 3, "t": 0.5, "names": ["a"]})
    theirs = mlflow_infer(frame, pd.Series(classifier.predict(X[:5])), params={"k": 3, "t": 0.5, "names": ["a"]})
    assert ours.to_dict() == theirs.to_dict()
    array = X.to_numpy()[:5]
    assert infer_signature(array, array[:, 0]).to_dict() == mlflow_infer(array, array[:, 0]).to_dict()
