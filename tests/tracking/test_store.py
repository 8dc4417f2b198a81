"""The SQL tracking store and FlowmlClient, against SQLite and a real PostgreSQL server.

Every test makes its own experiment (unique name) and looks only at it, so that the
PostgreSQL tests can share one database (see conftest.py).
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import select, update

from flowml.errors import TrackingError
from flowml.tracking.entities import Metric, Param, RunStatus, RunTag, ViewType, now_ms
from flowml.tracking.sql import tables as t


NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
EXISTS = "RESOURCE_ALREADY_EXISTS"
INVALID = "INVALID_PARAMETER_VALUE"
INVALID_STATE = "INVALID_STATE"


@contextmanager
def fails(code: str, match: str | None = None):
    with pytest.raises(TrackingError, match=match) as info:
        yield info
    assert info.value.error_code == code, f"{info.value.error_code}: {info.value}"


def unique(prefix: str = "exp") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def ids(runs) -> set[str]:
    return {r.info.run_id for r in runs}


# experiments -------------------------------------------------------------------------

def test_default_experiment_is_id_0(store):
    default = store.get_experiment("0")
    assert (default.experiment_id, default.name, default.lifecycle_stage) == ("0", "Default", "active")
    assert store.get_experiment_by_name("Default").experiment_id == "0"
    with fails(INVALID, "Default"):
        store.delete_experiment("0")
    assert store.get_experiment("0").lifecycle_stage == "active"


def test_first_experiment_of_a_new_sqlite_store_is_1(tmp_path):
    from flowml.tracking.sql.store import SqlStore

    store = SqlStore(f"sqlite:///{tmp_path / 'new.db'}", str(tmp_path / "art"))
    try:
        assert store.create_experiment("a") == "1"
        assert store.create_experiment("b") == "2"
        found, token = store.search_experiments(order_by=["experiment_id"])
        assert [e.name for e in found] == ["Default", "a", "b"] and token is None
        assert store.get_experiment("1").artifact_location == f"{tmp_path / 'art'}/1"
    finally:
        store.close()


def test_create_and_get_experiment(store, tmp_path):
    name = unique()
    before = now_ms()
    exp_id = store.create_experiment(name, tags={"team": "fraud", "n": 3})
    exp = store.get_experiment(exp_id)
    assert exp.experiment_id == exp_id and isinstance(exp_id, str)
    assert exp.name == name
    assert exp.lifecycle_stage == "active"
    assert exp.artifact_location == f"{tmp_path / 'artifacts'}/{exp_id}"
    assert before <= exp.creation_time == exp.last_update_time <= now_ms()
    assert exp.tags == {"team": "fraud", "n": "3"}
    assert store.get_experiment_by_name(name).experiment_id == exp_id
    assert store.get_experiment_by_name(unique()) is None
    with fails(NOT_FOUND):
        store.get_experiment("987654321")
    with fails(NOT_FOUND):
        store.get_experiment("not-a-number")


def test_experiment_with_an_artifact_location(store):
    exp_id = store.create_experiment(unique(), artifact_location="s3://bucket/x")
    assert store.get_experiment(exp_id).artifact_location == "s3://bucket/x"
    run = store.create_run(exp_id)
    assert run.info.artifact_uri == f"s3://bucket/x/{run.info.run_id}/artifacts"


def test_restoring_an_experiment_leaves_runs_deleted_before_it_deleted(store, exp_id):
    kept, gone = (store.create_run(exp_id).info.run_id for _ in range(2))
    store.delete_run(gone)
    time.sleep(0.01)  # the experiment's deletion comes strictly later
    store.delete_experiment(exp_id)
    store.restore_experiment(exp_id)
    assert ids(store.search_runs([exp_id])[0]) == {kept}
    assert store.get_run(gone).info.lifecycle_stage == "deleted"


def test_duplicate_experiment_name(store):
    name = unique()
    first = store.create_experiment(name)
    with fails(EXISTS, "already exists"):
        store.create_experiment(name)
    store.delete_experiment(first)
    with fails(EXISTS, "deleted"):
        store.create_experiment(name)
    found, _ = store.search_experiments(ViewType.ALL, filter_string=f"name = '{name}'")
    assert [e.experiment_id for e in found] == [first]


@pytest.mark.parametrize("name", ["", "   ", None, "x" * 257])
def test_bad_experiment_names(store, name):
    with fails(INVALID):
        store.create_experiment(name)


def test_rename_experiment(store):
    old, other = unique(), unique()
    exp_id = store.create_experiment(old)
    other_id = store.create_experiment(other)
    new = unique()
    store.rename_experiment(exp_id, new)
    assert store.get_experiment(exp_id).name == new
    assert store.get_experiment_by_name(old) is None
    assert store.get_experiment_by_name(new).experiment_id == exp_id
    store.rename_experiment(exp_id, new)  # to its own name: nothing to do
    with fails(EXISTS):
        store.rename_experiment(exp_id, other)
    store.delete_experiment(other_id)
    with fails(EXISTS):  # a deleted experiment still holds its name
        store.rename_experiment(exp_id, other)
    assert store.get_experiment(exp_id).name == new
    with fails(INVALID_STATE):  # a deleted experiment cannot be renamed
        store.rename_experiment(other_id, unique())
    with fails(NOT_FOUND):
        store.rename_experiment("987654321", unique())


def test_experiment_tags(store, exp_id):
    store.set_experiment_tag(exp_id, "a", "1")
    store.set_experiment_tag(exp_id, "b", 2)
    store.set_experiment_tag(exp_id, "a", "one")
    assert store.get_experiment(exp_id).tags == {"a": "one", "b": "2"}
    with fails(INVALID):
        store.set_experiment_tag(exp_id, "../x", "v")
    with fails(NOT_FOUND):
        store.set_experiment_tag("987654321", "a", "v")


def test_search_experiments_view_types(store):
    kept, gone = store.create_experiment(unique()), store.create_experiment(unique())
    store.delete_experiment(gone)

    def found(view):
        return {e.experiment_id for e in store.search_experiments(view, 50_000)[0]} & {kept, gone}

    assert found(ViewType.ACTIVE_ONLY) == {kept}
    assert found(ViewType.DELETED_ONLY) == {gone}
    assert found(ViewType.ALL) == {kept, gone}
    assert [e.experiment_id for e in store.search_experiments(filter_string="name = 'Default'")[0]] == ["0"]
    store.restore_experiment(gone)
    assert found(ViewType.ACTIVE_ONLY) == {kept, gone}


def test_search_experiments_by_name(store):
    """More in test_search_experiments.py."""
    stem = unique()
    a = store.create_experiment(f"{stem}-Wine")
    b = store.create_experiment(f"{stem}-wine-2")
    store.create_experiment(f"{stem}-beer")

    def found(filter_string, **kw):
        return [e.experiment_id for e in store.search_experiments(filter_string=filter_string,
                                                                  order_by=["experiment_id"], **kw)[0]]

    assert found(f"name LIKE '{stem}-wine%'") == [b]
    assert found(f"name ILIKE '{stem}-wine%'") == [a, b]
    assert len(found(f"name LIKE '{stem}%'", max_results=2)) == 2


def test_delete_and_restore_experiment_hides_and_brings_back_its_runs(store, exp_id):
    runs = [store.create_run(exp_id).info.run_id for _ in range(3)]
    store.delete_experiment(exp_id)
    exp = store.get_experiment(exp_id)
    assert exp.lifecycle_stage == "deleted"
    assert store.search_runs([exp_id])[0] == []
    assert ids(store.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)[0]) == set(runs)
    assert store.get_run(runs[0]).info.lifecycle_stage == "deleted"
    with fails(INVALID_STATE):
        store.create_run(exp_id)
    with fails(INVALID_STATE):
        store.log_param(runs[0], "a", 1)
    store.restore_experiment(exp_id)
    assert store.get_experiment(exp_id).lifecycle_stage == "active"
    assert ids(store.search_runs([exp_id])[0]) == set(runs)
    store.log_param(runs[0], "a", 1)
    assert store.get_run(runs[0]).data.params == {"a": "1"}
    with fails(NOT_FOUND):
        store.delete_experiment("987654321")


# runs ------------------------------------------------------------------------------------

def test_create_run(store, exp_id):
    before = now_ms()
    run = store.create_run(exp_id, user_id="ann", run_name="baseline", tags={"team": "fraud", "n": 1},
                           params={"alpha": 0.5})
    info = run.info
    assert re.fullmatch(r"[0-9a-f]{32}", info.run_id) and info.run_uuid == info.run_id
    assert (info.experiment_id, info.run_name, info.user_id, info.status, info.lifecycle_stage) == (
        exp_id, "baseline", "ann", "RUNNING", "active")
    assert before <= info.start_time <= now_ms() and info.end_time is None
    assert info.artifact_uri == f"{store.get_experiment(exp_id).artifact_location}/{info.run_id}/artifacts"
    expected_tags = {"team": "fraud", "n": "1", "mlflow.runName": "baseline"}
    assert run.data.tags == expected_tags
    assert run.data.params == {"alpha": "0.5"}
    got = store.get_run(info.run_id)
    assert got.info == info
    assert got.data.tags == expected_tags and got.data.params == {"alpha": "0.5"}
    assert got.data.metrics == {}


def test_run_name_from_tag_or_random(store, exp_id):
    tagged = store.create_run(exp_id, tags={"mlflow.runName": "from-tag"})
    assert tagged.info.run_name == "from-tag"
    assert store.get_run(tagged.info.run_id).info.run_name == "from-tag"
    names = set()
    for _ in range(3):
        run = store.get_run(store.create_run(exp_id).info.run_id)
        assert re.fullmatch(r"[a-z]+-[a-z]+-\d{3}", run.info.run_name), run.info.run_name
        assert run.data.tags["mlflow.runName"] == run.info.run_name
        names.add(run.info.run_name)
    assert len(names) >= 2  # 27,000 names: three equal in a row is a broken generator


def test_create_run_in_missing_experiment(store):
    with fails(NOT_FOUND):
        store.create_run("987654321")


def test_create_run_with_a_bad_tag_writes_nothing(store, exp_id):
    with fails(INVALID):
        store.create_run(exp_id, tags={"../x": "v"})
    with fails(INVALID):
        store.create_run(exp_id, run_name="x" * 251)
    assert store.search_runs([exp_id], run_view_type=ViewType.ALL)[0] == []


def test_get_missing_run(store):
    with fails(NOT_FOUND, "no run"):
        store.get_run("0" * 32)
    with fails(NOT_FOUND):
        store.get_metric_history("0" * 32, "m")


def test_update_run_info(store, exp_id):
    run_id = store.create_run(exp_id, run_name="a").info.run_id
    info = store.update_run_info(run_id, status=RunStatus.FINISHED, end_time=12345, run_name="b")
    assert (info.status, info.end_time, info.run_name) == ("FINISHED", 12345, "b")
    run = store.get_run(run_id)
    assert (run.info.status, run.info.end_time, run.info.run_name) == ("FINISHED", 12345, "b")
    assert run.data.tags["mlflow.runName"] == "b"
    with fails(INVALID, "status"):
        store.update_run_info(run_id, status="DONE")
    assert store.get_run(run_id).info.status == "FINISHED"
    with fails(NOT_FOUND):
        store.update_run_info("0" * 32, status="FAILED")


def test_run_name_tag_renames_the_run(store, exp_id):
    run_id = store.create_run(exp_id, run_name="a").info.run_id
    store.set_tag(run_id, "mlflow.runName", "renamed")
    assert store.get_run(run_id).info.run_name == "renamed"
    assert store.search_runs([exp_id], "attributes.run_name = 'renamed'")[0][0].info.run_id == run_id


def test_client_set_terminated_and_update(client):
    exp_id = client.create_experiment(unique())
    run = client.create_run(exp_id, run_name="r", tags={"k": "v"})
    assert run.info.user_id  # the current user
    before = now_ms()
    client.set_terminated(run.info.run_id)
    info = client.get_run(run.info.run_id).info
    assert info.status == "FINISHED" and before <= info.end_time <= now_ms()
    client.set_terminated(run.info.run_id, "FAILED", end_time=7)
    info = client.get_run(run.info.run_id).info
    assert (info.status, info.end_time) == ("FAILED", 7)
    assert client.update_run(run.info.run_id, status="KILLED", name="n2").run_name == "n2"
    assert client.get_run(run.info.run_id).info.status == "KILLED"


def test_delete_and_restore_run(store, exp_id):
    kept = store.create_run(exp_id).info.run_id
    gone = store.create_run(exp_id).info.run_id
    store.delete_run(gone)
    assert store.get_run(gone).info.lifecycle_stage == "deleted"
    assert ids(store.search_runs([exp_id])[0]) == {kept}
    assert ids(store.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)[0]) == {gone}
    assert ids(store.search_runs([exp_id], run_view_type=ViewType.ALL)[0]) == {kept, gone}
    for write in (lambda: store.log_param(gone, "a", 1), lambda: store.set_tag(gone, "a", 1),
                  lambda: store.log_metric(gone, Metric("m", 1.0, 1, 0)), lambda: store.delete_tag(gone, "x"),
                  lambda: store.update_run_info(gone, status="FINISHED")):
        with fails(INVALID_STATE, "deleted"):
            write()
    run = store.get_run(gone)
    assert run.data.params == {} and run.data.metrics == {} and run.info.status == "RUNNING"
    store.restore_run(gone)
    assert store.get_run(gone).info.lifecycle_stage == "active"
    assert ids(store.search_runs([exp_id])[0]) == {kept, gone}
    store.log_param(gone, "a", 1)
    assert store.get_run(gone).data.params == {"a": "1"}
    with fails(NOT_FOUND):
        store.delete_run("0" * 32)


def test_child_runs(client):
    exp_id = client.create_experiment(unique())
    parent = client.create_run(exp_id, start_time=1000).info.run_id
    first = client.create_run(exp_id, start_time=2000, tags={"mlflow.parentRunId": parent}).info.run_id
    second = client.create_run(exp_id, start_time=3000, tags={"mlflow.parentRunId": parent}).info.run_id
    client.create_run(exp_id)
    assert [r.info.run_id for r in client.child_runs(parent)] == [first, second]
    assert client.get_parent_run(second).info.run_id == parent
    assert client.get_parent_run(parent) is None


# params --------------------------------------------------------------------------------------

def test_params_are_immutable(store, exp_id):
    run_id = store.create_run(exp_id).info.run_id
    store.log_param(run_id, "alpha", 0.5)
    store.log_param(run_id, "alpha", "0.5")  # the same value again is fine
    store.log_batch(run_id, params={"alpha": 0.5, "beta": "x"})
    with fails(INVALID, "alpha"):
        store.log_param(run_id, "alpha", 0.6)
    assert store.get_run(run_id).data.params == {"alpha": "0.5", "beta": "x"}


def test_failing_log_batch_writes_nothing(store, exp_id):
    run_id = store.create_run(exp_id).info.run_id
    store.log_param(run_id, "alpha", 1)
    with fails(INVALID, "alpha"):
        store.log_batch(run_id, metrics=[Metric("m", 1.0, 1, 0)], params={"beta": 2, "alpha": 3},
                        tags={"t": "v", "mlflow.runName": "changed"})
    run = store.get_run(run_id)
    assert run.data.params == {"alpha": "1"}
    assert run.data.metrics == {}
    assert "t" not in run.data.tags and run.info.run_name != "changed"
    assert store.get_metric_history(run_id, "m") == []
    # A bad metric later in the batch: nothing either.
    with fails(INVALID):
        store.log_batch(run_id, metrics=[Metric("ok", 1.0, 1, 0), Metric("bad", "x", 1, 0)],
                        params={"gamma": 1}, tags={"t": "v"})
    run = store.get_run(run_id)
    assert run.data.params == {"alpha": "1"} and run.data.metrics == {} and "t" not in run.data.tags


def test_client_log_batch_takes_entities(client):
    exp_id = client.create_experiment(unique())
    run_id = client.create_run(exp_id).info.run_id
    client.log_batch(run_id, metrics=[Metric("m", 2.0, 5, 1)], params=[Param("p", "1")],
                     tags=[RunTag("t", "x")])
    run = client.get_run(run_id)
    assert run.data.metrics == {"m": 2.0} and run.data.params == {"p": "1"} and run.data.tags["t"] == "x"
    assert client.log_param(run_id, "q", 3) == 3
    with fails(INVALID, "p"):  # the same key twice in one batch, with two values
        client.log_batch(run_id, params=[Param("z", "1"), Param("z", "2")])
    assert "z" not in client.get_run(run_id).data.params


# tags ----------------------------------------------------------------------------------------

def test_tags_set_overwrite_delete(store, exp_id):
    run_id = store.create_run(exp_id, run_name="r").info.run_id
    store.set_tag(run_id, "a", "1")
    store.set_tag(run_id, "a", "2")
    store.set_tag(run_id, "b", 3)
    assert store.get_run(run_id).data.tags == {"a": "2", "b": "3", "mlflow.runName": "r"}
    store.delete_tag(run_id, "a")
    assert store.get_run(run_id).data.tags == {"b": "3", "mlflow.runName": "r"}
    with fails(NOT_FOUND, "'a'"):
        store.delete_tag(run_id, "a")
    with fails(NOT_FOUND):
        store.delete_tag("0" * 32, "b")
    with fails(NOT_FOUND):
        store.set_tag("0" * 32, "b", "x")


# metrics -------------------------------------------------------------------------------------

def test_latest_metric_is_greatest_step_then_timestamp_then_value(store, exp_id):
    run_id = store.create_run(exp_id).info.run_id

    def latest(key):
        m = store.get_run(run_id).data.latest[key]
        return m.value, m.timestamp, m.step

    store.log_metric(run_id, Metric("a", 5.0, 100, 5))
    store.log_metric(run_id, Metric("a", 3.0, 999, 3))  # an earlier step logged later
    assert latest("a") == (5.0, 100, 5)
    store.log_metric(run_id, Metric("a", 1.0, 50, 5))  # same step, older timestamp
    assert latest("a") == (5.0, 100, 5)
    store.log_metric(run_id, Metric("a", 2.0, 200, 5))  # same step, newer timestamp
    assert latest("a") == (2.0, 200, 5)
    store.log_metric(run_id, Metric("a", 1.5, 200, 5))  # same step and timestamp, smaller value
    assert latest("a") == (2.0, 200, 5)
    store.log_metric(run_id, Metric("a", 7.0, 200, 5))  # same step and timestamp, greater value
    assert latest("a") == (7.0, 200, 5)
    # Out of order inside one batch, too.
    store.log_batch(run_id, metrics=[Metric("b", 9.0, 1, 9), Metric("b", 1.0, 2, 1), Metric("b", 4.0, 3, 4)])
    assert latest("b") == (9.0, 1, 9)
    assert store.get_run(run_id).data.metrics == {"a": 7.0, "b": 9.0}
    assert [m.step for m in store.get_metric_history(run_id, "b")] == [1, 4, 9]


def test_nan_and_infinities_round_trip(store, exp_id):
    run_id = store.create_run(exp_id).info.run_id
    store.log_batch(run_id, metrics=[Metric("nan", math.nan, 1, 0), Metric("inf", math.inf, 1, 0),
                                     Metric("ninf", -math.inf, 1, 0), Metric("mix", 1.0, 1, 0),
                                     Metric("mix", math.nan, 1, 1), Metric("mix", math.inf, 1, 2)])
    metrics = store.get_run(run_id).data.metrics
    assert math.isnan(metrics["nan"])
    assert metrics["inf"] == math.inf and metrics["ninf"] == -math.inf and metrics["mix"] == math.inf
    history = [m.value for m in store.get_metric_history(run_id, "mix")]
    assert history[0] == 1.0 and math.isnan(history[1]) and history[2] == math.inf
    with store.engine.connect() as conn:  # NaN is stored as NULL
        m = t.metrics.c
        assert conn.execute(select(m.value).where(m.run_id == run_id, m.key == "nan")).scalar_one() is None
        lm = t.latest_metrics.c
        assert conn.execute(select(lm.value).where(lm.run_id == run_id, lm.key == "nan")).scalar_one() is None
    # A NaN never hides a number at the same step and time, whatever order they come in.
    store.log_metric(run_id, Metric("x", -math.inf, 5, 5))
    store.log_metric(run_id, Metric("x", math.nan, 5, 5))
    assert store.get_run(run_id).data.metrics["x"] == -math.inf
    store.log_batch(run_id, metrics=[Metric("y", math.nan, 5, 5), Metric("y", -math.inf, 5, 5)])
    assert store.get_run(run_id).data.metrics["y"] == -math.inf


def test_metric_history_is_ordered_by_step(store, exp_id):
    run_id = store.create_run(exp_id).info.run_id
    for step in (3, 1, 2, 0):
        store.log_metric(run_id, Metric("m", step * 10.0, 1000 - step, step))
    store.log_metric(run_id, Metric("other", 1.0, 1, 0))
    history = store.get_metric_history(run_id, "m")
    assert [(m.key, m.value, m.timestamp, m.step) for m in history] == [
        ("m", 0.0, 1000, 0), ("m", 10.0, 999, 1), ("m", 20.0, 998, 2), ("m", 30.0, 997, 3)]
    assert store.get_metric_history(run_id, "missing") == []


def test_log_batch_with_thousands_of_metrics(store, exp_id):
    run_id = store.create_run(exp_id).info.run_id
    metrics = [Metric(f"k{i % 50}", float(i), 1_000 + i, i // 50) for i in range(5000)]
    store.log_batch(run_id, metrics=metrics)
    run = store.get_run(run_id)
    assert len(run.data.metrics) == 50
    assert run.data.metrics["k0"] == 4950.0 and run.data.metrics["k49"] == 4999.0
    assert run.data.latest["k7"].step == 99
    history = store.get_metric_history(run_id, "k3")
    assert [m.value for m in history] == [float(i) for i in range(3, 5000, 50)]


def test_metric_steps_and_timestamps(store, exp_id):
    np = pytest.importorskip("numpy")
    run_id = store.create_run(exp_id).info.run_id
    store.log_metric(run_id, Metric("m", np.float32(0.5), np.int64(1000), np.int64(3)))  # numpy scalars pass
    store.log_metric(run_id, Metric("m", 2, 1001, 4.0))  # an integral float step is fine
    big = 2 ** 62
    store.log_metric(run_id, Metric("big", 1.0, big, big))
    assert [(m.value, m.timestamp, m.step) for m in store.get_metric_history(run_id, "m")] == [
        (0.5, 1000, 3), (2.0, 1001, 4)]
    assert store.get_run(run_id).data.latest["big"] == Metric("big", 1.0, big, big)
    for bad in (Metric("m", 1.0, 1, 1.5), Metric("m", 1.0, 1, "1"), Metric("m", 1.0, 2 ** 63, 0),
                Metric("m", 1.0, None, 0)):
        with fails(INVALID):
            store.log_metric(run_id, bad)
    assert len(store.get_metric_history(run_id, "m")) == 2


@pytest.mark.parametrize("key", ["../x", "a/../b", "/abs", ".", "a//b", "x" * 251, "", "bad\nkey", "semi;colon"])
def test_bad_keys_are_refused(store, exp_id, key):
    run_id = store.create_run(exp_id).info.run_id
    with fails(INVALID):
        store.log_metric(run_id, Metric(key, 1.0, 1, 0))
    with fails(INVALID):
        store.log_param(run_id, key, "v")
    with fails(INVALID):
        store.set_tag(run_id, key, "v")
    run = store.get_run(run_id)
    assert run.data.metrics == {} and run.data.params == {} and set(run.data.tags) == {"mlflow.runName"}


def test_good_keys_are_kept(store, exp_id):
    run_id = store.create_run(exp_id).info.run_id
    keys = ["a", "a/b", "with space", "x-y_z.w", "colon:ok", "x" * 250]
    store.log_batch(run_id, metrics=[Metric(k, 1.0, 1, 0) for k in keys], params={k: "v" for k in keys})
    run = store.get_run(run_id)
    assert set(run.data.metrics) == set(keys) and set(run.data.params) == set(keys)


def test_value_limits(store, exp_id):
    run_id = store.create_run(exp_id).info.run_id
    store.log_param(run_id, "p", "x" * 6000)
    store.set_tag(run_id, "t", "y" * 8000)
    with fails(INVALID, "6000"):
        store.log_param(run_id, "p2", "x" * 6001)
    with fails(INVALID, "8000"):
        store.set_tag(run_id, "t2", "y" * 8001)
    with fails(INVALID):
        store.update_run_info(run_id, run_name="n" * 251)
    run = store.get_run(run_id)
    assert run.data.params == {"p": "x" * 6000}
    assert run.data.tags["t"] == "y" * 8000 and "t2" not in run.data.tags


def test_run_name_and_user_limits_hold_on_every_path(store, exp_id):
    """Through the mlflow.runName tag too: PostgreSQL would refuse the run's 250-character column."""
    run_id = store.create_run(exp_id, run_name="ok").info.run_id
    with fails(INVALID, "run name"):
        store.set_tag(run_id, "mlflow.runName", "n" * 251)
    with fails(INVALID, "run name"):
        store.create_run(exp_id, tags={"mlflow.runName": "n" * 251})
    with fails(INVALID, "user"):
        store.create_run(exp_id, user_id="u" * 257)
    run = store.get_run(run_id)
    assert run.info.run_name == "ok" and run.data.tags["mlflow.runName"] == "ok"
    assert store.create_run(exp_id, user_id="u" * 256).info.user_id == "u" * 256
    store.set_tag(run_id, "mlflow.runName", "n" * 250)
    assert store.get_run(run_id).info.run_name == "n" * 250


