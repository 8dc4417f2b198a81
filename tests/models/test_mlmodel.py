"""The MLmodel file: written as MLflow writes it, valid against the committed JSON Schema (which
must not drift from the code), keys of other writers kept, bad files refused clearly."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

import flowml.sklearn
from flowml.models.errors import ModelError
from flowml.models.mlmodel import MLMODEL_SCHEMA, Model, mlmodel_schema_text

COMMITTED = Path(__file__).parent.parent.parent / "schemas" / "mlmodel.schema.json"


def test_committed_schema_does_not_drift():
    """Regenerate with: flowml schema --mlmodel -o schemas/mlmodel.schema.json"""
    assert COMMITTED.read_text() == mlmodel_schema_text(), (
        "schemas/mlmodel.schema.json drifted: run flowml schema --mlmodel -o schemas/mlmodel.schema.json")


def test_the_cli_prints_it(project):
    res = project.flowml("schema", "--mlmodel")
    assert res.code == 0 and json.loads(res.out) == MLMODEL_SCHEMA
    res = project.flowml("schema", "--mlmodel", "--openapi")
    assert res.code == 2 and "give one of them" in res.err and "Traceback" not in res.err


def test_flowml_and_mlflow_mlmodels_are_valid(tmp_path, iris, classifier):
    mlflow = pytest.importorskip("mlflow.sklearn")
    X, _ = iris
    flowml.sklearn.save_model(classifier, tmp_path / "ours", input_example=X[:2])
    mlflow.save_model(classifier, str(tmp_path / "theirs"), input_example=X[:2])
    for name in ("ours", "theirs"):
        jsonschema.validate(yaml.safe_load((tmp_path / name / "MLmodel").read_text()), MLMODEL_SCHEMA)
    jsonschema.Draft202012Validator.check_schema(MLMODEL_SCHEMA)


def test_keys_of_other_writers_round_trip(tmp_path):
    entry = {"flavors": {"python_function": {"loader_module": "x"}}, "prompts": ["p"], "resources": {"a": 1},
             "mlflow_version": "3.17.2", "model_uuid": "u", "utc_time_created": "2026-01-01 00:00:00.000000"}
    Model.from_dict(entry).save(str(tmp_path / "MLmodel"))
    back = yaml.safe_load((tmp_path / "MLmodel").read_text())
    assert {k: back[k] for k in entry} == entry


@pytest.mark.parametrize("text, message", [
    ("flavors: [1, 2]", "'flavors' must map flavor names"),
    ("- a list", "an MLmodel file is a YAML mapping"),
    ("flavors: {a: {}}\n  bad: : indent", "not valid YAML"),
    ("flavors: {}\nsignature: {inputs: '[{\"name\": \"x\"}]'}", "signature: a signature entry is an object with a 'type'"),
])
def test_bad_files_are_refused_with_where_and_what(tmp_path, text, message):
    (tmp_path / "MLmodel").write_text(text)
    with pytest.raises(ModelError, match=message) as caught:
        Model.load(str(tmp_path))
    assert caught.value.exit_code == 2
