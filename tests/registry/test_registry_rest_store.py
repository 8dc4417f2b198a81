"""flowml's RegistryClient through the REST registry store, against a flowml server in a
subprocess (SQLite and PostgreSQL): the same answers and errors as the SQL store, lineage
over the wire, idempotent registration by content."""

from __future__ import annotations

import pytest

from flowml.errors import TrackingError
from flowml.registry import RegistryClient
from flowml.registry.rest import RestRegistryStore


@pytest.fixture
def rc(backend, monkeypatch):
    from flowml.tracking import stores

    monkeypatch.setattr(stores, "_stores", {})
    client = RegistryClient(backend.url)
    yield client
    client.store.tracking.close()


def _code(call, *args, **kwargs) -> str:
    with pytest.raises(TrackingError) as info:
        call(*args, **kwargs)
    return info.value.error_code


def test_register_with_lineage_alias_and_idempotency(rc, tmp_path, new_name):
    assert isinstance(rc.store, RestRegistryStore)
    name = new_name()
    source = f"mlflow-artifacts:/0/{name}/artifacts/model"
    lineage = {"step": "train", "run_id": "a" * 32, "pipeline_run_id": "b" * 32, "cache_key": "c" * 64,
               "input_digests": {"data/train.csv": "d1"}, "content_digest": "e" * 64}
    first = rc.register(source, name, lineage=lineage, alias="candidate", tags={"t": "1"})
    assert (first.version, first.aliases, first.tags, first.run_id) == (1, ["candidate"], {"t": "1"}, "a" * 32)
    assert first.lineage.input_digests == {"data/train.csv": "d1"} and first.lineage.content_digest == "e" * 64
    assert first.source == source
    again = rc.register(source, name, lineage=lineage)  # same content: the same version
    assert again.version == 1 and rc.search_model_versions(f"name = '{name}'") == [again]
    second = rc.register(source + "2", name, alias="candidate", content_digest="f" * 64)  # new content
    assert second.version == 2 and second.aliases == ["candidate"]
    assert rc.get_model_version(name, 1).aliases == []
    assert rc.get_model_version(name, 1).lineage == first.lineage  # lineage round trip over HTTP
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")
    with pytest.raises(TrackingError, match="outside the server's artifacts destination"):
        rc.register(str(model), name)  # a path only this client has


def test_resolve_every_uri_form(rc, new_name):
    name = new_name()
    for i in range(3):
        rc.register(f"mlflow-artifacts:/bucket/{name}/{i}", name, content_digest=f"digest-{i}")
    rc.set_registered_model_alias(name, "production", 2)
    rc.transition_model_version_stage(name, 1, "Staging")
    assert rc.resolve(f"models:/{name}/3").version == 3
    ordered = rc.search_model_versions(f"name = '{name}'", order_by=["version_number ASC"], max_results=2)
    assert [v.version for v in ordered] == [1, 2] and ordered.token  # a list in a GET query string
    assert rc.resolve(f"models:/{name}@production").version == 2
    assert rc.resolve(f"models:/{name}/latest").version == 3
    assert rc.resolve(f"models:/{name}/staging").version == 1
    assert _code(rc.resolve, f"models:/{name}/Production") == "RESOURCE_DOES_NOT_EXIST"
    assert _code(rc.resolve, f"models:/{name}@missing") == "INVALID_PARAMETER_VALUE"  # as MLflow answers
    assert _code(rc.resolve, f"models:/{name}/9") == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(TrackingError, match="names a logged model"):
        rc.resolve("models:/m-0123")
    assert rc.get_model_version_download_uri(name, 2) == f"mlflow-artifacts:/bucket/{name}/1"


def test_registry_calls_through_the_server(rc, new_name):
    name = new_name()
    made = rc.create_registered_model(name, {"team": "fraud"}, "about")
    assert (made.tags, made.description) == ({"team": "fraud"}, "about")
    assert _code(rc.create_registered_model, name) == "RESOURCE_ALREADY_EXISTS"
    rc.create_model_version(name, "mlflow-artifacts:/b/1")
    rc.update_registered_model(name, "changed")
    rc.update_model_version(name, 1, "v1")
    rc.set_registered_model_tag(name, "owner", "ann")
    rc.delete_registered_model_tag(name, "team")
    rc.set_model_version_tag(name, 1, "k", "v")
    rc.delete_model_version_tag(name, 1, "k")
    got = rc.get_registered_model(name)
    assert (got.description, got.tags, got.latest_versions[0].description) == ("changed", {"owner": "ann"}, "v1")
    page = rc.search_registered_models(f"name = '{name}'", max_results=1)
    assert [m.name for m in page] == [name] and page.token is None
    assert [v.current_stage for v in rc.get_latest_versions(name)] == ["None"]
    renamed = rc.rename_registered_model(name, name + "-2")
    assert renamed.name == name + "-2"
    rc.delete_model_version(name + "-2", 1)
    assert _code(rc.get_model_version, name + "-2", 1) == "RESOURCE_DOES_NOT_EXIST"
    rc.delete_registered_model(name + "-2")
    assert _code(rc.get_registered_model, name + "-2") == "RESOURCE_DOES_NOT_EXIST"


def test_bad_input_fails_before_the_network(rc):
    rc.store.tracking.url = "http://127.0.0.1:9"  # nothing listens there: a request would fail otherwise
    for call, args, kwargs, message in [(rc.create_registered_model, ("a/b",), {}, "cannot contain"),
                                        (rc.set_registered_model_alias, ("m", "v1", 1), {}, "reserved"),
                                        (rc.get_model_version, ("m", "x"), {}, "whole number"),
                                        (rc.register, ("s3://b/m", "m"), {"lineage": {"stepp": "x"}}, "unknown lineage"),
                                        (rc.register, ("s3://b/m", "m"), {"alias": "latest"}, "reserved")]:
        with pytest.raises(TrackingError, match=message):
            call(*args, **kwargs)
