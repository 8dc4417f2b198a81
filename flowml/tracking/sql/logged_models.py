"""MLflow 3's logged models in the SQL store: what ``mlflow.<flavor>.log_model`` creates
(PENDING), uploads files for, and finalizes (READY). A mixin of :class:`SqlStore`, kept in
its own module because it is its own small world of tables."""

from __future__ import annotations

import uuid
from typing import Sequence

from sqlalchemy import delete, insert, select, update

from flowml.errors import TrackingError
from flowml.tracking import validation as check
from flowml.tracking.entities import LifecycleStage, LoggedModel, LoggedModelStatus, now_ms
from flowml.tracking.sql import tables as t
from flowml.tracking.sql.database import writing
from flowml.tracking.sql.query import compare, keyed_condition

NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"


class LoggedModelStore:
    """Needs ``self.engine``, ``self._experiment_row`` and ``self._run_row`` (from :class:`SqlStore`)."""

    def create_logged_model(self, experiment_id: str, name: str | None = None, source_run_id: str | None = None,
                            tags: dict[str, str] | None = None, params: dict[str, str] | None = None,
                            model_type: str | None = None) -> LoggedModel:
        model_id = f"m-{uuid.uuid4().hex}"
        name = name or model_id
        check.run_name(name)
        tags = {check.check_key("tag", k): check.tag_value(k, v) for k, v in (tags or {}).items()}
        params = {check.check_key("param", k): check.param_value(k, v) for k, v in (params or {}).items()}
        now = now_ms()
        with writing(self.engine) as conn:
            exp = self._experiment_row(conn, experiment_id)
            if exp.lifecycle_stage != LifecycleStage.ACTIVE:
                raise TrackingError(f"experiment '{exp.name}' is deleted; restore it to add models", "INVALID_STATE")
            if source_run_id:
                self._run_row(conn, source_run_id)  # RESOURCE_DOES_NOT_EXIST for an unknown run
            location = f"{exp.artifact_location}/models/{model_id}/artifacts"
            conn.execute(insert(t.logged_models).values(
                model_id=model_id, experiment_id=exp.experiment_id, name=name, artifact_location=location,
                creation_timestamp_ms=now, last_updated_timestamp_ms=now, status=LoggedModelStatus.PENDING,
                model_type=model_type, source_run_id=source_run_id, lifecycle_stage=LifecycleStage.ACTIVE))
            _put_pairs(conn, t.logged_model_tags, model_id, tags)
            _put_pairs(conn, t.logged_model_params, model_id, params)
        return LoggedModel(model_id, str(exp.experiment_id), name, location, now, now, LoggedModelStatus.PENDING,
                           None, model_type, source_run_id, tags, params)

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        with self.engine.connect() as conn:
            found = _load(conn, [model_id], allow_deleted)
        if not found:
            raise TrackingError(f"no logged model with id '{model_id}'", NOT_FOUND)
        return found[0]

    def finalize_logged_model(self, model_id: str, status: str) -> LoggedModel:
        if status not in (LoggedModelStatus.READY, LoggedModelStatus.FAILED):
            raise TrackingError(f"a logged model is finalized as READY or FAILED, not {status}")
        self._touch(model_id, status=status)
        return self.get_logged_model(model_id)

    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None:
        tags = {check.check_key("tag", k): check.tag_value(k, v) for k, v in tags.items()}
        with writing(self.engine) as conn:
            self._model_row(conn, model_id)
            conn.execute(delete(t.logged_model_tags).where(t.logged_model_tags.c.model_id == model_id,
                                                           t.logged_model_tags.c.key.in_(list(tags))))
            _put_pairs(conn, t.logged_model_tags, model_id, tags)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        with writing(self.engine) as conn:
            self._model_row(conn, model_id)
            gone = conn.execute(delete(t.logged_model_tags).where(t.logged_model_tags.c.model_id == model_id,
                                                                  t.logged_model_tags.c.key == key)).rowcount
        if not gone:
            raise TrackingError(f"no tag '{key}' on logged model '{model_id}'", NOT_FOUND)

    def log_logged_model_params(self, model_id: str, params: dict[str, str]) -> None:
        params = {check.check_key("param", k): check.param_value(k, v) for k, v in params.items()}
        with writing(self.engine) as conn:
            self._model_row(conn, model_id)
            have = dict(conn.execute(select(t.logged_model_params.c.key, t.logged_model_params.c.value).where(
                t.logged_model_params.c.model_id == model_id)).all())
            for key, value in params.items():
                if key in have and have[key] != value:
                    raise TrackingError(f"param '{key}' of logged model '{model_id}' is already '{have[key]}'")
            _put_pairs(conn, t.logged_model_params, model_id, {k: v for k, v in params.items() if k not in have})

    def delete_logged_model(self, model_id: str) -> None:
        self._touch(model_id, lifecycle_stage=LifecycleStage.DELETED)

    def search_logged_models(self, experiment_ids: Sequence[str], filter_string: str = "", max_results: int = 100,
                             page_token: str | None = None) -> tuple[list[LoggedModel], str | None]:
        """Active logged models of the experiments matching ``filter_string`` (MLflow's grammar for
        logged models: ``name = 'model'``, ``tags.k``/``params.k``, ``status``, ``source_run_id``,
        timestamps), newest first. MLflow's client filters by name to find a run's model."""
        from flowml.tracking.search import LOGGED_MODELS, decode_page_token, encode_page_token, parse_filter

        clauses = parse_filter(filter_string or "", LOGGED_MODELS)
        if not 1 <= int(max_results) <= 1000:
            raise TrackingError(f"max_results must be between 1 and 1000, got {max_results}")
        if not all(str(e).isdigit() for e in experiment_ids):
            raise TrackingError(f"experiment ids must be numbers, got {list(experiment_ids)}")
        offset = decode_page_token(page_token)
        m = t.logged_models.c
        stmt = (select(m.model_id).where(m.experiment_id.in_([int(e) for e in experiment_ids]),
                                         m.lifecycle_stage == LifecycleStage.ACTIVE, *map(_condition, clauses))
                .order_by(m.creation_timestamp_ms.desc(), m.model_id).limit(max_results + 1).offset(offset))
        with self.engine.connect() as conn:
            ids = list(conn.execute(stmt).scalars())
            models = _load(conn, ids[:max_results], False)
        return models, encode_page_token(offset + max_results) if len(ids) > max_results else None

    def _touch(self, model_id: str, **values) -> None:
        with writing(self.engine) as conn:
            self._model_row(conn, model_id)
            conn.execute(update(t.logged_models).where(t.logged_models.c.model_id == model_id)
                         .values(last_updated_timestamp_ms=now_ms(), **values))

    def _model_row(self, conn, model_id: str):
        row = conn.execute(select(t.logged_models.c.lifecycle_stage).where(t.logged_models.c.model_id == model_id)).first()
        if row is None or row[0] != LifecycleStage.ACTIVE:
            raise TrackingError(f"no logged model with id '{model_id}'", NOT_FOUND)
        return row