@pytest.mark.parametrize("value", ["1.0", None, [1.0], {"a": 1}, b"1"])
def test_non_numeric_metric_values_are_refused(store, exp_id, value):
    run_id = store.create_run(exp_id).info.run_id
    with fails(INVALID, "number"):
        store.log_metric(run_id, Metric("m", value, 1, 0))
    assert store.get_metric_history(run_id, "m") == []


def test_client_log_metric_defaults(client):
    exp_id = client.create_experiment(unique())
    run_id = client.create_run(exp_id).info.run_id
    before = now_ms()
    client.log_metric(run_id, "m", 1.5)
    client.log_metric(run_id, "m", 2.5, timestamp=5, step=7)
    first, second = client.get_metric_history(run_id, "m")
    assert (first.value, first.step) == (1.5, 0) and before <= first.timestamp <= now_ms()
    assert (second.value, second.timestamp, second.step) == (2.5, 5, 7)
    assert client.get_run(run_id).data.metrics == {"m": 2.5}


# search_runs ---------------------------------------------------------------------------------

def test_search_runs_by_experiment(store):
    a, b = store.create_experiment(unique()), store.create_experiment(unique())
    in_a = {store.create_run(a).info.run_id for _ in range(3)}
    in_b = {store.create_run(b).info.run_id for _ in range(2)}
    assert ids(store.search_runs([a])[0]) == in_a
    assert ids(store.search_runs([b])[0]) == in_b
    assert ids(store.search_runs([a, b])[0]) == in_a | in_b
    assert store.search_runs([])[0] == []
    assert store.search_runs(["987654321"])[0] == []


