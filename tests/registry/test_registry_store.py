"""The SQL registry store's semantics (MLflow's), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from flowml.errors import TrackingError
from flowml.registry.entities import Lineage, Stage

NOT_FOUND, EXISTS, INVALID = "RESOURCE_DOES_NOT_EXIST", "RESOURCE_ALREADY_EXISTS", "INVALID_PARAMETER_VALUE"


def _code(call, *args) -> str:
    with pytest.raises(TrackingError) as info:
        call(*args)
    return info.value.error_code


def test_registered_model_life(new_name, registry):
    name = new_name()
    made = registry.create_registered_model(name, {"team": "fraud"}, "first")
    assert (made.name, made.tags, made.description, made.aliases, made.latest_versions) == \
        (name, {"team": "fraud"}, "first", {}, [])
    assert made.creation_timestamp == made.last_updated_timestamp > 0
    assert _code(registry.create_registered_model, name) == EXISTS
    updated = registry.update_registered_model(name, "second")
    assert updated.description == "second" and updated.last_updated_timestamp >= made.last_updated_timestamp
    registry.create_model_version(name, "/m/1", tags={"k": "v"})
    registry.set_registered_model_alias(name, "prod", 1)
    renamed = registry.rename_registered_model(name, name + "-new")
    assert renamed.aliases == {"prod": 1} and renamed.tags == {"team": "fraud"}
    moved = registry.get_model_version(name + "-new", 1)
    assert moved.tags == {"k": "v"} and moved.aliases == ["prod"]
    assert _code(registry.get_registered_model, name) == NOT_FOUND
    other = new_name()
    registry.create_registered_model(other)
    assert _code(registry.rename_registered_model, other, name + "-new") == EXISTS
    registry.delete_registered_model(name + "-new")
    assert _code(registry.get_registered_model, name + "-new") == NOT_FOUND
    registry.create_registered_model(name + "-new")  # the name is free again, and starts at version 1
    assert registry.create_model_version(name + "-new", "/m/x").version == 1
    assert registry.search_model_versions(f"name = '{name}-new'")[0][0].tags == {}


def test_an_unknown_model_suggests_a_close_name(registry, name):
    with pytest.raises(TrackingError) as info:
        registry.get_registered_model(name[:-1] + "x")
    assert info.value.error_code == NOT_FOUND and f"did you mean '{name}'" in str(info.value)


def test_versions_count_from_one_and_deleted_numbers_are_not_reused(new_name, registry, name):
    numbers = [registry.create_model_version(name, f"/m/{i}").version for i in range(3)]
    assert numbers == [1, 2, 3]
    registry.delete_model_version(name, 3)
    assert _code(registry.get_model_version, name, 3) == NOT_FOUND
    assert registry.create_model_version(name, "/m/again").version == 4
    assert [v.version for v in registry.search_model_versions(f"name = '{name}'")[0]] == [4, 2, 1]
    assert _code(registry.delete_model_version, name, 3) == NOT_FOUND
    assert _code(registry.create_model_version, new_name(), "/m") == NOT_FOUND


def test_version_fields_and_updates(new_name, registry, name, store):
    exp = store.create_experiment(new_name("exp"))
    run = store.create_run(exp).info.run_id
    made = registry.create_model_version(name, "/models/a", run_id=run, tags={"t": "1"}, run_link="http://x/r",
                                         description="d", user_id="ann")
    assert (made.name, made.version, made.source, made.run_id, made.run_link, made.description, made.user_id,
            made.status, made.current_stage, made.tags) == \
        (name, 1, "/models/a", run, "http://x/r", "d", "ann", "READY", "None", {"t": "1"})
    changed = registry.update_model_version(name, "1", "new text")  # versions as strings, as on the wire
    assert changed.description == "new text" and changed.last_updated_timestamp >= made.last_updated_timestamp
    registry.set_model_version_tag(name, 1, "t", "2")
    registry.set_model_version_tag(name, 1, "u", "3")
    registry.delete_model_version_tag(name, 1, "u")
    assert registry.get_model_version(name, 1).tags == {"t": "2"}
    assert _code(registry.delete_model_version_tag, name, 1, "u") == NOT_FOUND
    assert registry.search_model_versions(f"run_id = '{run}'")[0][0].version == 1


def test_stages_latest_versions_and_archiving(registry, name):
    for i in range(4):
        registry.create_model_version(name, f"/m/{i}")
    registry.transition_model_version_stage(name, 1, "production")
    registry.transition_model_version_stage(name, 2, "STAGING")
    moved = registry.transition_model_version_stage(name, 3, "Production", archive_existing_versions=True)
    assert moved.current_stage == "Production"
    assert registry.get_model_version(name, 1).current_stage == "Archived"
    assert registry.get_model_version(name, 2).current_stage == "Staging"  # another stage: untouched
    latest = {v.current_stage: v.version for v in registry.get_latest_versions(name)}
    assert latest == {"None": 4, "Staging": 2, "Production": 3, "Archived": 1}
    assert [v.version for v in registry.get_latest_versions(name, ["production"])] == [3]
    model = registry.get_registered_model(name)
    assert sorted(v.version for v in model.latest_versions) == [1, 2, 3, 4]
    with pytest.raises(TrackingError, match="invalid stage 'Live'"):
        registry.transition_model_version_stage(name, 4, "Live")
    with pytest.raises(TrackingError, match="archive_existing_versions applies"):
        registry.transition_model_version_stage(name, 4, "Archived", archive_existing_versions=True)


def test_aliases_move_and_vanish_with_their_version(registry, name):
    for i in range(2):
        registry.create_model_version(name, f"/m/{i}")
    registry.set_registered_model_alias(name, "champion", 1)
    registry.set_registered_model_alias(name, "champion", 2)  # moves
    registry.set_registered_model_alias(name, "old", 1)
    assert registry.get_registered_model(name).aliases == {"champion": 2, "old": 1}
    assert registry.get_model_version_by_alias(name, "champion").version == 2
    assert registry.get_model_version(name, 2).aliases == ["champion"]
    assert registry.get_model_version_by_alias(name, "Latest").version == 2  # reserved: the newest version
    registry.delete_model_version(name, 1)
    assert registry.get_registered_model(name).aliases == {"champion": 2}
    assert _code(registry.get_model_version_by_alias, name, "old") == INVALID  # as MLflow answers
    registry.delete_registered_model_alias(name, "champion")
    registry.delete_registered_model_alias(name, "champion")  # already gone: no error, as in MLflow
    assert _code(registry.delete_registered_model_alias, name + "-missing", "champion") == NOT_FOUND
    for reserved in ("latest", "LATEST", "v3", "V12"):
        with pytest.raises(TrackingError, match="reserved"):
            registry.set_registered_model_alias(name, reserved, 2)
    with pytest.raises(TrackingError, match="letters, digits"):
        registry.set_registered_model_alias(name, "a b", 2)
    assert _code(registry.set_registered_model_alias, name, "x", 9) == NOT_FOUND


def test_registered_model_tags(registry, name):
    registry.set_registered_model_tag(name, "a", "1")
    registry.set_registered_model_tag(name, "a", "2")
    registry.set_registered_model_tag(name, "b", "x" * 100_000)  # MLflow's registry limit, not 8,000
    assert registry.get_registered_model(name).tags == {"a": "2", "b": "x" * 100_000}
    registry.delete_registered_model_tag(name, "b")
    assert registry.get_registered_model(name).tags == {"a": "2"}
    assert _code(registry.delete_registered_model_tag, name, "b") == NOT_FOUND
    with pytest.raises(TrackingError, match="limit is 100000"):
        registry.set_registered_model_tag(name, "c", "x" * 100_001)


def test_search_registered_models_filters_orders_and_pages(new_name, registry):
    prefix = new_name("search")
    names = [f"{prefix}-{c}" for c in "cab"]
    for i, n in enumerate(names):
        registry.create_registered_model(n, {"team": "fraud" if i < 2 else "risk"})
    found, token = registry.search_registered_models(f"name LIKE '{prefix}-%'")
    assert [m.name for m in found] == sorted(names) and token is None
    assert [m.name for m in registry.search_registered_models(f"name ILIKE '{prefix.upper()}-%'")[0]] == sorted(names)
    assert registry.search_registered_models(f"name LIKE '{prefix.upper()}-%'")[0] == []  # LIKE is case-sensitive
    fraud = registry.search_registered_models(f"name LIKE '{prefix}%' and tags.team = 'fraud'")[0]
    assert [m.name for m in fraud] == sorted(names[:2])
    registry.update_registered_model(names[1], "touched")  # now the most recently updated
    newest = registry.search_registered_models(f"name LIKE '{prefix}%'", order_by=["timestamp DESC"])[0]
    assert newest[0].name == names[1]
    first, token = registry.search_registered_models(f"name LIKE '{prefix}%'", max_results=2)
    second, last = registry.search_registered_models(f"name LIKE '{prefix}%'", max_results=2, page_token=token)
    assert [m.name for m in first + second] == sorted(names) and last is None
    assert [m.name for m in registry.search_registered_models(f"name IN ('{names[0]}', '{names[2]}')")[0]] == \
        sorted([names[0], names[2]])
    for bad, message in [("run_id = 'x'", "unknown attribute 'run_id'"), ("name < 'a'", "not an operator"),
                         ("tags.a IS NULL", "not an operator")]:
        with pytest.raises(TrackingError, match=message):
            registry.search_registered_models(bad)
    with pytest.raises(TrackingError, match="between 1 and 1000"):
        registry.search_registered_models("", max_results=1001)


def test_search_model_versions(new_name, registry, store):
    a, b = new_name("a"), new_name("b")
    exp = store.create_experiment(new_name("exp"))
    run = store.create_run(exp).info.run_id
    for n in (a, b):
        registry.create_registered_model(n)
    registry.create_model_version(a, "s3://bucket/a/1", run_id=run, tags={"stage": "test"})
    registry.create_model_version(a, "s3://bucket/a/2")
    registry.create_model_version(b, "s3://bucket/b/1", run_id=run)
    by_run = registry.search_model_versions(f"run_id = '{run}'", order_by=["name ASC"])[0]
    assert [(v.name, v.version) for v in by_run] == [(a, 1), (b, 1)]
    assert [v.version for v in registry.search_model_versions(f"name = '{a}' and version_number > 1")[0]] == [2]
    assert [v.name for v in registry.search_model_versions("source_path = 's3://bucket/b/1'")[0]] == [b]
    assert [v.version for v in registry.search_model_versions(f"name = '{a}' and tags.stage = 'test'")[0]] == [1]
    ordered = registry.search_model_versions(f"name IN ('{a}', '{b}')", order_by=["version_number ASC", "name DESC"])
    assert [(v.name, v.version) for v in ordered[0]] == [(b, 1), (a, 1), (a, 2)]
    page, token = registry.search_model_versions(f"name = '{a}'", max_results=1)
    rest, end = registry.search_model_versions(f"name = '{a}'", max_results=1, page_token=token)
    assert [v.version for v in page + rest] == [2, 1] and end is None
    with pytest.raises(TrackingError, match="whole number"):
        registry.search_model_versions("version_number = 1.5")
    with pytest.raises(TrackingError, match="position"):
        registry.search_model_versions("name = ")


def test_names_are_checked_as_mlflow_checks_them(registry):
    for bad, message in [("a/b", "cannot contain '/'"), ("a:b", "cannot contain"), ("", "non-empty"),
                         ("  ", "non-empty"), ("..", "cannot be"), ("x" * 257, "limit is 256")]:
        with pytest.raises(TrackingError, match=message) as info:
            registry.create_registered_model(bad)
        assert info.value.error_code == INVALID
    with pytest.raises(TrackingError, match="whole number"):
        registry.get_model_version("m", "one")
    with pytest.raises(TrackingError, match="'..' parts"):
        registry.create_model_version("m", "mlflow-artifacts:/1/../../etc")
    with pytest.raises(TrackingError, match="'..' parts"):
        registry.create_model_version("m", "s3://b/%2e%2e/x")


def test_register_is_idempotent_by_content_digest(new_name, registry, name):
    first = registry.create_model_version(name, "/a", lineage=Lineage(content_digest="d1"))
    again = registry.create_model_version(name, "/b", lineage=Lineage(content_digest="d1"))
    assert again.version == first.version == 1 and again.source == "/a"
    assert registry.create_model_version(name, "/c", lineage=Lineage(content_digest="d2")).version == 2
    assert registry.create_model_version(name, "/a").version == 3  # no digest: always a new version
    other = new_name()
    registry.create_registered_model(other)
    assert registry.create_model_version(other, "/a", lineage=Lineage(content_digest="d1")).version == 1
    registry.delete_model_version(name, 1)  # a deleted version's content can be registered again
    assert registry.create_model_version(name, "/a", lineage=Lineage(content_digest="d1")).version == 4


def test_lineage_round_trip(registry, name):
    lineage = Lineage(step="train[alpha=0.1]", run_id="r" * 32, pipeline_run_id="p" * 32, cache_key="k" * 64,
                      input_digests={"data/train.csv": "abc", "src/train.py": "def"}, content_digest="c" * 32)
    made = registry.create_model_version(name, "/m", lineage=lineage)
    assert made.lineage == lineage and made.run_id == "r" * 32  # the step's run is the version's run
    got = registry.get_model_version(name, 1)
    assert got.lineage == lineage
    assert got.to_dict()["flowml_lineage"]["input_digests"] == {"data/train.csv": "abc", "src/train.py": "def"}
    plain = registry.create_model_version(name, "/n")
    assert not plain.lineage and "flowml_lineage" not in plain.to_dict()
    registry.delete_model_version(name, 1)
    with pytest.raises(TrackingError, match="unknown lineage field"):
        registry.create_model_version(name, "/m", lineage={"stp": "x"})
    with pytest.raises(TrackingError, match="input_digests"):
        registry.create_model_version(name, "/m", lineage={"input_digests": {"a": 1}})


def test_download_uri_of_logged_models_and_other_versions(new_name, registry, store, name):
    exp = store.create_experiment(new_name("exp"))
    run = store.create_run(exp).info.run_id
    logged = store.create_logged_model(exp, "model", source_run_id=run)
    version = registry.create_model_version(name, f"models:/{logged.model_id}")
    assert version.source == f"models:/{logged.model_id}"
    assert (version.model_id, version.run_id) == (logged.model_id, run)  # filled in from the logged model
    assert registry.get_model_version_download_uri(name, 1) == logged.artifact_location
    registry.create_model_version(name, "/plain/path")
    assert registry.get_model_version_download_uri(name, 2) == "/plain/path"
    registry.set_registered_model_alias(name, "prod", 1)
    copy = registry.create_model_version(name, f"models:/{name}@prod")  # a version of a version
    assert registry.get_model_version_download_uri(name, copy.version) == logged.artifact_location
    with pytest.raises(TrackingError, match="no logged model with id 'm-missing'"):
        registry.create_model_version(name, "models:/m-missing")
    with pytest.raises(TrackingError, match="is not the logged model"):
        registry.create_model_version(name, f"models:/{logged.model_id}", model_id="m-other")
    assert _code(registry.get_model_version_download_uri, name, 9) == NOT_FOUND


def test_entities_have_mlflow_json_shapes(registry, name):
    registry.create_model_version(name, "/m", run_id="r1", tags={"a": "b"})
    registry.set_registered_model_alias(name, "prod", 1)
    registry.set_registered_model_tag(name, "t", "v")
    model = registry.get_registered_model(name).to_dict()
    assert model["aliases"] == [{"alias": "prod", "version": "1"}] and model["tags"] == [{"key": "t", "value": "v"}]
    version = model["latest_versions"][0]
    assert version["version"] == "1" and isinstance(version["creation_timestamp"], int)
    assert version["status"] == "READY" and version["current_stage"] == "None"
    assert version["aliases"] == ["prod"] and version["tags"] == [{"key": "a", "value": "b"}]
    from flowml.registry.entities import ModelVersion, RegisteredModel

    back = RegisteredModel.from_dict(model)
    assert back == registry.get_registered_model(name)
    assert ModelVersion.from_dict(version) == registry.get_model_version(name, 1)
    assert Stage.ALL == ("None", "Staging", "Production", "Archived")
