"""A pipeline that ends in register: and deploy:, run end to end through the `flowml` CLI:
train -> evaluate -> register (when: on a metric) -> deploy (local)."""

from __future__ import annotations

import httpx
import pytest

TRAIN = """\
import pandas as pd
from sklearn.linear_model import LinearRegression
import flowml.sklearn

df = pd.read_csv("data/train.csv")
X = df[["x"]].astype(float)
flowml.sklearn.save_model(LinearRegression().fit(X, df["y"]), "models/best", input_example=X[:2])
"""
EVALUATE = """\
import json
import pandas as pd
import flowml.pyfunc

df = pd.read_csv("data/train.csv")
predicted = flowml.pyfunc.load_model("models/best").predict(df[["x"]].astype(float))
json.dump({"rmse": float(((predicted - df["y"]) ** 2).mean() ** 0.5)}, open("metrics.json", "w"))
"""
PIPELINE = """\
name: wine
steps:
  train:
    run: python train.py
    inputs: [data/train.csv]
    outputs: [models/best/]
  evaluate:
    run: python evaluate.py
    inputs: [models/best/, data/train.csv]
    metrics: metrics.json
  register:
    register: {model: models/best/, name: wine, alias: candidate}
    when: ${steps.evaluate.metrics.rmse} < 0.8
  deploy:
    deploy: {model: "models:/wine@candidate", target: local}
"""


def _data(project, slope: int) -> None:
    project.write("data/train.csv", "x,y\n" + "".join(f"{i},{slope * i}\n" for i in range(20)))


def _predict(url: str) -> tuple[float, str]:
    reply = httpx.post(url + "/invocations", json={"dataframe_split": {"columns": ["x"], "data": [[10.0]]}}, timeout=10)
    assert reply.status_code == 200, reply.text
    return round(reply.json()["predictions"][0], 6), reply.headers["x-flowml-model-version"]


@pytest.fixture
def wine(project):
    project.write("train.py", TRAIN)
    project.write("evaluate.py", EVALUATE)
    project.pipeline(PIPELINE)
    _data(project, 2)
    yield project
    project.flowml("deployments", "delete", "wine")


def _runs(project) -> int:
    return len(project.flowml("runs", "list", "--json").json["runs"])


@pytest.mark.slow
def test_register_and_deploy_steps_end_to_end(wine):
    project = wine
    first = project.run_json()
    assert first["code"] == 0, first["stderr"]
    assert [s["status"] for s in first["steps"]] == ["ran"] * 4
    deployment = project.flowml("deployments", "status", "wine", "--json").json
    assert (deployment["state"], deployment["version"], deployment["model_uri"]) == ("running", "1", "models:/wine@candidate")
    assert _predict(deployment["url"]) == (20.0, "1")

    # Nothing changed: nothing registered, nothing deployed, nothing recorded.
    runs = _runs(project)
    again = project.run_json()
    assert [s["status"] for s in again["steps"]] == ["cached"] * 4 and again["run_id"] is None
    assert _runs(project) == runs
    versions = project.flowml("registry", "versions", "wine", "--json").json["model_versions"]
    assert [v["version"] for v in versions] == ["1"]

    # New training data: version 2 registered, the alias moved, the deployment serves it.
    _data(project, 3)
    third = project.run_json()
    assert [s["status"] for s in third["steps"]] == ["ran"] * 4, third["stderr"]
    assert "now names version 2" in third["by_name"]["deploy"]["reason"]
    assert _predict(deployment["url"]) == (30.0, "2")
    assert project.flowml("deployments", "status", "wine", "--json").json["version"] == "2"

    # Lineage of version 1: the register step, its runs and key, the digests of train's inputs.
    described = project.flowml("registry", "describe", "wine/1", "--json")
    assert described.code == 0, described.err
    lineage = described.json["model_version"]["flowml_lineage"]
    register_run = first["by_name"]["register"]["run_id"]
    assert lineage["step"] == "register" and lineage["run_id"] == register_run
    assert lineage["pipeline_run_id"] == first["run_id"]
    assert lineage["cache_key"] == first["by_name"]["register"]["cache_key"]
    assert set(lineage["input_digests"]) == {"data/train.csv"}
    assert lineage["content_digest"] == first["by_name"]["train"]["outputs"]["models/best"]
    text = project.flowml("registry", "describe", "wine/1")
    assert lineage["input_digests"]["data/train.csv"] in text.out


