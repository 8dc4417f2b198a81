"""The scikit-learn flavor: save and load in each format, what the model directory holds, and
the refusals (unknown format, a path in the way, untrusted types)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import yaml

import flowml.pyfunc
import flowml.sklearn
from flowml.models.errors import ModelError, UnsafeSerializationWarning


def mlmodel(path) -> dict:
    return yaml.safe_load((path / "MLmodel").read_text())


def test_skops_is_the_default_and_round_trips(tmp_path, iris, classifier):
    X, _ = iris
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsafeSerializationWarning)  # skops never warns
        flowml.sklearn.save_model(classifier, tmp_path / "m", input_example=X[:3])
        loaded = flowml.sklearn.load_model(tmp_path / "m")
    assert type(loaded) is type(classifier)
    np.testing.assert_array_equal(loaded.predict(X), classifier.predict(X))
    conf = mlmodel(tmp_path / "m")["flavors"]
    assert conf["sklearn"]["serialization_format"] == "skops"
    assert conf["sklearn"]["pickled_model"] == "model.skops"
    assert (tmp_path / "m" / "model.skops").is_file()
    assert conf["python_function"]["loader_module"] == "mlflow.sklearn"
    assert conf["python_function"]["model_path"] == "model.skops"


@pytest.mark.parametrize("fmt", ["pickle", "cloudpickle"])
def test_pickle_only_when_asked_and_flagged_at_save_and_load(tmp_path, iris, classifier, fmt):
    X, _ = iris
    with pytest.warns(UnsafeSerializationWarning, match="untrusted source"):
        flowml.sklearn.save_model(classifier, tmp_path / "m", serialization_format=fmt)
    assert mlmodel(tmp_path / "m")["flavors"]["sklearn"]["serialization_format"] == fmt
    with pytest.warns(UnsafeSerializationWarning, match="untrusted source"):
        loaded = flowml.sklearn.load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(X), classifier.predict(X))
    with pytest.warns(UnsafeSerializationWarning):
        flowml.pyfunc.load_model(tmp_path / "m")


def test_the_directory_holds_environment_example_and_signature(tmp_path, iris, classifier):
    import sklearn
    import skops

    X, _ = iris
    flowml.sklearn.save_model(classifier, tmp_path / "m", input_example=X[:2],
                              extra_pip_requirements=["pandas>=2"])
    folder = tmp_path / "m"
    reqs = (folder / "requirements.txt").read_text().split()
    assert reqs == [f"scikit-learn=={sklearn.__version__}", f"skops=={skops.__version__}", "pandas>=2"]
    env = yaml.safe_load((folder / "python_env.yaml").read_text())
    assert env["dependencies"] == ["-r requirements.txt"] and env["python"].count(".") == 2
    conda = yaml.safe_load((folder / "conda.yaml").read_text())
    assert {"pip": reqs} in conda["dependencies"]
    assert json.loads((folder / "input_example.json").read_text()) == {
        "columns": list(X.columns), "data": X[:2].to_numpy().tolist()}
    assert json.loads((folder / "serving_input_example.json").read_text())["dataframe_split"]["columns"] == list(X.columns)
    meta = mlmodel(folder)
    assert meta["saved_input_example_info"] == {"artifact_path": "input_example.json", "type": "dataframe",
                                                "pandas_orient": "split",
                                                "serving_input_path": "serving_input_example.json"}
    inputs = json.loads(meta["signature"]["inputs"])
    assert inputs[0] == {"type": "double", "name": "sepal length (cm)", "required": True}
    assert json.loads(meta["signature"]["outputs"]) == [{"type": "long", "required": True}]
    assert meta["flavors"]["python_function"]["env"] == {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}
    assert meta["model_size_bytes"] > 0 and len(meta["model_uuid"]) == 32


def test_pip_requirements_replace_the_defaults(tmp_path, classifier):
    (tmp_path / "reqs.txt").write_text("# pinned by hand\nscikit-learn\nnumpy<3\n")
    flowml.sklearn.save_model(classifier, tmp_path / "m", pip_requirements=str(tmp_path / "reqs.txt"))
    assert (tmp_path / "m" / "requirements.txt").read_text().split() == ["scikit-learn", "numpy<3"]
    with pytest.raises(ModelError, match="not both"):
        flowml.sklearn.save_model(classifier, tmp_path / "n", pip_requirements=["a"], extra_pip_requirements=["b"])
    assert not (tmp_path / "n").exists()


def test_pyfunc_predict_fn_serves_predict_proba(tmp_path, iris, classifier):
    X, _ = iris
    flowml.sklearn.save_model(classifier, tmp_path / "m", pyfunc_predict_fn="predict_proba", input_example=X[:3])
    model = flowml.pyfunc.load_model(tmp_path / "m")
    np.testing.assert_allclose(model.predict(X[:5]), classifier.predict_proba(X[:5]))
    outputs = json.loads(mlmodel(tmp_path / "m")["signature"]["outputs"])
    assert outputs == [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}]


def test_a_path_in_the_way_is_refused_and_a_failed_save_leaves_nothing(tmp_path, classifier):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(ModelError, match="already exists"):
        flowml.sklearn.save_model(classifier, tmp_path / "taken")
    with pytest.raises(ModelError, match="serialization_format must be one of skops, pickle, cloudpickle"):
        flowml.sklearn.save_model(classifier, tmp_path / "bad", serialization_format="joblib")
    with pytest.raises(ModelError, match="code_paths"):
        flowml.sklearn.save_model(classifier, tmp_path / "bad", code_paths=[str(tmp_path / "missing.py")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no staging folder left behind


class Doubler:
    """A transformer skops does not trust by default."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X * 2


