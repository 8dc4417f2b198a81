"""Signature inference and schema enforcement at predict time, through PyFuncModel.predict:
the error names the column (tensor, param), the expected and the found type."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import flowml.pyfunc
from flowml.models.errors import ModelInputError
from flowml.models.signature import ModelSignature, Schema, infer_signature


class Echo(flowml.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return {"input": model_input, "params": params}


def saved(tmp_path, example, **kw):
    flowml.pyfunc.save_model(tmp_path / "m", python_model=Echo(), input_example=example, signature=False, **kw)
    return flowml.pyfunc.load_model(tmp_path / "m")


@pytest.fixture
def table_model(tmp_path):
    frame = pd.DataFrame({"x": [1.5], "n": np.array([1], dtype="int32"), "name": ["a"], "flag": [True],
                          "when": pd.to_datetime(["2024-01-01"])})
    flowml.pyfunc.save_model(tmp_path / "m", python_model=Echo(),
                             signature=infer_signature(frame, params={"k": 3, "scale": 0.5}))
    return flowml.pyfunc.load_model(tmp_path / "m")


def test_inference_names_mlflow_types():
    frame = pd.DataFrame({"d": [1.0], "f": np.array([1.0], dtype="float32"), "l": [1], "i": np.array([1], "int16"),
                          "b": [True], "s": ["x"], "bin": [b"\x00"], "t": pd.to_datetime(["2024-01-01"])})
    types = {c["name"]: c["type"] for c in infer_signature(frame).inputs.to_dict()}
    assert types == {"d": "double", "f": "float", "l": "long", "i": "integer", "b": "boolean", "s": "string",
                     "bin": "binary", "t": "datetime"}
    arrays = infer_signature({"img": np.zeros((2, 8, 8), "uint8"), "meta": np.zeros((2, 3))}).inputs.to_dict()
    assert arrays == [{"type": "tensor", "tensor-spec": {"dtype": "uint8", "shape": [-1, 8, 8]}, "name": "img"},
                      {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}, "name": "meta"}]
    signature = ModelSignature.from_dict(infer_signature(frame, params={"k": [1, 2]}).to_dict())
    assert [p.to_dict() for p in signature.params] == [{"name": "k", "default": [1, 2], "shape": [-1], "type": "long"}]


def test_safe_conversions_pass_and_extra_columns_go(table_model):
    given = pd.DataFrame({"extra": [0], "when": ["2024-02-03"], "flag": [False], "name": ["b"],
                          "n": np.array([7], dtype="int8"), "x": np.array([2], dtype="int32")})
    seen = table_model.predict(given)["input"]
    assert list(seen.columns) == ["x", "n", "name", "flag", "when"]  # the schema's order, 'extra' dropped
    assert str(seen["x"].dtype) == "float64" and str(seen["n"].dtype) == "int32"
    assert str(seen["when"].dtype).startswith("datetime64")


@pytest.mark.parametrize("column, value, message", [
    ("x", ["1.5"], "column 'x': expected double, found (object|str|string)"),
    ("n", [1.5], "column 'n': expected integer, found float64"),
    ("n", np.array([2**40]), "column 'n': expected integer, found int64"),
    ("name", [3], "column 'name': expected string, found int64"),
    ("flag", [1.0], "column 'flag': expected boolean, found float64"),
])
def test_unsafe_conversions_are_refused(table_model, column, value, message):
    row = {"x": [1.0], "n": np.array([1], "int32"), "name": ["a"], "flag": [True],
           "when": pd.to_datetime(["2024-01-01"])}
    row[column] = value
    with pytest.raises(ModelInputError, match=message) as caught:
        table_model.predict(pd.DataFrame(row))
    assert caught.value.exit_code == 2


def test_missing_columns_are_named_with_their_types(table_model):
    with pytest.raises(ModelInputError, match=r"missing input columns: 'name' \(string\), 'flag' \(boolean\)"):
        table_model.predict(pd.DataFrame({"x": [1.0], "n": [1], "when": ["2024-01-01"]}))


def test_other_input_shapes_become_tables(table_model):
    records = [{"x": 1.0, "n": 1, "name": "a", "flag": True, "when": "2024-01-01"}]
    assert table_model.predict(records)["input"].shape == (1, 5)
    columns = {"x": [1.0, 2.0], "n": [1, 2], "name": ["a", "b"], "flag": [True, False], "when": ["2024-01-01"] * 2}
    assert table_model.predict(columns)["input"].shape == (2, 5)


def test_params_take_defaults_convert_and_refuse(table_model):
    assert table_model.predict(pd.DataFrame({"x": [1.0], "n": [1], "name": ["a"], "flag": [True],
                                             "when": ["2024-01-01"]}))["params"] == {"k": 3, "scale": 0.5}
    row = pd.DataFrame({"x": [1.0], "n": [1], "name": ["a"], "flag": [True], "when": ["2024-01-01"]})
    assert table_model.predict(row, params={"scale": 2})["params"] == {"k": 3, "scale": 2.0}
    with pytest.raises(ModelInputError, match="param 'k': expected long, found str '3'"):
        table_model.predict(row, params={"k": "3"})
    with pytest.warns(UserWarning, match="no param 'nope'"):
        table_model.predict(row, params={"nope": 1})


def test_tensors_check_dtype_and_shape(tmp_path):
    model = saved(tmp_path, None)
    model.metadata.signature = ModelSignature(Schema.from_json(
        '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}]'))
    assert model.predict(np.ones((4, 3), dtype="int16"))["input"].dtype == np.float64  # widened
    with pytest.raises(ModelInputError, match=r"input: expected shape \[-1, 3\], found \[4, 2\]"):
        model.predict(np.ones((4, 2)))
    with pytest.raises(ModelInputError, match="input: expected dtype float64, found <U1"):
        model.predict(np.array([["a", "b", "c"]]))
    model.metadata.signature = ModelSignature(Schema.from_json(
        '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}, "name": "ids"}]'))
    assert model.predict({"ids": np.array([1, 2])})["input"]["ids"].tolist() == [1, 2]
    with pytest.raises(ModelInputError, match="tensor 'ids': expected dtype int64, found float64"):
        model.predict({"ids": np.array([1.5])})
    with pytest.raises(ModelInputError, match="missing input tensor: ids"):
        model.predict({"other": np.array([1])})