def test_search_runs_pages_cover_every_run_once(store, exp_id):
    made = [store.create_run(exp_id, start_time=1000 + i % 4).info.run_id for i in range(11)]  # start_time ties
    seen, token, pages = [], None, 0
    while True:
        page, token = store.search_runs([exp_id], max_results=3, page_token=token)
        pages += 1
        assert len(page) == (3 if token else 2)
        seen.extend(r.info.run_id for r in page)
        if token is None:
            break
    assert pages == 4
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen)) == 11
    # The default order: start_time DESC, then run_id.
    assert seen == [r for _, r in sorted(((-(1000 + i % 4), r) for i, r in enumerate(made)))]


def test_client_search_runs_paged_list(client):
    exp_id = client.create_experiment(unique())
    made = {client.create_run(exp_id).info.run_id for _ in range(5)}
    first = client.search_runs(exp_id, max_results=4)
    assert len(first) == 4 and first.token
    second = client.search_runs([exp_id], max_results=4, page_token=first.token)
    assert len(second) == 1 and second.token is None
    assert ids(first) | ids(second) == made


def test_search_runs_order_filter_and_data(store, exp_id):
    values = {"r0": 0.3, "r1": 0.1, "r2": 0.2}
    made = {}
    for name, rmse in values.items():
        run_id = store.create_run(exp_id, run_name=name).info.run_id
        store.log_batch(run_id, metrics=[Metric("rmse", rmse, 1, 0)], params={"alpha": rmse * 10},
                        tags={"team": name.upper()})
        made[name] = run_id
    store.create_run(exp_id, run_name="no-metric")
    ordered, _ = store.search_runs([exp_id], order_by=["metrics.rmse ASC"])
    assert [r.info.run_name for r in ordered] == ["r1", "r2", "r0", "no-metric"]
    ordered, _ = store.search_runs([exp_id], order_by=["metrics.rmse DESC"])
    assert [r.info.run_name for r in ordered] == ["r0", "r2", "r1", "no-metric"]
    found, _ = store.search_runs([exp_id], "metrics.rmse < 0.25 and params.alpha = '2.0'")
    assert [r.info.run_id for r in found] == [made["r2"]]
    run = found[0]
    assert run.data.metrics == {"rmse": 0.2} and run.data.params == {"alpha": "2.0"}
    assert run.data.tags == {"team": "R2", "mlflow.runName": "r2"}
    found, _ = store.search_runs([exp_id], "tags.team ILIKE 'r%'", order_by=["attributes.run_name DESC"])
    assert [r.info.run_name for r in found] == ["r2", "r1", "r0"]


