"""MLflow's own client (mlflow-skinny 3) against the registry routes of a flowml server in a
subprocess, on SQLite and PostgreSQL (``backend``)."""

from __future__ import annotations

import httpx
import pytest

mlflow = pytest.importorskip("mlflow")
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402


@pytest.fixture
def client(backend, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", backend.url)
    mlflow.set_tracking_uri(backend.url)
    mlflow.set_registry_uri(backend.url)
    yield MlflowClient(backend.url)
    while mlflow.active_run():
        mlflow.end_run()


def _error(call, *args, **kwargs) -> MlflowException:
    with pytest.raises(MlflowException) as info:
        call(*args, **kwargs)
    return info.value


def test_registered_models_versions_search_and_tags(client, new_name):
    name = new_name()
    made = client.create_registered_model(name, tags={"team": "fraud"}, description="wine quality")
    assert (made.name, made.tags, made.description) == (name, {"team": "fraud"}, "wine quality")
    assert _error(client.create_registered_model, name).error_code == "RESOURCE_ALREADY_EXISTS"
    first = client.create_model_version(name, "mlflow-artifacts:/bucket/wine/1", tags={"algo": "lr"}, description="v1")
    second = client.create_model_version(name, "mlflow-artifacts:/bucket/wine/2")
    assert (first.version, second.version) == ("1", "2")  # MLflow's entities keep versions as strings
    assert (first.status, first.current_stage, first.tags, first.description) == ("READY", "None", {"algo": "lr"}, "v1")
    found = client.search_registered_models(filter_string=f"name = '{name}'")
    assert [m.name for m in found] == [name] and found[0].tags == {"team": "fraud"}
    assert len(client.search_registered_models(filter_string=f"name LIKE '{name[:-3]}%' and tags.team = 'fraud'")) == 1
    twin = client.create_registered_model(name + "-twin").name
    by_name = client.search_registered_models(f"name LIKE '{name}%'", order_by=["name DESC"], max_results=1)
    assert [m.name for m in by_name] == [twin] and by_name.token
    rest = client.search_registered_models(f"name LIKE '{name}%'", order_by=["name DESC"], page_token=by_name.token)
    assert [m.name for m in rest] == [name] and not rest.token
    versions = client.search_model_versions(f"name = '{name}'")
    assert sorted(v.version for v in versions) == ["1", "2"]
    assert [v.version for v in client.search_model_versions(f"name = '{name}' and tags.algo = 'lr'")] == ["1"]
    client.update_registered_model(name, description="changed")
    client.update_model_version(name, "2", description="second")
    client.set_registered_model_tag(name, "owner", "ann")
    client.set_model_version_tag(name, "2", "checked", "yes")
    client.delete_registered_model_tag(name, "team")
    client.delete_model_version_tag(name, "1", "algo")
    model = client.get_registered_model(name)
    assert model.description == "changed" and model.tags == {"owner": "ann"}
    assert client.get_model_version(name, "2").tags == {"checked": "yes"}
    assert client.get_model_version(name, "1").tags == {}
    client.rename_registered_model(name, name + "-x")
    assert client.get_model_version(name + "-x", "2").description == "second"
    assert _error(client.get_registered_model, name).error_code == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.filterwarnings("ignore:``mlflow.tracking.client.MlflowClient:FutureWarning")  # stages: deprecated
def test_aliases_stages_download_uri_and_delete(client, new_name):
    name = new_name()
    client.create_registered_model(name)
    for i in range(3):
        client.create_model_version(name, f"mlflow-artifacts:/bucket/m/{i + 1}")
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "champion", 2)  # moves
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    assert client.get_registered_model(name).aliases == {"champion": "2"}
    assert client.get_model_version(name, "2").aliases == ["champion"]
    client.delete_registered_model_alias(name, "champion")
    client.delete_registered_model_alias(name, "champion")  # no such alias: deleted silently, as MLflow does
    assert client.get_registered_model(name).aliases == {}
    assert _error(client.set_registered_model_alias, name, "latest", "1").error_code == "INVALID_PARAMETER_VALUE"
    staged = client.transition_model_version_stage(name, "1", "Production")
    assert staged.current_stage == "Production"
    client.transition_model_version_stage(name, "3", "production", archive_existing_versions=True)
    assert client.get_model_version(name, "1").current_stage == "Archived"
    assert [v.version for v in client.get_latest_versions(name, stages=["Production"])] == ["3"]
    assert client.get_model_version_download_uri(name, "2") == "mlflow-artifacts:/bucket/m/2"
    client.delete_model_version(name, "2")
    assert _error(client.get_model_version, name, "2").error_code == "RESOURCE_DOES_NOT_EXIST"
    client.delete_registered_model(name)
    assert _error(client.get_registered_model, name).error_code == "RESOURCE_DOES_NOT_EXIST"


