"""Several processes writing to one tracking store at once lose nothing and fail nowhere.

The writers are real processes (``python -c``), started together from a go file so that
their writes overlap, while this process writes too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable

import pytest

from flowml.tracking.entities import Metric

ITERATIONS = 250  # two writes each: 500 writes per process

WORK = """
from flowml.tracking.entities import Metric

def work(store, tag, own, shared, iterations):
    for i in range(iterations):
        ts = 1000 + i
        store.log_metric(own, Metric("m", float(i), ts, i))
        # Keys every writer updates, in an order that depends on the writer: their rows (latest
        # values, tags) are contended, and locked in opposite orders unless the store sorts them.
        common = [Metric(f"common_{k}", float(tag), ts, i) for k in range(8)]
        shared_tags = {f"s{k}": tag for k in range(8)}
        if tag % 2:
            common, shared_tags = common[::-1], dict(reversed(shared_tags.items()))
        # A param every writer logs (same value): a race between the check and the insert.
        store.log_batch(shared, metrics=[Metric(f"w{tag}", float(i), ts, i), *common],
                        params={f"p{tag}_{i}": i, f"same_{i}": i}, tags={**shared_tags, f"t{tag}": i})
"""
_namespace: dict = {}
exec(compile(WORK, "<work>", "exec"), _namespace)  # the same code, for this process
work: Callable = _namespace["work"]

WRITER = WORK + """
import os, sys, time
from flowml.tracking.sql.store import SqlStore

uri, root, tag, own, shared, iterations, go = sys.argv[1:]
store = SqlStore(uri, root)
while not os.path.exists(go):
    time.sleep(0.005)
work(store, int(tag), own, shared, int(iterations))
print("done", flush=True)
"""


def _run_writers(store, exp_id: str, tmp_path: Path, workers: int = 2) -> tuple[dict[int, str], str]:
    """``workers`` processes and this one, each logging to its own run and to a shared one."""
    shared = store.create_run(exp_id, run_name="shared").info.run_id
    own = {tag: store.create_run(exp_id, run_name=f"own{tag}").info.run_id for tag in range(workers + 1)}
    go = tmp_path / f"go-{uuid.uuid4().hex}"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, store.url, str(tmp_path / "artifacts"), str(tag),
                               own[tag], shared, str(ITERATIONS), str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for tag in range(1, workers + 1)]
    try:
        time.sleep(0.3)  # let the workers import and open the store
        go.touch()
        work(store, 0, own[0], shared, ITERATIONS)
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0 and out.strip() == "done", err
            assert "locked" not in err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return own, shared


def _check_nothing_lost(store, own: dict[int, str], shared: str) -> None:
    steps = list(range(ITERATIONS))
    for tag, run_id in own.items():
        history = store.get_metric_history(run_id, "m")
        assert [m.step for m in history] == steps, f"own run of writer {tag}"
        assert store.get_run(run_id).data.metrics == {"m": float(ITERATIONS - 1)}
    run = store.get_run(shared)
    tags = set(own)
    for tag in tags:
        assert [m.value for m in store.get_metric_history(shared, f"w{tag}")] == [float(i) for i in steps]
        assert run.data.metrics[f"w{tag}"] == float(ITERATIONS - 1)
        assert run.data.tags[f"t{tag}"] == str(ITERATIONS - 1)
    assert run.data.params == {**{f"p{tag}_{i}": str(i) for tag in tags for i in steps},
                               **{f"same_{i}": str(i) for i in steps}}
    for key in (f"common_{k}" for k in range(8)):
        assert len(store.get_metric_history(shared, key)) == ITERATIONS * len(tags)
        # Latest: the last step, at the same timestamp from everyone, so the greatest value (writer tag).
        latest = run.data.latest[key]
        assert (latest.step, latest.timestamp, latest.value) == (ITERATIONS - 1, 1000 + ITERATIONS - 1,
                                                                 float(max(tags)))
    assert {run.data.tags[f"s{k}"] for k in range(8)} <= {str(tag) for tag in tags}


def test_concurrent_writers_lose_nothing(store, exp_id, tmp_path):
    own, shared = _run_writers(store, exp_id, tmp_path)
    _check_nothing_lost(store, own, shared)


SET_EXPERIMENT = """
import json, os, sys, time
go, names = sys.argv[1], sys.argv[2:]
import flowml
while not os.path.exists(go):
    time.sleep(0.002)
print(json.dumps({name: flowml.set_experiment(name).experiment_id for name in names}), flush=True)
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_uri(request, tmp_path) -> str:
    """A database nobody has opened yet: the first opening (migration) races too."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    return request.getfixturevalue("pg_database")


def test_processes_creating_the_same_experiments_agree(fresh_uri, tmp_path):
    names = [f"race-{i}" for i in range(15)]
    go = tmp_path / "go"
    env = {**os.environ, "FLOWML_TRACKING_URI": fresh_uri, "FLOWML_ARTIFACT_ROOT": str(tmp_path / "artifacts")}
    for var in ("FLOWML_RUN_ID", "MLFLOW_RUN_ID", "FLOWML_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(var, None)
    procs = [subprocess.Popen([sys.executable, "-c", SET_EXPERIMENT, str(go), *names], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    try:
        time.sleep(0.4)
        go.touch()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            results.append(json.loads(out))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert results[0] == results[1] == results[2]
    from flowml.tracking.sql.store import SqlStore

    store = SqlStore(fresh_uri, str(tmp_path / "artifacts"))
    try:
        found, _ = store.search_experiments()
        made = {e.name: e.experiment_id for e in found}
        assert made == {"Default": "0", **results[0]}
        assert len(set(made.values())) == len(names) + 1
    finally:
        store.close()


def test_same_run_from_two_threads(store, exp_id):
    """Threads share one store (one engine, several connections)."""
    import threading

    run_id = store.create_run(exp_id).info.run_id
    errors = []

    def log(tag: int) -> None:
        try:
            for i in range(100):
                store.log_batch(run_id, metrics=[Metric(f"m{tag}", float(i), 1, i), Metric("shared", float(i), 1, i)],
                                params={f"p{tag}_{i}": i})
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=log, args=(tag,)) for tag in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    run = store.get_run(run_id)
    assert len(run.data.params) == 300
    assert run.data.metrics == {"m0": 99.0, "m1": 99.0, "m2": 99.0, "shared": 99.0}
    assert len(store.get_metric_history(run_id, "shared")) == 300



def test_switching_to_wal_retries_while_sqlite_answers_locked(tmp_path):
    """Regression (a flaky CI run: two `flowml run` at once on a new store): SQLite may answer
    "database is locked" to the switch to WAL at once, without its busy timeout, when another
    process opens the same new database. The race needs a loaded machine to show, so a real
    cursor is made to answer as SQLite did, twice, before it lets the switch through."""
    import sqlite3

    from flowml.tracking.sql.database import _enter_wal

    class RacingCursor:
        def __init__(self, cursor, refusals):
            self.cursor, self.refusals = cursor, refusals

        def execute(self, sql):
            if self.refusals:
                self.refusals -= 1
                raise sqlite3.OperationalError("database is locked")
            return self.cursor.execute(sql)

    connection = sqlite3.connect(tmp_path / "new.db")
    racing = RacingCursor(connection.cursor(), refusals=2)
    _enter_wal(racing)
    assert racing.refusals == 0
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)

    class BrokenCursor:
        def execute(self, sql):
            raise sqlite3.OperationalError("disk I/O error")

    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        _enter_wal(BrokenCursor())  # not a lock: no retry, no wait