@pytest.mark.slow
def test_a_failing_condition_registers_and_deploys_nothing(wine):
    project = wine
    project.pipeline(PIPELINE.replace("< 0.8", "< 0.0"))
    summary = project.run_json()
    assert summary["code"] == 0, summary["stderr"]
    assert {s["name"]: s["status"] for s in summary["steps"]} == {
        "train": "ran", "evaluate": "ran", "register": "skipped", "deploy": "skipped"}
    assert project.flowml("registry", "list", "--json").json["registered_models"] == []
    assert project.flowml("deployments", "list", "--json").json == {"deployments": []}


def test_a_deploy_step_runs_after_the_step_registering_its_model(project):
    project.pipeline("""\
        name: p
        steps:
          deploy:
            deploy: {model: "models:/wine@candidate", port: 5999}
          register:
            register: {model: model/, name: wine}
        """)
    (project.root / "model").mkdir()
    dag = project.flowml("dag")
    assert dag.code == 0, dag.err
    assert "deploy  <- register" in dag.out
    from flowml.spec.expand import expand
    from flowml.spec.load import load_pipeline

    nodes = {n.name: n for n in expand(load_pipeline(str(project.root / "pipeline.yaml")))}
    assert nodes["register"].run == ["flowml", "registry", "register", "model", "--name", "wine"]
    assert nodes["register"].inputs == ["model"]
    assert nodes["deploy"].run == ["flowml", "deployments", "create", "wine", "-m", "models:/wine@candidate",
                                   "--target", "local", "--port", "5999"]
    assert nodes["deploy"].deploy == {"name": "wine", "model": "models:/wine@candidate"}


def test_a_deploy_step_finds_its_register_step_through_params_and_matrix(project):
    project.pipeline("""\
        name: p
        params: {n: w5}
        steps:
          deploy:
            deploy: {model: "models:/${params.n}@c"}
          register:
            register: {model: model/, name: "${params.n}", alias: c}
          other:
            matrix: {m: [a, b]}
            register: {model: model/, name: "x${matrix.m}"}
          deploy_b:
            deploy: {model: "models:/xb/1", name: xb}
        """)
    (project.root / "model").mkdir()
    dag = project.flowml("dag")
    assert dag.code == 0, dag.err
    assert "deploy  <- register" in dag.out
    from flowml.spec.expand import expand
    from flowml.spec.load import load_pipeline

    nodes = {n.name: n for n in expand(load_pipeline(str(project.root / "pipeline.yaml")))}
    assert nodes["deploy"].needs == ["register"]
    assert nodes["deploy_b"].needs == ["other"]


def test_a_cached_register_step_reruns_when_its_version_is_gone(project):
    project.pipeline("""\
        name: p
        steps:
          with_alias:
            register: {model: model/, name: w3, alias: c}
          plain:
            register: {model: model/, name: w4}
        """)
    project.write("model/MLmodel", "flavors: {}\n")
    first = project.run_json()
    assert [s["status"] for s in first["steps"]] == ["ran", "ran"], first["stderr"]
    assert project.run_json()["run_id"] is None  # all cached
    assert project.flowml("registry", "delete", "w3/1").code == 0
    assert project.flowml("registry", "delete", "w4/1").code == 0
    status = {s["name"]: s for s in project.flowml("status", "--json").json}
    assert status["with_alias"]["will_run"] and status["plain"]["will_run"]
    assert "w3" in " ".join(status["with_alias"]["reasons"])
    assert "no longer exists" in " ".join(status["plain"]["reasons"])
    again = project.run_json()
    assert [s["status"] for s in again["steps"]] == ["ran", "ran"], again["stderr"]
    version = project.flowml("registry", "describe", "w3/2", "--json").json["model_version"]
    assert version["aliases"] == ["c"]
    assert project.flowml("registry", "versions", "w4", "--json").json["model_versions"][0]["version"] == "2"
    assert [s["status"] for s in project.run_json()["steps"]] == ["cached", "cached"]
    assert project.flowml("registry", "alias", "w3", "c", "--delete").code == 0  # the alias alone goes
    assert project.flowml("status", "--json").json[0]["will_run"]