def test_untrusted_types_are_refused_unless_trusted(tmp_path, iris):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X, y = iris
    pipe = make_pipeline(Doubler(), LogisticRegression(max_iter=500)).fit(X.to_numpy(), y)
    with pytest.raises(ModelError, match=f"{__name__}.Doubler.*skops_trusted_types"):
        flowml.sklearn.save_model(pipe, tmp_path / "m")
    assert not (tmp_path / "m").exists()
    trusted = [f"{__name__}.Doubler"]
    flowml.sklearn.save_model(pipe, tmp_path / "m", skops_trusted_types=trusted)
    assert mlmodel(tmp_path / "m")["flavors"]["sklearn"]["skops_trusted_types"] == trusted
    # the file's own list names a class outside sklearn/numpy/scipy: only the caller may trust it
    for load in (flowml.sklearn.load_model, flowml.pyfunc.load_model):
        with pytest.raises(ModelError, match=f"not scikit-learn, numpy or scipy classes: {__name__}.Doubler"):
            load(tmp_path / "m")
    loaded = flowml.sklearn.load_model(tmp_path / "m", skops_trusted_types=trusted)
    np.testing.assert_array_equal(loaded.predict(X.to_numpy()), pipe.predict(X.to_numpy()))
    served = flowml.pyfunc.load_model(tmp_path / "m", model_config={"skops_trusted_types": trusted})
    np.testing.assert_array_equal(served.predict(X.to_numpy()), pipe.predict(X.to_numpy()))
    with pytest.raises(ModelError, match="untrusted types"):  # the caller's own list wins over the file's
        flowml.sklearn.load_model(tmp_path / "m", skops_trusted_types=[])


def test_a_forest_loads_with_the_library_types_its_mlmodel_lists(tmp_path, iris):
    from sklearn.ensemble import RandomForestClassifier

    X, y = iris
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    flowml.sklearn.save_model(forest, tmp_path / "m", skops_trusted_types=["sklearn.tree._tree.Tree"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(flowml.pyfunc.load_model(tmp_path / "m").predict(X), forest.predict(X))


@pytest.mark.parametrize("listed", [["os.system"], ["posix.system"], ["numpy.load"], ["sklearn.tree._tree.Tree",
                                                                                       "builtins.eval"]])
def test_an_mlmodel_cannot_whitelist_dangerous_types(tmp_path, classifier, listed):
    flowml.sklearn.save_model(classifier, tmp_path / "m")
    doc = mlmodel(tmp_path / "m")
    doc["flavors"]["sklearn"]["skops_trusted_types"] = listed
    (tmp_path / "m" / "MLmodel").write_text(yaml.safe_dump(doc))
    with pytest.raises(ModelError, match=f"not scikit-learn, numpy or scipy classes: {listed[-1]};"):
        flowml.pyfunc.load_model(tmp_path / "m")


def test_loading_a_directory_without_the_flavor_says_so(tmp_path):
    import flowml.models.pyfunc as pyfunc

    class Echo(flowml.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    pyfunc.save_model(tmp_path / "m", python_model=Echo())
    with pytest.raises(ModelError, match="has no 'sklearn' flavor .*python_function"):
        flowml.sklearn.load_model(tmp_path / "m")
    with pytest.raises(ModelError, match="no model at .*nothing: no such directory"):
        flowml.sklearn.load_model(tmp_path / "nothing")


def test_loading_a_skops_model_does_not_import_torch(tmp_path, iris, classifier):
    """skops's start-up walk of scikit-learn would import torch (installed here): a second and
    260 MB per scoring worker. The model loads and predicts without it, and torch still imports."""
    import subprocess
    import sys

    pytest.importorskip("torch")
    X, _ = iris
    flowml.sklearn.save_model(classifier, str(tmp_path / "m"), input_example=X[:3])
    code = ("import sys, flowml.pyfunc, pandas as pd\n"
            f"model = flowml.pyfunc.load_model({str(tmp_path / 'm')!r})\n"
            f"print(list(model.predict(pd.DataFrame({X[:2].to_dict('list')!r}))))\n"
            "print('torch' in sys.modules)\n"
            "import sklearn.externals.array_api_compat.torch, torch\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    predictions, torch_loaded = out.stdout.splitlines()
    assert predictions == str(list(classifier.predict(X[:2]))) and torch_loaded == "False"