@pytest.mark.parametrize("bad", ["metrics.rmse <", "metrics.rmse < abc", "params.a > '1'", "foo = 1",
                                 "metrics.a = 1 or metrics.b = 2"])
def test_search_runs_bad_filter(store, exp_id, bad):
    with fails(INVALID, "filter"):
        store.search_runs([exp_id], bad)


def test_search_runs_bad_arguments(store, exp_id):
    with fails(INVALID):
        store.search_runs([exp_id], order_by=["metrics.rmse UP"])
    with fails(INVALID, "page_token"):
        store.search_runs([exp_id], page_token="garbage")
    for size in (0, 50_001):
        with fails(INVALID, "max_results"):
            store.search_runs([exp_id], max_results=size)


def test_search_runs_loads_a_page_bigger_than_sqlites_variable_limit(tmp_path):
    """A page with more runs than SQLite takes bound parameters in one statement. Debian builds
    SQLite with a limit of 250,000, others with 32,766 (999 before 3.32): the limit is lowered
    here to 999, so that 2,500 runs show what 40,000 would do elsewhere."""
    import sqlite3

    from sqlalchemy import event

    from flowml.tracking.sql.store import SqlStore

    store = SqlStore(f"sqlite:///{tmp_path / 'big.db'}", str(tmp_path / "art"))
    try:
        store.engine.dispose()

        @event.listens_for(store.engine, "connect")
        def _low_limit(dbapi_connection, _record):
            dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)

        exp_id = int(store.create_experiment("big"))
        n = 2500
        with store.engine.begin() as conn:
            conn.execute(t.runs.insert(), [dict(
                run_id=f"{i:032x}", experiment_id=exp_id, run_name=f"r{i}", user_id="u", status="FINISHED",
                start_time=i, artifact_uri="x", lifecycle_stage="active") for i in range(n)])
            conn.execute(t.tags.insert(), [dict(run_id=f"{i:032x}", key="k", value=str(i)) for i in range(n)])
            conn.execute(t.params.insert(), [dict(run_id=f"{i:032x}", key="p", value=str(i)) for i in range(n)])
            conn.execute(t.latest_metrics.insert(), [dict(run_id=f"{i:032x}", key="m", value=i, timestamp=0, step=0)
                                                      for i in range(n)])
        runs, token = store.search_runs([str(exp_id)], max_results=50_000)
        assert token is None and len(runs) == n
        assert [r.info.start_time for r in runs] == list(range(n - 1, -1, -1))
        assert all(r.data.tags == {"k": str(r.info.start_time)} and r.data.params == {"p": str(r.info.start_time)}
                   and r.data.metrics == {"m": r.info.start_time} for r in runs)
    finally:
        store.close()