def _condition(clause):
    """One filter clause on ``logged_models`` (timestamps are stored in columns ending ``_ms``)."""
    m = t.logged_models.c
    if clause.kind == "attribute":
        column = m[clause.key + "_ms"] if clause.key.endswith("_timestamp") else m[clause.key]
        value = clause.value
        if clause.key == "status" and clause.op in ("=", "!="):  # READY or MLflow's LOGGED_MODEL_READY
            value = LoggedModelStatus.parse(value) or value
        return compare(column, clause.op, value)
    keyed = t.logged_model_tags if clause.kind == "tag" else t.logged_model_params
    return keyed_condition(keyed, keyed.c.model_id == m.model_id, clause)


def _put_pairs(conn, table, model_id: str, values: dict[str, str]) -> None:
    if values:
        conn.execute(insert(table), [{"model_id": model_id, "key": k, "value": v} for k, v in values.items()])


def _load(conn, model_ids: list[str], allow_deleted: bool) -> list[LoggedModel]:
    if not model_ids:
        return []
    m = t.logged_models.c
    stmt = select(m.model_id, m.experiment_id, m.name, m.artifact_location, m.creation_timestamp_ms,
                  m.last_updated_timestamp_ms, m.status, m.status_message, m.model_type, m.source_run_id
                  ).where(m.model_id.in_(model_ids))
    if not allow_deleted:
        stmt = stmt.where(m.lifecycle_stage == LifecycleStage.ACTIVE)
    found = {r[0]: LoggedModel(r[0], str(r[1]), *r[2:]) for r in conn.execute(stmt)}
    for table, attr in ((t.logged_model_tags, "tags"), (t.logged_model_params, "params")):
        for model_id, key, value in conn.execute(select(table).where(table.c.model_id.in_(list(found)))):
            getattr(found[model_id], attr)[key] = value
    return [found[i] for i in model_ids if i in found]
