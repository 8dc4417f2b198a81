"""``models:/`` URIs and the registry's naming rules, as units."""

from __future__ import annotations

import pytest

from flowml.errors import TrackingError
from flowml.registry import parse_model_uri
from flowml.registry import validation as check


@pytest.mark.parametrize("uri, parts", [
    ("models:/wine/3", ("wine", 3, None, None)),
    ("models:/wine@production", ("wine", None, "production", None)),
    ("models:/my@team@champion", ("my@team", None, "champion", None)),  # the last @ separates the alias
    ("models:/wine/latest", ("wine", None, None, None)),
    ("models:/wine/LATEST", ("wine", None, None, None)),
    ("models:/wine/Production", ("wine", None, None, "Production")),
    ("models:/wine quality/12", ("wine quality", 12, None, None)),
])
def test_registry_uris(uri, parts):
    assert tuple(parse_model_uri(uri)) == parts


def test_a_bare_id_is_a_logged_model_not_a_registry_uri():
    assert parse_model_uri("models:/m-0123456789abcdef") is None


@pytest.mark.parametrize("uri", ["runs:/abc/model", "wine/3", "models:", "models:/", "models:/wine/3/x",
                                 "models:/wine/", "models://profile/wine/3", "models:/@alias", "models:/wine@",
                                 None])
def test_malformed_uris_are_bad_input_naming_the_forms(uri):
    with pytest.raises(TrackingError, match="models:/<name>") as info:
        parse_model_uri(uri)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("alias", ["champion", "prod-2", "A_b", "x" * 255, "v", "vx1", "latest2"])
def test_aliases_that_may_be_set(alias):
    assert check.new_alias(alias) == alias


@pytest.mark.parametrize("alias, message", [
    ("latest", "reserved"), ("Latest", "reserved"), ("v1", "reserved"), ("V22", "reserved"),
    ("", "non-empty"), ("a b", "letters, digits"), ("a.b", "letters, digits"), ("a/b", "letters, digits"),
    ("x" * 256, "limit is 255"), (3, "non-empty string"),
])
def test_aliases_refused(alias, message):
    with pytest.raises(TrackingError, match=message):
        check.new_alias(alias)


def test_stages_in_any_case_and_versions_as_numbers_or_digits():
    assert [check.stage(s) for s in ("none", "STAGING", "Production", "archived")] == \
        ["None", "Staging", "Production", "Archived"]
    with pytest.raises(TrackingError, match="None, Staging, Production, Archived"):
        check.stage("Deleted_Internal")
    assert check.version("12") == check.version(12) == 12
    for bad in ("0", 0, -1, "1.5", 1.0, True, "", None, 2 ** 31):
        with pytest.raises(TrackingError):
            check.version(bad)


def test_lineage_is_checked_and_copied():
    from flowml.registry.entities import Lineage

    given = {"step": "train", "input_digests": {"a": "1"}}
    made = check.lineage(given)
    made.input_digests["b"] = "2"
    assert given["input_digests"] == {"a": "1"}  # the caller's dict is not touched
    assert check.lineage(None) == Lineage() and not Lineage()
    for bad, message in [({"run_id": "x" * 33}, "at most 32"), ({"cache_key": 5}, "cache_key"),
                         ({"step": ["a"]}, "step must be a string"), ([], "must be an object")]:
        with pytest.raises(TrackingError, match=message):
            check.lineage(bad)