def test_errors_are_mlflow_codes_with_mlflow_statuses(client, backend, new_name):
    assert _error(client.get_registered_model, new_name()).error_code == "RESOURCE_DOES_NOT_EXIST"
    assert _error(client.create_registered_model, "a/b").error_code == "INVALID_PARAMETER_VALUE"
    api = backend.url + "/api/2.0/mlflow"
    missing = httpx.get(f"{api}/registered-models/get", params={"name": new_name()})
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    name = new_name()
    httpx.post(f"{api}/registered-models/create", json={"name": name}).raise_for_status()
    taken = httpx.post(f"{api}/registered-models/create", json={"name": name})
    assert taken.status_code == 400 and taken.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    bad = httpx.get(f"{api}/model-versions/get", params={"name": name, "version": "one"})
    assert bad.status_code == 400 and "whole number" in bad.json()["message"]
    no_source = httpx.post(f"{api}/model-versions/create", json={"name": name})
    assert no_source.status_code == 400 and "'source'" in no_source.json()["message"]
    assert httpx.post(f"{backend.url}/ajax-api/2.0/mlflow/registered-models/get-latest-versions",
                      json={"name": name}).json() == {"model_versions": []}


def test_register_model_from_a_run(client, tmp_path, new_name):
    mlflow.set_experiment("registry-runs")
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text("flavors: {}\n")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(model_dir), "model")
    name = new_name()
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    assert version.version == "1" and version.run_id == run.info.run_id
    assert version.source.endswith(f"{run.info.run_id}/artifacts/model")
    again = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)  # the model exists: a new version
    assert again.version == "2"
    uri = client.get_model_version_download_uri(name, "1")
    assert uri == version.source


@pytest.mark.slow  # imports scikit-learn and skops, saves and loads a model: about 7 s
def test_sklearn_log_model_registers_a_logged_model(client, backend, new_name):
    from sklearn.linear_model import LogisticRegression

    X = [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
    mlflow.set_experiment("registry-sklearn")
    name = new_name()
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(LogisticRegression().fit(X, [0, 1, 1, 0]), name="model",
                                        registered_model_name=name)
    assert str(info.registered_model_version) == "1"
    version = client.get_model_version(name, "1")
    assert version.source == f"models:/{info.model_id}" and version.run_id == run.info.run_id
    wire = httpx.get(f"{backend.url}/api/2.0/mlflow/model-versions/get", params={"name": name, "version": "1"})
    assert wire.json()["model_version"]["model_id"] == info.model_id  # MLflow's entity does not read it back
    logged = client.get_logged_model(info.model_id)
    assert client.get_model_version_download_uri(name, "1") == logged.artifact_location
    assert '"version": "1"' in logged.tags["mlflow.modelVersions"]  # MLflow's own link back
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/1")
    assert list(loaded.predict([[0.0, 1.0]])) == [0]
    # MLflow's client finds a run's logged model by searching logged models by name.
    again = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    assert again.version == "2" and again.run_id == run.info.run_id
    assert client.get_model_version_download_uri(name, "2") == logged.artifact_location
