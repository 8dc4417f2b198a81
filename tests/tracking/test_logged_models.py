"""Searching logged models with MLflow's filter grammar, on SQLite and PostgreSQL."""

import uuid

import pytest

from flowml.errors import TrackingError
from flowml.tracking.entities import LoggedModelStatus


@pytest.fixture
def models(store):
    exp = store.create_experiment(f"lm-{uuid.uuid4().hex}")
    run = store.create_run(exp, "tester", 1, {}, "r")
    first = store.create_logged_model(exp, "model", run.info.run_id, {"team": "a"}, {"alpha": "0.1"}, "sklearn")
    second = store.create_logged_model(exp, "other", None, {"team": "b"}, {"alpha": "0.5"}, None)
    store.finalize_logged_model(first.model_id, LoggedModelStatus.READY)
    return exp, run.info.run_id, first.model_id, second.model_id


@pytest.mark.parametrize("text, expected", [
    ("name = 'model'", ["first"]),
    ("name LIKE 'oth%'", ["second"]),
    ("tags.team = 'b'", ["second"]),
    ("params.alpha != '0.1'", ["second"]),
    ("status = 'READY'", ["first"]),
    ("status = 'LOGGED_MODEL_READY'", ["first"]),
    ("attributes.model_type ILIKE 'SK%'", ["first"]),
    ("creation_timestamp > 0 AND tags.team ILIKE 'A'", ["first"]),
    ("name = 'none'", []),
])
def test_filters_select_matching_models(store, models, text, expected):
    exp, run_id, first, second = models
    ids = {"first": first, "second": second}
    found, _ = store.search_logged_models([exp], text)
    assert sorted(m.model_id for m in found) == sorted(ids[e] for e in expected)


def test_source_run_filter_finds_the_runs_model(store, models):
    exp, run_id, first, _ = models
    found, _ = store.search_logged_models([exp], f"source_run_id = '{run_id}' AND name = 'model'")
    assert [m.model_id for m in found] == [first]


@pytest.mark.parametrize("text, needle", [
    ("metrics.rmse < 1", "metrics"),
    ("name = ", "expected"),
    ("colour = 'red'", "colour"),
])
def test_bad_filters_are_refused_with_the_reason(store, models, text, needle):
    with pytest.raises(TrackingError) as err:
        store.search_logged_models([models[0]], text)
    assert needle in str(err.value)
