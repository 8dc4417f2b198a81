"""search_runs filters and orders in SQL (flowml.tracking.sql.query), on SQLite and PostgreSQL.

Eight hand-made runs; every expected answer below was worked out from the table by hand.
Ordered string values are all lower case or all upper case letters, so that the answers do
not depend on the database's collation.

    run  name     status     user start  end   rmse  model         opt      source.type  team
    r1   Alpha    FINISHED   ann  1000   1500  0.5   LogReg        sgd      LOCAL        Vision
    r2   alpha-2  FINISHED   bob  2000   2600  0.25  logreg        adam     LOCAL        vision
    r3   beta     FAILED     ann  3000   3100  NaN   a*b           sgd      LOCAL        -
    r4   BETA_x   RUNNING    bob  4000   -     -1    my_model      -        LOCAL        -
    r5   gamma%   KILLED     cat  4000   4500  1e-3  myXmodel      lbfgs    JOB          -
    r6   delta    FINISHED   ann  6000   6100  0.5   [x]           adam     -            NLP
    r7   epsilon  FINISHED   cat  7000   -     -     -             -        -            -
    r8   zeta     SCHEDULED  bob  1000   1200  2.0   50%off        rmsprop  -            -

('-' is no such key, or a NULL end_time.) r4 also has the tag ``my key`` = ``v``; artifact
URIs are ``file:///a/<id>`` for r3 and r4, ``s3://b/<id>`` for the others.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, select

from flowml.tracking.search import parse_filter, parse_order_by
from flowml.tracking.sql import tables
from flowml.tracking.sql.query import apply_search

NAN = None  # a NaN metric as the store writes it

RUNS = {  # run_id: (run_name, status, user_id, start_time, end_time)
    "r1": ("Alpha", "FINISHED", "ann", 1000, 1500),
    "r2": ("alpha-2", "FINISHED", "bob", 2000, 2600),
    "r3": ("beta", "FAILED", "ann", 3000, 3100),
    "r4": ("BETA_x", "RUNNING", "bob", 4000, None),
    "r5": ("gamma%", "KILLED", "cat", 4000, 4500),
    "r6": ("delta", "FINISHED", "ann", 6000, 6100),
    "r7": ("epsilon", "FINISHED", "cat", 7000, None),
    "r8": ("zeta", "SCHEDULED", "bob", 1000, 1200),
}
RMSE = {"r1": 0.5, "r2": 0.25, "r3": NAN, "r4": -1.0, "r5": 1e-3, "r6": 0.5, "r8": 2.0}
PARAMS = [
    *[(r, "model", v) for r, v in {"r1": "LogReg", "r2": "logreg", "r3": "a*b", "r4": "my_model",
                                    "r5": "myXmodel", "r6": "[x]", "r8": "50%off"}.items()],
    *[(r, "opt", v) for r, v in {"r1": "sgd", "r2": "adam", "r3": "sgd", "r5": "lbfgs", "r6": "adam",
                                  "r8": "rmsprop"}.items()],
]
TAGS = [
    *[(r, "mlflow.source.type", "LOCAL") for r in ("r1", "r2", "r3", "r4")],
    ("r5", "mlflow.source.type", "JOB"),
    ("r1", "team", "Vision"), ("r2", "team", "vision"), ("r6", "team", "NLP"),
    ("r4", "my key", "v"),
]
ALL = set(RUNS)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request):
    """A fresh database of each kind holding the runs above."""
    url = "sqlite://" if request.param == "sqlite" else request.getfixturevalue("pg_database")
    engine = create_engine(url)
    tables.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(tables.experiments.insert(), [dict(
            experiment_id=1, name="e", artifact_location="s3://b", lifecycle_stage="active",
            creation_time=0, last_update_time=0)])
        conn.execute(tables.runs.insert(), [dict(
            run_id=run_id, experiment_id=1, run_name=name, user_id=user, status=status, start_time=start,
            end_time=end, lifecycle_stage="active",
            artifact_uri=f"file:///a/{run_id}" if run_id in ("r3", "r4") else f"s3://b/{run_id}",
        ) for run_id, (name, status, user, start, end) in RUNS.items()])
        conn.execute(tables.latest_metrics.insert(), [
            dict(run_id=r, key="rmse", value=v, timestamp=0, step=0) for r, v in RMSE.items()])
        conn.execute(tables.params.insert(), [dict(run_id=r, key=k, value=v) for r, k, v in PARAMS])
        conn.execute(tables.tags.insert(), [dict(run_id=r, key=k, value=v) for r, k, v in TAGS])
    yield engine
    engine.dispose()


def search(engine, filter_text: str = "", order_by: tuple[str, ...] = (), stmt=None) -> list[str]:
    stmt = apply_search(select(tables.runs.c.run_id) if stmt is None else stmt,
                        parse_filter(filter_text), parse_order_by(list(order_by)))
    with engine.connect() as conn:
        return list(conn.scalars(stmt))


@pytest.mark.parametrize("filter_text, expected", [
    # metrics: the latest value; NaN (r3) and a missing key (r7) match nothing, != included
    ("metrics.rmse > 0.4", {"r1", "r6", "r8"}),
    ("metrics.rmse = 0.5", {"r1", "r6"}),
    ("metrics.rmse != 0.5", {"r2", "r4", "r5", "r8"}),
    ("metrics.rmse < 0", {"r4"}),
    ("metrics.rmse <= 1e-3", {"r4", "r5"}),
    ("metrics.rmse >= -1", {"r1", "r2", "r4", "r5", "r6", "r8"}),
    ("metrics.rmse > -1", {"r1", "r2", "r5", "r6", "r8"}),
    ("metrics.rmse < 1e300", {"r1", "r2", "r4", "r5", "r6", "r8"}),
    ("metrics.nope > -1e300", set()),
    # params: = and != are case-sensitive; != needs the key (not r7)
    ("params.model = 'LogReg'", {"r1"}),
    ("params.model = 'logreg'", {"r2"}),
    ("params.opt = 'adam'", {"r2", "r6"}),
    ("params.opt != 'adam'", {"r1", "r3", "r5", "r8"}),
    ("params.model != 'LogReg'", {"r2", "r3", "r4", "r5", "r6", "r8"}),
    ("params.model = 'nope'", set()),
    # LIKE is case-sensitive, ILIKE not; _ is one character, \ escapes; GLOB's * ? [ are literal
    ("params.model LIKE 'Log%'", {"r1"}),
    ("params.model ILIKE 'log%'", {"r1", "r2"}),
    ("params.model ILIKE 'LOGREG'", {"r1", "r2"}),
    ("params.model LIKE 'my_model'", {"r4", "r5"}),
    ("params.model LIKE 'my\\_model'", {"r4"}),
    ("params.model LIKE '%\\%%'", {"r8"}),
    ("params.model LIKE 'a*b'", {"r3"}),
    ("params.model LIKE 'a_b'", {"r3"}),
    ("params.model LIKE '[x]'", {"r6"}),
    ("params.model LIKE '?x?'", set()),
    ("params.model LIKE '%'", {"r1", "r2", "r3", "r4", "r5", "r6", "r8"}),
    ("params.model IS NULL", {"r7"}),
    ("params.opt IS NULL", {"r4", "r7"}),
    ("params.opt IS NOT NULL", {"r1", "r2", "r3", "r5", "r6", "r8"}),
    # tags: dotted keys quoted or not, a key with a space
    ("tags.`mlflow.source.type` = 'LOCAL'", {"r1", "r2", "r3", "r4"}),
    ("tags.mlflow.source.type != 'LOCAL'", {"r5"}),
    ("tags.\"my key\" = 'v'", {"r4"}),
    ("tags.team LIKE 'V%'", {"r1"}),
    ("tags.team ILIKE 'v%'", {"r1", "r2"}),
    ("tags.team != 'NLP'", {"r1", "r2"}),
    ("tags.team IS NULL", {"r3", "r4", "r5", "r7", "r8"}),
    ("tags.team IS NOT NULL", {"r1", "r2", "r6"}),
    # string attributes
    ("status = 'FINISHED'", {"r1", "r2", "r6", "r7"}),
    ("attributes.status != 'FINISHED'", {"r3", "r4", "r5", "r8"}),
    ("run_name LIKE 'alpha%'", {"r2"}),
    ("run_name ILIKE 'alpha%'", {"r1", "r2"}),
    ("run_name ILIKE 'BETA%'", {"r3", "r4"}),
    ("run_name LIKE '%ta'", {"r3", "r6", "r8"}),
    ("run_name LIKE 'gamma_'", {"r5"}),
    ("run_name LIKE '%\\%'", {"r5"}),
    ("run_name = 'alpha'", set()),
    ("user_id = 'ann'", {"r1", "r3", "r6"}),
    ("attr.artifact_uri LIKE 'file://%'", {"r3", "r4"}),
    ("run_id = 'r5'", {"r5"}),
    ("run_id IN ('r1', 'r3', 'nope')", {"r1", "r3"}),
    ("run_id NOT IN ('r1', 'r3')", {"r2", "r4", "r5", "r6", "r7", "r8"}),
    # numeric attributes: a NULL end_time (still running) matches nothing, != included
    ("start_time > 3000", {"r4", "r5", "r6", "r7"}),
    ("start_time >= 3000", {"r3", "r4", "r5", "r6", "r7"}),
    ("created = 4000", {"r4", "r5"}),
    ("start_time > 1.5e3", {"r2", "r3", "r4", "r5", "r6", "r7"}),
    ("start_time < 1000.5", {"r1", "r8"}),
    ("end_time < 2000", {"r1", "r8"}),
    ("end_time != 1500", {"r2", "r3", "r5", "r6", "r8"}),
    # clauses are ANDed
    ("", ALL),
    ("metrics.rmse >= 0.001 and params.model ILIKE 'log%' and status = 'FINISHED'", {"r1", "r2"}),
    ("metrics.rmse > 0 AND tags.team IS NULL AND params.opt != 'sgd'", {"r5", "r8"}),
    ("params.opt = 'adam' AND params.opt = 'sgd'", set()),
])
def test_filter(engine, filter_text, expected):
    found = search(engine, filter_text)
    assert len(found) == len(set(found)), "a run was listed twice"
    assert set(found) == expected


@pytest.mark.parametrize("order_by, expected", [
    # the default: start_time DESC, then run_id (r4/r5 and r1/r8 start together)
    ((), ["r7", "r6", "r4", "r5", "r3", "r2", "r1", "r8"]),
    (("start_time",), ["r1", "r8", "r2", "r3", "r4", "r5", "r6", "r7"]),
    # a metric: ties (r1/r6 at 0.5) by start_time DESC; then NaN (r3), then no value (r7), both ways
    (("metrics.rmse",), ["r4", "r5", "r2", "r6", "r1", "r8", "r3", "r7"]),
    (("metrics.rmse DESC",), ["r8", "r6", "r1", "r2", "r5", "r4", "r3", "r7"]),
    # a param: runs without it (r7, r4) last either way, among themselves by start_time DESC
    (("params.opt ASC",), ["r6", "r2", "r5", "r8", "r3", "r1", "r7", "r4"]),
    (("params.opt DESC",), ["r3", "r1", "r8", "r5", "r6", "r2", "r7", "r4"]),
    (("tags.`mlflow.source.type`",), ["r5", "r4", "r3", "r2", "r1", "r7", "r6", "r8"]),
    (("tags.mlflow.source.type desc",), ["r4", "r3", "r2", "r1", "r5", "r7", "r6", "r8"]),
    # a nullable attribute: NULL end_times last either way
    (("end_time",), ["r8", "r1", "r2", "r3", "r5", "r6", "r7", "r4"]),
    (("end_time DESC",), ["r6", "r5", "r3", "r2", "r1", "r8", "r7", "r4"]),
    (("status",), ["r3", "r7", "r6", "r2", "r1", "r5", "r4", "r8"]),
    # several keys, each its own join
    (("status", "metrics.rmse DESC"), ["r3", "r6", "r1", "r2", "r7", "r5", "r4", "r8"]),
    (("params.opt", "metrics.rmse"), ["r2", "r6", "r5", "r8", "r1", "r3", "r4", "r7"]),
])
def test_order(engine, order_by, expected):
    assert search(engine, order_by=order_by) == expected


def test_filter_and_order_together(engine):
    assert search(engine, "params.opt IS NOT NULL", ["metrics.rmse"]) == ["r5", "r2", "r6", "r1", "r8", "r3"]
    assert search(engine, "metrics.rmse > 0.3", ["metrics.rmse DESC", "params.opt DESC"]) == ["r8", "r1", "r6"]


def test_caller_adds_its_own_where_limit_and_offset(engine):
    runs = tables.runs
    assert search(engine, stmt=select(runs.c.run_id).limit(3).offset(3)) == ["r5", "r3", "r2"]
    finished = select(runs.c.run_id).where(runs.c.status == "FINISHED").limit(2).offset(1)
    assert search(engine, "user_id != 'bob'", ["metrics.rmse"], stmt=finished) == ["r1", "r7"]
    # whole rows, not just ids, through the order joins
    rows = select(runs).where(runs.c.experiment_id == 1)
    with engine.connect() as conn:
        got = conn.execute(apply_search(rows, parse_filter("run_id IN ('r4', 'r7')"),
                                        parse_order_by(["metrics.rmse"]))).all()
    assert [(row.run_id, row.run_name) for row in got] == [("r4", "BETA_x"), ("r7", "epsilon")]
