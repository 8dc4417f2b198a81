"""The committed JSON Schema of pipeline.yaml matches the models, and accepts the examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "schemas" / "pipeline.schema.json"
QUICKSTART = REPO / "examples" / "quickstart" / "pipeline.yaml"


def test_committed_schema_does_not_drift(project):
    """Regenerate with: flowml schema -o schemas/pipeline.schema.json"""
    res = project.flowml("schema")
    assert res.code == 0, res.err
    assert COMMITTED.exists(), "schemas/pipeline.schema.json is missing: run flowml schema -o schemas/pipeline.schema.json"
    assert res.out == COMMITTED.read_text(encoding="utf-8"), (
        "schemas/pipeline.schema.json drifted from the models: run flowml schema -o schemas/pipeline.schema.json")


def test_schema_output_file_matches_stdout(project):
    res = project.flowml("schema", "-o", "out.json")
    assert res.code == 0, res.err
    assert project.read("out.json") == COMMITTED.read_text(encoding="utf-8")


def test_schema_describes_the_format():
    schema = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert {"name", "params", "environments", "steps"} <= set(schema["properties"])
    assert "steps" in schema.get("required", [])
    step = next(v for k, v in schema["$defs"].items() if k == "Step")
    assert {"run", "inputs", "outputs", "needs", "matrix", "env", "retries", "timeout", "cache", "metrics", "when",
            "register", "deploy", "project"} <= set(step["properties"])
    assert step.get("additionalProperties") is False


@pytest.fixture(scope="module")
def validator():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(COMMITTED.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_schema_validates_the_quickstart(validator):
    data = yaml.safe_load(QUICKSTART.read_text(encoding="utf-8"))
    errors = [e.message for e in validator.iter_errors(data)]
    assert errors == []


@pytest.mark.parametrize("patch", [
    lambda d: d["steps"]["train"].update(retrys=2),
    lambda d: d.update(step={}),
    lambda d: d["steps"]["train"].update(retries="two"),
    lambda d: d["steps"]["prepare"].update(cache=3),
])
def test_schema_rejects_what_the_loader_rejects(validator, patch):
    data = yaml.safe_load(QUICKSTART.read_text(encoding="utf-8"))
    patch(data)
    assert list(validator.iter_errors(data)), "the schema accepted a pipeline flowml rejects"


def test_committed_openapi_document_does_not_drift(project):
    """Regenerate with: flowml schema --openapi -o schemas/openapi.json"""
    res = project.flowml("schema", "--openapi")
    assert res.code == 0, res.err
    committed = REPO / "schemas" / "openapi.json"
    assert res.out == committed.read_text(encoding="utf-8"), (
        "schemas/openapi.json drifted from the server's routes: run flowml schema --openapi -o schemas/openapi.json")
    paths = json.loads(res.out)["paths"]
    for route in ("/api/2.0/mlflow/runs/log-batch", "/api/2.0/mlflow/experiments/search",
                  "/api/2.0/mlflow/logged-models/{model_id}", "/api/3.0/mlflow/server-info"):
        assert route in paths
