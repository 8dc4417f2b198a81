"""The SQL tracking store (SQLite by default, PostgreSQL for a team), on SQLAlchemy Core.

Every public method is one transaction. Writes check the run is active first (a deleted run
takes no more data, as in MLflow). ``log_batch`` inserts its metrics with one executemany
and updates each key's latest value with one upsert per key, which is what makes 200,000
metrics a second possible; searches filter and order in SQL (:mod:`flowml.tracking.sql.query`)
and then load the page's params, tags and latest metrics in three queries.
"""

from __future__ import annotations

import functools
import math
import os
import socket
import uuid
from typing import Iterable, Sequence

from sqlalchemy import Connection, delete, func, insert, literal, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from flowml.errors import TrackingError
from flowml.processes import alive
from flowml.tracking import validation as check
from flowml.tracking.entities import (CacheRecord, Experiment, LifecycleStage, Metric, Run, RunData, RunInfo,
                                      RunStatus, ViewType, collector_paused, now_ms, DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME)
from flowml.tracking.names import random_run_name
from flowml.tracking.search import SEARCH_MAX_RESULTS
from flowml.tracking.sql import tables as t
from flowml.tracking.sql.database import make_engine, reporting_errors, writing
from flowml.tracking.sql.datasets import DatasetStore
from flowml.tracking.sql.logged_models import LoggedModelStore
from flowml.tracking.sql.run_models import RunModelStore
from flowml.tracking.sql.tokens import TokenStore

NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
EXISTS = "RESOURCE_ALREADY_EXISTS"