# orphans -------------------------------------------------------------------------------------

ORPHAN_MAKER = """
import sys, time
from flowml.tracking.sql.store import SqlStore
store = SqlStore(sys.argv[1], sys.argv[2])
print(store.create_run(sys.argv[3]).info.run_id, flush=True)
time.sleep(60)
"""


def test_orphaned_runs_are_marked_killed(store, exp_id, tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", ORPHAN_MAKER, store.url, str(tmp_path / "artifacts"), exp_id],
                            stdout=subprocess.PIPE, text=True)
    try:
        killed = proc.stdout.readline().strip()
        assert re.fullmatch(r"[0-9a-f]{32}", killed), killed
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    stale = store.create_run(exp_id).info.run_id
    live = store.create_run(exp_id).info.run_id
    beating = store.create_run(exp_id).info.run_id
    done = store.create_run(exp_id).info.run_id
    store.update_run_info(done, status="FINISHED", end_time=1)
    with store.engine.begin() as conn:  # another host's run that stopped beating 11 minutes ago
        conn.execute(update(t.runs).where(t.runs.c.run_id == stale).values(
            heartbeat_time=now_ms() - 11 * 60 * 1000, host="elsewhere", pid=1))
    store.heartbeat([beating])
    before = now_ms()
    marked = store.mark_orphans()
    assert killed in marked and stale in marked
    assert not {live, beating, done} & set(marked)
    for run_id in (killed, stale):
        info = store.get_run(run_id).info
        assert info.status == "KILLED" and before <= info.end_time <= now_ms()
    assert store.get_run(live).info.status == "RUNNING"
    assert store.get_run(beating).info.status == "RUNNING"
    assert store.get_run(done).info.status == "FINISHED" and store.get_run(done).info.end_time == 1
    assert not {killed, stale} & set(store.mark_orphans())  # already marked


