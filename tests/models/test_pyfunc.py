"""Custom PythonModels (artifacts, model_config, code paths) and model URIs: what load_model
accepts and how it refuses what it cannot load."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
import yaml

import flowml.pyfunc
from flowml.models.errors import ModelError, UnsafeSerializationWarning
from flowml.models.uri import download_model


class Lookup(flowml.pyfunc.PythonModel):
    """Reads a table artifact and a helper module shipped in code_paths."""

    def load_context(self, context):
        import helper_for_lookup

        self.table = pd.read_csv(context.artifacts["table"]).set_index("key")["value"].to_dict()
        self.suffix = helper_for_lookup.SUFFIX + context.model_config.get("extra", "")

    def predict(self, context, model_input, params=None):
        return [f"{self.table.get(k, '?')}{self.suffix}" for k in model_input["key"]]


class Bare(flowml.pyfunc.PythonModel):
    def predict(self, model_input):  # MLflow 3 lets predict leave out context and params
        return len(model_input)


def test_custom_model_with_artifacts_config_and_code(tmp_path, monkeypatch):
    (tmp_path / "table.csv").write_text("key,value\na,1\nb,2\n")
    (tmp_path / "helper_for_lookup.py").write_text("SUFFIX = '!'\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # importable while saving ...
    flowml.pyfunc.save_model(tmp_path / "m", python_model=Lookup(), artifacts={"table": str(tmp_path / "table.csv")},
                             code_paths=[str(tmp_path / "helper_for_lookup.py")], model_config={"extra": "?"},
                             input_example=pd.DataFrame({"key": ["a"]}))
    monkeypatch.delitem(sys.modules, "helper_for_lookup")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])  # ... and from code/ at load
    (tmp_path / "table.csv").unlink()  # the model holds its own copy
    model = flowml.pyfunc.load_model(tmp_path / "m")
    assert model.predict(pd.DataFrame({"key": ["b", "a", "z"]})) == ["2!?", "1!?", "?!?"]
    assert isinstance(model.unwrap_python_model(), Lookup)
    assert model.metadata.get_input_schema().to_dict() == [{"type": "string", "name": "key", "required": True}]
    assert flowml.pyfunc.load_model(tmp_path / "m", model_config={"extra": "#"}).predict(
        pd.DataFrame({"key": ["a"]})) == ["1!#"]
    conf = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())["flavors"]["python_function"]
    assert conf["artifacts"]["table"]["path"] == "artifacts/table.csv" and conf["code"] == "code"


def test_predict_without_context_or_params(tmp_path):
    flowml.pyfunc.save_model(tmp_path / "m", python_model=Bare())
    assert flowml.pyfunc.load_model(tmp_path / "m").predict([1, 2, 3]) == 3


def test_loading_a_custom_model_warns_that_it_unpickles(tmp_path):
    flowml.pyfunc.save_model(tmp_path / "m", python_model=Bare())
    with pytest.warns(UnsafeSerializationWarning, match=r"custom model .*python_model.pkl.*arbitrary code") as caught:
        flowml.pyfunc.load_model(tmp_path / "m")
    assert caught[0].filename == __file__  # points at the caller's load_model line


def test_unwrap_refuses_a_model_that_is_not_custom(tmp_path, classifier):
    import flowml.sklearn

    flowml.sklearn.save_model(classifier, tmp_path / "m")
    model = flowml.pyfunc.load_model(tmp_path / "m")
    assert model.get_raw_model() is not None
    with pytest.raises(ModelError, match="not a custom PythonModel"):
        model.unwrap_python_model()


def test_save_refusals_leave_nothing(tmp_path):
    with pytest.raises(ModelError, match="needs python_model"):
        flowml.pyfunc.save_model(tmp_path / "a", python_model=None)
    with pytest.raises(ModelError, match="artifacts: 'x' names .*missing.csv, which does not exist"):
        flowml.pyfunc.save_model(tmp_path / "b", python_model=Bare(), artifacts={"x": str(tmp_path / "missing.csv")})
    assert not list(tmp_path.iterdir())


def test_a_loader_module_that_is_not_installed_is_named(tmp_path):
    flowml.pyfunc.save_model(tmp_path / "m", python_model=Bare())
    text = (tmp_path / "m" / "MLmodel").read_text().replace("loader_module: flowml.models.pyfunc",
                                                            "loader_module: mlflow.not_a_flavor")
    (tmp_path / "m" / "MLmodel").write_text(text)
    with pytest.raises(ModelError, match="loaded by 'mlflow.not_a_flavor', which cannot be imported here"):
        flowml.pyfunc.load_model(tmp_path / "m")


def test_uris_local_and_refused(tmp_path, fl):
    flowml.pyfunc.save_model(tmp_path / "m", python_model=Bare())
    assert download_model(str(tmp_path / "m")) == str(tmp_path / "m")  # used in place: nothing copied
    assert download_model(f"file://{tmp_path / 'm'}") == str(tmp_path / "m")
    copied = download_model(str(tmp_path / "m"), dst=str(tmp_path / "copy"))
    assert copied == str(tmp_path / "copy" / "m") and (tmp_path / "copy" / "m" / "MLmodel").is_file()
    for uri, message in [
        ("s3://bucket/model", "unknown scheme 's3:'"),
        ("runs:/abc", r"expected runs:/<run_id>/<path>"),
        ("models:/", "expected models:/<name>/<version>"),
        ("models:/m-0000", "no logged model with id 'm-0000'"),
        ("models:/nobody/1", "models:/nobody/1"),
        (str(tmp_path), "no MLmodel in"),
    ]:
        with pytest.raises(ModelError, match=message):
            download_model(uri)
    with fl.start_run() as run:
        pass
    with pytest.raises(ModelError, match=f"run {run.info.run_id} has no model at 'model'"):
        download_model(f"runs:/{run.info.run_id}/model")