@reporting_errors
class SqlStore(LoggedModelStore, TokenStore, DatasetStore, RunModelStore):
    """Tracking data in the database at ``url``; artifacts of new experiments under ``artifact_root``."""

    def __init__(self, url: str, artifact_root: str) -> None:
        self.url = url
        self.artifact_root = artifact_root.rstrip("/")
        self.engine = make_engine(url)
        self.dialect = self.engine.dialect.name
        self._ensure_default_experiment()

    # Whether the processes calling this store write the runs they create (a script, flowml run),
    # so their host and pid identify a run's writer. A server sets it False: its callers are
    # remote, and its own pid says nothing about whether they are alive.
    local_writers = True

    def close(self) -> None:
        self.engine.dispose()

    def _writer(self) -> dict:
        if not self.local_writers:
            return {"host": None, "pid": None}
        return {"host": socket.gethostname(), "pid": os.getpid()}

    # experiments ---------------------------------------------------------------------

    def _ensure_default_experiment(self) -> None:
        with self.engine.connect() as conn:
            if conn.execute(select(t.experiments.c.experiment_id).where(t.experiments.c.experiment_id == 0)).first():
                return
        with writing(self.engine) as conn:
            now = now_ms()
            # DO NOTHING: another process opening a new PostgreSQL database may insert it first.
            conn.execute(_dialect_insert(conn, t.experiments).values(
                experiment_id=0, name=DEFAULT_EXPERIMENT_NAME, artifact_location=self._location("0"),
                lifecycle_stage=LifecycleStage.ACTIVE, creation_time=now, last_update_time=now,
            ).on_conflict_do_nothing())

    def _location(self, experiment_id: str) -> str:
        return f"{self.artifact_root}/{experiment_id}"

    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: dict[str, str] | None = None) -> str:
        check.experiment_name(name)
        tags = {check.check_key("tag", k): check.tag_value(k, v) for k, v in (tags or {}).items()}
        now = now_ms()
        try:
            with writing(self.engine) as conn:
                row = conn.execute(select(t.experiments.c.lifecycle_stage).where(t.experiments.c.name == name)).first()
                if row is not None:
                    state = " in the deleted state (restore it or pick another name)" if row[0] == "deleted" else ""
                    raise TrackingError(f"experiment '{name}' already exists{state}", EXISTS)
                new_id = conn.execute(insert(t.experiments).values(
                    name=name, artifact_location=artifact_location or "", lifecycle_stage=LifecycleStage.ACTIVE,
                    creation_time=now, last_update_time=now).returning(t.experiments.c.experiment_id)).scalar_one()
                if not artifact_location:
                    conn.execute(update(t.experiments).where(t.experiments.c.experiment_id == new_id)
                                 .values(artifact_location=self._location(str(new_id))))
                if tags:
                    conn.execute(insert(t.experiment_tags), [{"experiment_id": new_id, "key": k, "value": v}
                                                             for k, v in tags.items()])
        except IntegrityError:
            # Made by another writer between the check and the insert (PostgreSQL: its writers
            # do not queue as SQLite's do); the unique name is the arbiter.
            raise TrackingError(f"experiment '{name}' already exists", EXISTS) from None
        return str(new_id)

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self.engine.connect() as conn:
            found = self._experiments(conn, _experiment_rows().where(
                t.experiments.c.experiment_id == _int_id(experiment_id)))
        if not found:
            raise TrackingError(f"no experiment with id '{experiment_id}'", NOT_FOUND)
        return found[0]

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self.engine.connect() as conn:
            found = self._experiments(conn, _experiment_rows().where(t.experiments.c.name == name))
        return found[0] if found else None

    def search_experiments(self, view_type: str = ViewType.ACTIVE_ONLY, max_results: int = 1000,
                           filter_string: str | None = None, order_by: Sequence[str] | None = None,
                           page_token: str | None = None) -> tuple[list[Experiment], str | None]:
        """One page of experiments matching ``filter_string`` (MLflow's experiment grammar), by
        default newest first, and the next page's token."""
        from flowml.tracking.search import (EXPERIMENTS, decode_page_token, encode_page_token, parse_filter,
                                            parse_order_by)
        from flowml.tracking.sql.query import apply_experiment_search

        if not 1 <= int(max_results) <= SEARCH_MAX_RESULTS:
            raise TrackingError(f"max_results must be between 1 and {SEARCH_MAX_RESULTS}, got {max_results}")
        offset = decode_page_token(page_token)
        stmt = _experiment_rows().where(t.experiments.c.lifecycle_stage.in_(ViewType.stages(view_type)))
        stmt = apply_experiment_search(stmt, parse_filter(filter_string or "", EXPERIMENTS),
                                       parse_order_by(list(order_by or []), EXPERIMENTS))
        with self.engine.connect() as conn:
            found = self._experiments(conn, stmt.limit(max_results + 1).offset(offset))
        more = len(found) > max_results
        return found[:max_results], encode_page_token(offset + max_results) if more else None

    def _experiments(self, conn: Connection, stmt) -> list[Experiment]:
        """The experiments ``stmt`` (from :func:`_experiment_rows`) selects, in its order, with their tags."""
        found = {str(r[0]): Experiment(str(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in conn.execute(stmt)}
        et = t.experiment_tags.c
        for some in _chunks([int(i) for i in found]):
            for exp_id, key, value in conn.execute(select(et.experiment_id, et.key, et.value)
                                                   .where(et.experiment_id.in_(some))):
                found[str(exp_id)].tags[key] = value
        return list(found.values())

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        check.experiment_name(new_name)
        try:
            with writing(self.engine) as conn:
                exp = self._experiment_row(conn, experiment_id)
                if exp.lifecycle_stage != LifecycleStage.ACTIVE:
                    raise TrackingError(f"experiment '{experiment_id}' is deleted; restore it before renaming",
                                        "INVALID_STATE")
                clash = conn.execute(select(t.experiments.c.experiment_id)
                                     .where(t.experiments.c.name == new_name)).first()
                if clash is not None and str(clash[0]) != str(experiment_id):
                    raise TrackingError(f"experiment '{new_name}' already exists", EXISTS)
                conn.execute(update(t.experiments).where(t.experiments.c.experiment_id == _int_id(experiment_id))
                             .values(name=new_name, last_update_time=now_ms()))
        except IntegrityError:  # the name was taken meanwhile (see create_experiment)
            raise TrackingError(f"experiment '{new_name}' already exists", EXISTS) from None

    def delete_experiment(self, experiment_id: str) -> None:
        """Soft delete: the experiment and its runs are hidden, not removed (restore brings them back)."""
        if str(experiment_id) == DEFAULT_EXPERIMENT_ID:
            raise TrackingError("the Default experiment cannot be deleted")
        self._set_experiment_stage(experiment_id, LifecycleStage.DELETED)

    def restore_experiment(self, experiment_id: str) -> None:
        self._set_experiment_stage(experiment_id, LifecycleStage.ACTIVE)

    def _set_experiment_stage(self, experiment_id: str, stage: str) -> None:
        """Delete or restore an experiment with its runs. Runs deleted on their own before the
        experiment was deleted stay deleted on restore (as in MLflow): only runs whose deletion
        time is the experiment's come back."""
        now = now_ms()
        exp_id = _int_id(experiment_id)
        r = t.runs.c
        with writing(self.engine) as conn:
            exp = self._experiment_row(conn, experiment_id)
            conn.execute(update(t.experiments).where(t.experiments.c.experiment_id == exp_id)
                         .values(lifecycle_stage=stage, last_update_time=now))
            if stage == LifecycleStage.DELETED:
                conn.execute(update(t.runs).where(r.experiment_id == exp_id, r.lifecycle_stage == LifecycleStage.ACTIVE)
                             .values(lifecycle_stage=stage, deleted_time=now))
            else:
                conn.execute(update(t.runs).where(r.experiment_id == exp_id, r.deleted_time >= exp.last_update_time)
                             .values(lifecycle_stage=stage, deleted_time=None))

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        check.check_key("tag", key)
        with writing(self.engine) as conn:
            self._experiment_row(conn, experiment_id)
            _upsert(conn, t.experiment_tags, {"experiment_id": _int_id(experiment_id), "key": key,
                                              "value": check.tag_value(key, value)}, ["experiment_id", "key"])

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        with writing(self.engine) as conn:
            self._experiment_row(conn, experiment_id)
            gone = conn.execute(delete(t.experiment_tags).where(t.experiment_tags.c.experiment_id == _int_id(experiment_id),
                                                                t.experiment_tags.c.key == key)).rowcount
        if not gone:
            raise TrackingError(f"no tag '{key}' on experiment '{experiment_id}'", NOT_FOUND)

    def _experiment_row(self, conn: Connection, experiment_id: str):
        row = conn.execute(select(t.experiments).where(t.experiments.c.experiment_id == _int_id(experiment_id))).first()
        if row is None:
            raise TrackingError(f"no experiment with id '{experiment_id}'", NOT_FOUND)
        return row

    # runs ----------------------------------------------------------------------------

    def create_run(self, experiment_id: str, user_id: str = "", start_time: int | None = None,
                   tags: dict[str, str] | None = None, run_name: str | None = None,
                   params: dict[str, str] | None = None, heartbeat: bool = False) -> Run:
        """A new RUNNING run. ``mlflow.runName`` and the run name agree, as in MLflow; the
        creating process's host and pid are kept, to find it again if that process dies.
        With ``heartbeat``, the creator promises to call :meth:`heartbeat` (a pipeline run
        does), so that silence marks it dead even seen from another host."""
        tags = {check.check_key("tag", k): check.tag_value(k, v) for k, v in (tags or {}).items()}
        name = run_name or tags.get("mlflow.runName") or random_run_name()
        check.run_name(name)
        user_id = check.user_id(user_id)
        tags["mlflow.runName"] = name
        params = {check.check_key("param", k): check.param_value(k, v) for k, v in (params or {}).items()}
        run_id = uuid.uuid4().hex
        start = check.int64("start_time", start_time) if start_time is not None else now_ms()
        with writing(self.engine) as conn:
            exp = self._experiment_row(conn, experiment_id)
            if exp.lifecycle_stage != LifecycleStage.ACTIVE:
                raise TrackingError(f"experiment '{exp.name}' is deleted; restore it to add runs", "INVALID_STATE")
            artifact_uri = f"{exp.artifact_location}/{run_id}/artifacts"
            conn.execute(insert(t.runs).values(
                run_id=run_id, experiment_id=exp.experiment_id, run_name=name, user_id=user_id or "",
                status=RunStatus.RUNNING, start_time=start, end_time=None, artifact_uri=artifact_uri,
                lifecycle_stage=LifecycleStage.ACTIVE, **self._writer(),
                heartbeat_time=start if heartbeat else None))
            conn.execute(insert(t.tags), [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()])
            if params:
                conn.execute(insert(t.params), [{"run_id": run_id, "key": k, "value": v} for k, v in params.items()])
        info = RunInfo(run_id, str(exp.experiment_id), name, user_id or "", RunStatus.RUNNING, start, None,
                       artifact_uri, LifecycleStage.ACTIVE)
        return Run(info, RunData(params=params, tags=tags))

    def get_run(self, run_id: str) -> Run:
        with self.engine.connect() as conn:
            found = self._load_runs(conn, [run_id])
        if not found:
            raise TrackingError(f"no run with id '{run_id}'", NOT_FOUND)
        return found[0]

    def update_run_info(self, run_id: str, status: str | None = None, end_time: int | None = None,
                        run_name: str | None = None) -> RunInfo:
        """Change a run's status, end time or name. Setting RUNNING (resuming a run) makes this
        process the run's writer, so that :meth:`mark_orphans` does not take it for dead because
        the process that created it, or its last heartbeat, is gone."""
        values: dict = {}
        if status is not None:
            if status not in RunStatus.ALL:
                raise TrackingError(f"invalid run status '{status}'; expected one of {', '.join(RunStatus.ALL)}")
            values["status"] = status
            if status == RunStatus.RUNNING:
                values.update(**self._writer(), heartbeat_time=None)
        if end_time is not None:
            values["end_time"] = check.int64("end_time", end_time)
        with writing(self.engine) as conn:
            self._active_run(conn, run_id)
            if run_name:
                values["run_name"] = check.run_name(run_name)
                _upsert(conn, t.tags, {"run_id": run_id, "key": "mlflow.runName", "value": run_name}, ["run_id", "key"])
            if values:
                conn.execute(update(t.runs).where(t.runs.c.run_id == run_id).values(**values))
            r = t.runs.c
            row = conn.execute(select(r.run_id, r.experiment_id, r.run_name, r.user_id, r.status, r.start_time,
                                      r.end_time, r.artifact_uri, r.lifecycle_stage).where(r.run_id == run_id)).one()
        return RunInfo(row[0], str(row[1]), *row[2:])

    def delete_run(self, run_id: str) -> None:
        self._set_run_stage(run_id, LifecycleStage.DELETED)

    def restore_run(self, run_id: str) -> None:
        self._set_run_stage(run_id, LifecycleStage.ACTIVE)

    def _set_run_stage(self, run_id: str, stage: str) -> None:
        with writing(self.engine) as conn:
            self._run_row(conn, run_id)
            conn.execute(update(t.runs).where(t.runs.c.run_id == run_id).values(
                lifecycle_stage=stage, deleted_time=now_ms() if stage == LifecycleStage.DELETED else None))

    def heartbeat(self, run_ids: Sequence[str]) -> None:
        """Say that the process writing these runs is alive (see :meth:`mark_orphans`)."""
        with writing(self.engine) as conn:
            conn.execute(update(t.runs).where(t.runs.c.run_id.in_(list(run_ids))).values(heartbeat_time=now_ms()))

    def mark_orphans(self, stale_after_ms: int = 10 * 60 * 1000) -> list[str]:
        """Mark as KILLED the RUNNING runs whose process is gone: a dead pid on this host, or a
        heartbeat older than ``stale_after_ms``. Returns their ids."""
        r = t.runs.c
        host, now = socket.gethostname(), now_ms()
        with self.engine.connect() as conn:
            rows = conn.execute(select(r.run_id, r.host, r.pid, r.heartbeat_time).where(r.status == RunStatus.RUNNING)).all()
        dead = [run_id for run_id, run_host, pid, beat in rows
                if (beat is not None and beat < now - stale_after_ms)
                or (run_host == host and pid is not None and not alive(pid))]
        if dead:
            with writing(self.engine) as conn:
                for some in _chunks(dead):
                    conn.execute(update(t.runs).where(r.run_id.in_(some), r.status == RunStatus.RUNNING)
                                 .values(status=RunStatus.KILLED, end_time=now))
        return dead

    def _run_row(self, conn: Connection, run_id: str):
        row = conn.execute(select(t.runs.c.lifecycle_stage, t.runs.c.status).where(t.runs.c.run_id == run_id)).first()
        if row is None:
            raise TrackingError(f"no run with id '{run_id}'", NOT_FOUND)
        return row

    def _active_run(self, conn: Connection, run_id: str) -> None:
        if self._run_row(conn, run_id)[0] != LifecycleStage.ACTIVE:
            raise TrackingError(f"run '{run_id}' is deleted; restore it to change it", "INVALID_STATE")

    # params, tags, metrics -----------------------------------------------------------

    def log_param(self, run_id: str, key: str, value: object) -> None:
        self.log_batch(run_id, params={key: value})

    def set_tag(self, run_id: str, key: str, value: object) -> None:
        self.log_batch(run_id, tags={key: value})

    def delete_tag(self, run_id: str, key: str) -> None:
        with writing(self.engine) as conn:
            self._active_run(conn, run_id)
            gone = conn.execute(delete(t.tags).where(t.tags.c.run_id == run_id, t.tags.c.key == key)).rowcount
        if not gone:
            raise TrackingError(f"no tag '{key}' on run '{run_id}'", NOT_FOUND)

    def log_metric(self, run_id: str, metric: Metric) -> None:
        self.log_batch(run_id, metrics=[metric])

    def log_batch(self, run_id: str, metrics: Iterable[Metric] = (), params: dict[str, object] | None = None,
                  tags: dict[str, object] | None = None) -> None:
        """Log metrics, params and tags in one transaction; all or nothing.

        A param logged again with the same value is fine; with another value it is an error
        (params describe how a run was made, so they never change), as in MLflow.
        """
        rows = _metric_rows(run_id, metrics)
        param_rows = {check.check_key("param", k): check.param_value(k, v) for k, v in (params or {}).items()}
        tag_rows = {check.check_key("tag", k): check.tag_value(k, v) for k, v in (tags or {}).items()}
        if "mlflow.runName" in tag_rows:  # it is the run's name too
            check.run_name(tag_rows["mlflow.runName"])
        with writing(self.engine) as conn:
            self._active_run(conn, run_id)
            if param_rows:
                self._insert_params(conn, run_id, param_rows)
            if tag_rows:
                # One statement for all, in key order: one lock order for all writers, so no deadlock.
                conn.execute(_tag_upsert(conn.dialect.name),
                             [{"run_id": run_id, "key": k, "value": tag_rows[k]} for k in sorted(tag_rows)])
                if "mlflow.runName" in tag_rows:
                    conn.execute(update(t.runs).where(t.runs.c.run_id == run_id)
                                 .values(run_name=tag_rows["mlflow.runName"]))
            if rows:
                # Plain tuples straight to the driver: SQLAlchemy's per-row parameter handling
                # would cost more than the insert itself for a batch of thousands.
                conn.exec_driver_sql(_insert_metrics_sql(conn.dialect.paramstyle), rows)
                self._update_latest(conn, run_id, rows)

    def _insert_params(self, conn: Connection, run_id: str, values: dict[str, str]) -> None:
        p = t.params.c
        have = dict(conn.execute(select(p.key, p.value).where(p.run_id == run_id, p.key.in_(list(values)))).all())
        _check_params(run_id, values, have)
        new = [{"run_id": run_id, "key": k, "value": values[k]} for k in sorted(values) if k not in have]
        if new:
            # DO NOTHING and a second look: on PostgreSQL another writer may log the same key
            # between the SELECT above and this INSERT (SQLite's writers queue, so it cannot).
            conn.execute(_dialect_insert(conn, t.params).on_conflict_do_nothing(index_elements=["run_id", "key"]), new)
            if conn.dialect.name != "sqlite":
                keys = [row["key"] for row in new]
                _check_params(run_id, values, dict(conn.execute(
                    select(p.key, p.value).where(p.run_id == run_id, p.key.in_(keys))).all()))

    def _update_latest(self, conn: Connection, run_id: str, rows: list[tuple]) -> None:
        """Keep, per key, the value with the greatest (step, timestamp, value), as MLflow does:
        one upsert per key that only replaces an older value (safe against concurrent writers)."""
        best: dict[str, tuple] = {}
        for row in rows:
            old = best.get(row[1])
            if old is None or _rank(row) > _rank(old):
                best[row[1]] = row
        # In key order: one lock order for all writers, so two batches never deadlock (PostgreSQL).
        conn.execute(_latest_upsert(conn.dialect.name),
                     [dict(zip(_METRIC_COLUMNS, best[key])) for key in sorted(best)])

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every value of ``key``, by step, built with the collector paused (see
        :func:`collector_paused`)."""
        m = t.metrics.c
        stmt = (select(m.value, m.timestamp, m.step).where(m.run_id == run_id, m.key == key)
                .order_by(m.step, m.timestamp, m.id))
        with self.engine.connect() as conn:
            self._run_row(conn, run_id)
            with collector_paused():
                rows = conn.execute(stmt).all()
                nan = math.nan
                return [Metric(key, nan if v is None else v, ts, st) for v, ts, st in rows]

    def metric_points(self, run_ids: Sequence[str], key: str) -> dict[str, list[tuple[int, int, float]]]:
        """``key``'s history in each of ``run_ids`` that exists, as plain ``(step, timestamp,
        value)`` tuples by step (an empty list for a run without the key; unknown ids left out).

        For the UI's charts, which overlay several runs and thin long histories out before
        sending them: building a :class:`Metric` per point is most of what
        :meth:`get_metric_history` costs on a history of 100,000 points."""
        r, m = t.runs.c, t.metrics.c
        wanted = list(dict.fromkeys(run_ids))
        found: dict[str, list] = {}
        with self.engine.connect() as conn:
            for some in _chunks(wanted):
                found.update((i, []) for i in conn.execute(select(r.run_id).where(r.run_id.in_(some))).scalars())
            with collector_paused():
                for run_id in found:
                    rows = conn.execute(select(m.step, m.timestamp, m.value).where(m.run_id == run_id, m.key == key)
                                        .order_by(m.step, m.timestamp, m.id)).all()
                    found[run_id] = [(st, ts, math.nan if v is None else v) for st, ts, v in rows]
        return {i: found[i] for i in wanted if i in found}

    # search --------------------------------------------------------------------------

    def search_runs(self, experiment_ids: Sequence[str], filter_string: str = "",
                    run_view_type: str = ViewType.ACTIVE_ONLY, max_results: int = 1000,
                    order_by: Sequence[str] | None = None, page_token: str | None = None) -> tuple[list[Run], str | None]:
        """One page of runs matching ``filter_string`` (MLflow's grammar), and the next page's token."""
        from flowml.tracking.search import decode_page_token, encode_page_token, parse_filter, parse_order_by
        from flowml.tracking.sql.query import apply_search

        if not 1 <= int(max_results) <= SEARCH_MAX_RESULTS:
            raise TrackingError(f"max_results must be between 1 and {SEARCH_MAX_RESULTS}, got {max_results}")
        offset = decode_page_token(page_token)
        stmt = select(t.runs.c.run_id).where(
            t.runs.c.experiment_id.in_([_int_id(e) for e in experiment_ids]),
            t.runs.c.lifecycle_stage.in_(ViewType.stages(run_view_type)))
        stmt = apply_search(stmt, parse_filter(filter_string or ""), parse_order_by(list(order_by or [])))
        with self.engine.connect() as conn:
            ids = list(conn.execute(stmt.limit(max_results + 1).offset(offset)).scalars())
            more = len(ids) > max_results
            runs = self._load_runs(conn, ids[:max_results])
        return runs, encode_page_token(offset + max_results) if more else None

    def count_runs(self, experiment_ids: Sequence[str], filter_string: str = "",
                   run_view_type: str = ViewType.ACTIVE_ONLY) -> int:
        """How many runs :meth:`search_runs` would page through (the UI's "1-100 of N")."""
        from flowml.tracking.search import parse_filter
        from flowml.tracking.sql.query import apply_search

        stmt = select(t.runs.c.run_id).where(
            t.runs.c.experiment_id.in_([_int_id(e) for e in experiment_ids]),
            t.runs.c.lifecycle_stage.in_(ViewType.stages(run_view_type)))
        stmt = apply_search(stmt, parse_filter(filter_string or ""), []).order_by(None)
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()

    def _load_runs(self, conn: Connection, run_ids: list[str]) -> list[Run]:
        """Runs by id, in the order given, with their params, tags, latest metrics, inputs and outputs."""
        if not run_ids:
            return []
        r = t.runs.c
        lm = t.latest_metrics.c
        found: dict[str, Run] = {}
        # In slices: one IN list per page would pass SQLite's limit on bound parameters (32,766
        # in most builds, 999 in old ones) for the big pages search_runs allows.
        for some in _chunks(run_ids):
            rows = conn.execute(select(r.run_id, r.experiment_id, r.run_name, r.user_id, r.status, r.start_time,
                                       r.end_time, r.artifact_uri, r.lifecycle_stage).where(r.run_id.in_(some)))
            found.update((row[0], Run(RunInfo(row[0], str(row[1]), *row[2:]), RunData())) for row in rows)
            for run_id, key, value in conn.execute(select(t.params).where(t.params.c.run_id.in_(some))):
                found[run_id].data.params[key] = value
            for run_id, key, value in conn.execute(select(t.tags).where(t.tags.c.run_id.in_(some))):
                found[run_id].data.tags[key] = value
            for run_id, key, value, ts, step in conn.execute(
                    select(lm.run_id, lm.key, lm.value, lm.timestamp, lm.step).where(lm.run_id.in_(some))):
                data = found[run_id].data
                data.metrics[key] = math.nan if value is None else value
                data.latest[key] = Metric(key, data.metrics[key], ts, step)
            self._attach_inputs(conn, found, some)
            self._attach_models(conn, found, some)
        return [found[i] for i in run_ids if i in found]

    def child_runs(self, run_id: str) -> list[Run]:
        """Runs tagged with ``mlflow.parentRunId`` = ``run_id``, oldest first."""
        tg = t.tags.c
        with self.engine.connect() as conn:
            ids = list(conn.execute(
                select(tg.run_id).join(t.runs, t.runs.c.run_id == tg.run_id)
                .where(tg.key == "mlflow.parentRunId", tg.value == run_id)
                .order_by(t.runs.c.start_time, t.runs.c.run_id)).scalars())
            return self._load_runs(conn, ids)

    def experiment_stats(self) -> dict[str, tuple[int, int | None]]:
        """Per experiment: how many active runs it has, and when the latest one started."""
        r = t.runs.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(r.experiment_id, func.count(), func.max(r.start_time))
                                .where(r.lifecycle_stage == LifecycleStage.ACTIVE).group_by(r.experiment_id))
            return {str(exp_id): (count, last) for exp_id, count, last in rows}

    # cache index ---------------------------------------------------------------------

    def get_cache_entry(self, key: str) -> CacheRecord | None:
        c = t.cache_entries.c
        with self.engine.connect() as conn:
            row = conn.execute(select(c.key, c.pipeline, c.node, c.manifest, c.outputs, c.metrics, c.duration_s,
                                      c.run_id).where(c.key == key)).first()
        return CacheRecord(*row) if row else None

    def put_cache_entry(self, record: CacheRecord) -> None:
        values = {"key": record.key, "pipeline": record.pipeline, "node": record.node, "manifest": record.manifest,
                  "outputs": record.outputs, "metrics": record.metrics, "duration_s": record.duration_s,
                  "run_id": record.run_id, "created_at": now_ms()}
        with writing(self.engine) as conn:
            _upsert(conn, t.cache_entries, values, ["key"])

    def cache_outputs(self, keys: set[str] | None = None) -> list[str]:
        """The outputs JSON of every cache entry (or of ``keys``), for garbage collection."""
        c = t.cache_entries.c
        with self.engine.connect() as conn:
            if keys is None:
                return list(conn.execute(select(c.outputs)).scalars())
            return [outputs for some in _chunks(sorted(keys))
                    for outputs in conn.execute(select(c.outputs).where(c.key.in_(some))).scalars()]

    def drop_cache_entries(self, keep: set[str], dry_run: bool = False) -> int:
        """Delete every cache entry whose key is not in ``keep``; returns how many (would) go."""
        c = t.cache_entries.c
        with writing(self.engine) as conn:
            keys = [k for k in conn.execute(select(c.key)).scalars() if k not in keep]
            for start in range(0, len(keys) if not dry_run else 0, 500):
                conn.execute(delete(t.cache_entries).where(c.key.in_(keys[start:start + 500])))
        return len(keys)


def _check_params(run_id: str, values: dict[str, str], have: dict[str, str]) -> None:
    """Refuse a param whose stored value differs from the one being logged."""
    for key, value in values.items():
        if key in have and have[key] != value:
            raise TrackingError(
                f"param '{key}' of run '{run_id}' was already logged with value '{have[key]}'; it cannot "
                f"change to '{value}' (params are immutable: log a new run, or use a metric or a tag)")


def _experiment_rows():
    """A SELECT of the columns :meth:`SqlStore._experiments` reads, to add WHERE and ORDER BY to."""
    e = t.experiments.c
    return select(e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, e.creation_time,
                  e.last_update_time)


def _chunks(items: Sequence, size: int = 500) -> Iterable[Sequence]:
    """``items`` in slices of ``size``, for IN lists that stay under SQLite's parameter limit."""
    return (items[start:start + size] for start in range(0, len(items), size))


_METRIC_COLUMNS = ("run_id", "key", "value", "timestamp", "step")


def _metric_rows(run_id: str, metrics: Iterable[Metric]) -> list[tuple]:
    """Checked rows ``(run_id, key, value, timestamp, step)``; NaN becomes NULL."""
    return [(run_id, key, None if value != value else value, ts, step)
            for key, value, ts, step in check.metric_rows(metrics, set())]


@functools.lru_cache(maxsize=None)
def _insert_metrics_sql(paramstyle: str) -> str:
    mark = "?" if paramstyle == "qmark" else "%s"
    return f"INSERT INTO metrics ({', '.join(_METRIC_COLUMNS)}) VALUES ({', '.join([mark] * 5)})"


def _rank(row: tuple) -> tuple:
    """MLflow's order for "latest": step, then timestamp, then value (NaN lowest, below -inf)."""
    value = row[2]
    return row[4], row[3], value is not None, 0.0 if value is None else value


def _dialect_insert(conn: Connection | str, table):
    """An INSERT that knows ON CONFLICT, for the connection's database (SQLite or PostgreSQL)."""
    if (conn if isinstance(conn, str) else conn.dialect.name) == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table)


@functools.lru_cache(maxsize=None)
def _latest_upsert(dialect: str):
    """The upsert of a latest metric that only replaces an older value: (step, timestamp, value)
    greater, NaN (NULL) ranking below every number, -inf included. Built once per dialect:
    building it costs more than running it."""
    stmt = _dialect_insert(dialect, t.latest_metrics)
    new, old = stmt.excluded, t.latest_metrics.c
    zero = literal(0.0)
    return stmt.on_conflict_do_update(
        index_elements=["run_id", "key"],
        set_={"value": new.value, "timestamp": new.timestamp, "step": new.step},
        where=tuple_(new.step, new.timestamp, new.value.is_not(None), func.coalesce(new.value, zero))
        > tuple_(old.step, old.timestamp, old.value.is_not(None), func.coalesce(old.value, zero)))


@functools.lru_cache(maxsize=None)
def _tag_upsert(dialect: str):
    stmt = _dialect_insert(dialect, t.tags)
    return stmt.on_conflict_do_update(index_elements=["run_id", "key"], set_={"value": stmt.excluded.value})


def _upsert(conn: Connection, table, values: dict, keys: list[str]) -> None:
    """Insert ``values`` or, when a row with the same ``keys`` exists, update it."""
    stmt = _dialect_insert(conn, table).values(**values)
    conn.execute(stmt.on_conflict_do_update(index_elements=keys,
                                            set_={k: v for k, v in values.items() if k not in keys}))


def _int_id(experiment_id: object) -> int:
    try:
        return int(experiment_id)
    except (TypeError, ValueError):
        raise TrackingError(f"no experiment with id '{experiment_id}'", NOT_FOUND) from None