def test_a_resumed_run_belongs_to_the_resuming_process(store, exp_id):
    """Its creator is dead and its last heartbeat old, but it is RUNNING again here: not an orphan."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    run_id = store.create_run(exp_id).info.run_id
    with store.engine.begin() as conn:
        conn.execute(update(t.runs).where(t.runs.c.run_id == run_id).values(
            pid=gone.pid, heartbeat_time=now_ms() - 60 * 60 * 1000))
    store.update_run_info(run_id, status="FINISHED", end_time=now_ms())
    assert run_id not in store.mark_orphans()  # not RUNNING: not an orphan either
    store.update_run_info(run_id, status="RUNNING")  # resumed
    assert run_id not in store.mark_orphans()
    assert store.get_run(run_id).info.status == "RUNNING"
    with store.engine.connect() as conn:
        row = conn.execute(select(t.runs.c.pid, t.runs.c.heartbeat_time).where(t.runs.c.run_id == run_id)).one()
    assert tuple(row) == (os.getpid(), None)


# the cache index -------------------------------------------------------------------------------

def test_cache_entries(store):
    from flowml.tracking.entities import CacheRecord

    key = unique("key")
    assert store.get_cache_entry(key) is None
    record = CacheRecord(key, "pipe", "node", '{"m": 1}', '{"o": 2}', None, 1.5, None)
    store.put_cache_entry(record)
    assert store.get_cache_entry(key) == record
    newer = CacheRecord(key, "pipe", "node", '{"m": 1}', '{"o": 3}', '{"acc": 1}', 2.0, "r" * 32)
    store.put_cache_entry(newer)
    assert store.get_cache_entry(key) == newer
    assert store.cache_outputs({key}) == ['{"o": 3}']


def test_store_opened_twice_shares_data(store_uri, tmp_path, exp_id, store):
    from flowml.tracking.sql.store import SqlStore

    run_id = store.create_run(exp_id).info.run_id
    other = SqlStore(store_uri, str(tmp_path / "artifacts"))
    try:
        other.log_metric(run_id, Metric("m", 1.0, 1, 0))
        assert store.get_run(run_id).data.metrics == {"m": 1.0}
    finally:
        other.close()


def test_log_inputs_links_a_dataset_to_runs_once(store, exp_id):
    from flowml.tracking.entities import Dataset, DatasetInput

    wine = DatasetInput(Dataset("wine", "abc123", "local", "data/wine.csv", '{"cols": 2}'),
                        {"mlflow.data.context": "training"})
    first, second = (store.create_run(exp_id).info.run_id for _ in range(2))
    store.log_inputs(first, [wine])
    store.log_inputs(first, [wine])  # again: nothing more
    store.log_inputs(second, [DatasetInput(wine.dataset)])
    assert store.get_run(first).inputs == [wine]
    assert store.get_run(second).inputs == [DatasetInput(wine.dataset)]
    assert store.search_runs([exp_id])[0][0].inputs in ([wine], [DatasetInput(wine.dataset)])
    store.delete_run(second)
    with fails(INVALID_STATE):
        store.log_inputs(second, [wine])
    with fails(INVALID):
        store.log_inputs(first, [DatasetInput(Dataset("", "d", "local", "s"))])
