"""The model registry in the tracking database (SQLite or PostgreSQL), with MLflow's semantics.

Every public method is one transaction. Version numbers count 1, 2, 3 per registered model
and are never given out twice, even by concurrent writers: creating a version first locks
its registered model's row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's writers queue
on ``BEGIN IMMEDIATE``), and a deleted version keeps its row (stage ``Deleted_Internal``, its
source and run redacted), as in MLflow. Under the same lock, a version whose lineage has a
content digest already registered under that name returns the existing version instead of
making a new one: registering is idempotent by content.

Errors are :class:`~flowml.errors.TrackingError` with MLflow's codes: an unknown model or
version is RESOURCE_DOES_NOT_EXIST (404 over HTTP), a taken name RESOURCE_ALREADY_EXISTS and
bad input INVALID_PARAMETER_VALUE (both 400). As in MLflow, an unknown alias is
INVALID_PARAMETER_VALUE too.
"""

from __future__ import annotations

import json
from typing import Sequence

from sqlalchemy import Connection, and_, delete, exists, func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from flowml.errors import TrackingError, did_you_mean
from flowml.registry import search as grammars
from flowml.registry import validation as check
from flowml.registry.entities import Lineage, ModelVersion, ModelVersionStatus, RegisteredModel, Stage
from flowml.registry.uris import parse_model_uri, resolve
from flowml.tracking.entities import now_ms
from flowml.tracking.search import Clause, Order, decode_page_token, encode_page_token, parse_filter, parse_order_by
from flowml.tracking.sql import tables as t
from flowml.tracking.sql.database import reporting_errors, writing
from flowml.tracking.sql.query import compare, keyed_condition

NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
EXISTS = "RESOURCE_ALREADY_EXISTS"
PROMPT_TAG = "mlflow.prompt.is_prompt"
REDACTED = {"description": None, "user_id": None, "source": "REDACTED-SOURCE-PATH", "storage_location": None,
            "run_id": "REDACTED-RUN-ID", "run_link": "REDACTED-RUN-LINK", "status_message": None,
            "lineage_step": None, "lineage_run_id": None, "lineage_pipeline_run_id": None,
            "lineage_cache_key": None, "lineage_input_digests": None, "content_digest": None}
rm, rmt, rma, mv, mvt = (t.registered_models.c, t.registered_model_tags.c, t.registered_model_aliases.c,
                         t.model_versions.c, t.model_version_tags.c)
_VERSION_COLUMNS = (mv.name, mv.version, mv.creation_time, mv.last_updated_time, mv.current_stage, mv.source,
                    mv.run_id, mv.status, mv.description, mv.user_id, mv.status_message, mv.run_link, mv.model_id,
                    mv.lineage_step, mv.lineage_run_id, mv.lineage_pipeline_run_id, mv.lineage_cache_key,
                    mv.lineage_input_digests, mv.content_digest)
_ORDER_COLUMNS = {"name": "name", "version_number": "version", "creation_timestamp": "creation_time",
                  "last_updated_timestamp": "last_updated_time"}


@reporting_errors
class SqlRegistryStore:
    """Registered models and versions in the database behind ``engine`` (a tracking store's)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.url = str(engine.url)  # for errors; SQLAlchemy masks the password

    def __repr__(self) -> str:
        return f"SqlRegistryStore({self.url!r})"

    # registered models -----------------------------------------------------------------

    def create_registered_model(self, name: str, tags: dict[str, str] | None = None,
                                description: str | None = None) -> RegisteredModel:
        check.model_name(name)
        tags = check.tags(tags)
        now = now_ms()
        try:
            with writing(self.engine) as conn:
                if conn.execute(select(rm.name).where(rm.name == name)).first() is not None:
                    raise TrackingError(f"registered model '{name}' already exists", EXISTS)
                conn.execute(insert(t.registered_models).values(name=name, creation_time=now, last_updated_time=now,
                                                                description=description))
                _put_tags(conn, t.registered_model_tags, {"name": name}, tags)
        except IntegrityError:  # created by another writer meanwhile (PostgreSQL's writers do not queue)
            raise TrackingError(f"registered model '{name}' already exists", EXISTS) from None
        return self.get_registered_model(name)

    def get_registered_model(self, name: str) -> RegisteredModel:
        check.model_name(name)
        with self.engine.connect() as conn:
            self._model_row(conn, name)
            return _models(conn, [name])[0]

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        check.model_name(name)
        check.model_name(new_name, "new name")
        now = now_ms()
        try:
            with writing(self.engine) as conn:
                self._model_row(conn, name)
                if new_name != name and conn.execute(select(rm.name).where(rm.name == new_name)).first():
                    raise TrackingError(f"registered model '{new_name}' already exists", EXISTS)
                conn.execute(update(t.registered_models).where(rm.name == name)
                             .values(name=new_name, last_updated_time=now))
                # PostgreSQL has cascaded the name to the other tables; SQLite enforces no foreign keys
                for table in (t.registered_model_tags, t.registered_model_aliases, t.model_version_tags):
                    conn.execute(update(table).where(table.c.name == name).values(name=new_name))
                conn.execute(update(t.model_versions).where(mv.name == name).values(name=new_name))
                conn.execute(update(t.model_versions).where(mv.name == new_name).values(last_updated_time=now))
        except IntegrityError:
            raise TrackingError(f"registered model '{new_name}' already exists", EXISTS) from None
        return self.get_registered_model(new_name)

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        check.model_name(name)
        with writing(self.engine) as conn:
            self._model_row(conn, name)
            conn.execute(update(t.registered_models).where(rm.name == name)
                         .values(description=description, last_updated_time=now_ms()))
        return self.get_registered_model(name)

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model with all its versions, tags and aliases (for good)."""
        check.model_name(name)
        with writing(self.engine) as conn:
            self._model_row(conn, name)
            for table in (t.model_version_tags, t.model_versions, t.registered_model_aliases,
                          t.registered_model_tags, t.registered_models):
                conn.execute(delete(table).where(table.c.name == name))

    def search_registered_models(self, filter_string: str = "", max_results: int = grammars.DEFAULT_MODELS,
                                 order_by: Sequence[str] | None = None,
                                 page_token: str | None = None) -> tuple[list[RegisteredModel], str | None]:
        """One page of registered models matching ``filter_string`` (see
        :mod:`flowml.registry.search`), by name unless ``order_by`` says otherwise."""
        _check_page_size(max_results, grammars.MAX_MODELS)
        clauses = parse_filter(filter_string or "", grammars.REGISTERED_MODELS)
        orders = parse_order_by(list(order_by or []), grammars.REGISTERED_MODELS)
        offset = decode_page_token(page_token)
        clauses, hide_prompts = _prompt_rule(clauses)
        stmt = select(rm.name).where(*[_model_condition(c) for c in clauses])
        if hide_prompts:
            stmt = stmt.where(_not_a_prompt(t.registered_model_tags, rmt.name == rm.name))
        stmt = stmt.order_by(*_ordering(t.registered_models, orders, {"name": "name",
                                                                      "last_updated_timestamp": "last_updated_time",
                                                                      "creation_timestamp": "creation_time"}))
        with self.engine.connect() as conn:
            names = list(conn.execute(stmt.limit(max_results + 1).offset(offset)).scalars())
            found = _models(conn, names[:max_results])
        return found, encode_page_token(offset + max_results) if len(names) > max_results else None

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[ModelVersion]:
        """The newest version in each of ``stages`` (default: every stage), in MLflow's stage order."""
        check.model_name(name)
        wanted = [check.stage(s) for s in stages] if stages else list(Stage.ALL)
        with self.engine.connect() as conn:
            self._model_row(conn, name)
            latest = _latest_versions(conn, [name])
        return sorted((v for v in latest if v.current_stage in wanted), key=lambda v: Stage.ALL.index(v.current_stage))

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        check.model_name(name)
        key, value = check.tag(key, value)
        with writing(self.engine) as conn:
            self._model_row(conn, name)
            conn.execute(delete(t.registered_model_tags).where(rmt.name == name, rmt.key == key))
            _put_tags(conn, t.registered_model_tags, {"name": name}, {key: value})

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        check.model_name(name)
        with writing(self.engine) as conn:
            self._model_row(conn, name)
            gone = conn.execute(delete(t.registered_model_tags).where(rmt.name == name, rmt.key == key)).rowcount
        if not gone:
            raise TrackingError(f"registered model '{name}' has no tag '{key}'", NOT_FOUND)

    # versions --------------------------------------------------------------------------

    def create_model_version(self, name: str, source: str, run_id: str | None = None,
                             tags: dict[str, str] | None = None, run_link: str | None = None,
                             description: str | None = None, model_id: str | None = None,
                             lineage: Lineage | None = None, user_id: str | None = None) -> ModelVersion:
        """A new version of ``name`` (which must exist) from ``source``, numbered after the
        highest so far; or, when ``lineage`` has a content digest that a live version of
        ``name`` already has, that version. A ``models:/<model_id>`` source is stored as the
        logged model's files (and its run, when ``run_id`` is not given); a
        ``models:/<name>/<version>`` source as where that version's files are."""
        check.model_name(name)
        check.source(source)
        tags = check.tags(tags)
        lineage = check.lineage(lineage)
        check.ids(run_id=run_id, model_id=model_id)
        storage, run_id, model_id = self._where_files_are(source, run_id, model_id)
        run_id = run_id or lineage.run_id
        now = now_ms()
        with writing(self.engine) as conn:
            self._model_row(conn, name, lock=True)
            if lineage.content_digest:
                same = conn.execute(select(mv.version).where(
                    mv.name == name, mv.content_digest == lineage.content_digest, mv.current_stage != Stage.DELETED
                ).order_by(mv.version).limit(1)).scalar()
                if same is not None:
                    return _one_version(conn, name, same)
            number = (conn.execute(select(func.max(mv.version)).where(mv.name == name)).scalar() or 0) + 1
            conn.execute(insert(t.model_versions).values(
                name=name, version=number, creation_time=now, last_updated_time=now, description=description,
                user_id=user_id, current_stage=Stage.NONE, source=source, storage_location=storage, run_id=run_id,
                run_link=run_link, status=ModelVersionStatus.READY, model_id=model_id, **_lineage_columns(lineage)))
            _put_tags(conn, t.model_version_tags, {"name": name, "version": number}, tags)
            conn.execute(update(t.registered_models).where(rm.name == name).values(last_updated_time=now))
            return _one_version(conn, name, number)

    def _where_files_are(self, source: str, run_id: str | None,
                         model_id: str | None) -> tuple[str | None, str | None, str | None]:
        """(storage location, run id, model id) for a new version: a ``models:/`` source
        resolved to the files it names; the run and model filled in from a logged model."""
        storage = None
        logged = source.startswith("models:") and parse_model_uri(source) is None
        if logged:
            named = source.split("/")[-1]
            if model_id and model_id != named:
                raise TrackingError(f"model_id '{model_id}' is not the logged model of the source '{source}'")
            model_id = named
        if model_id:
            lm = t.logged_models.c
            with self.engine.connect() as conn:
                row = conn.execute(select(lm.artifact_location, lm.source_run_id)
                                   .where(lm.model_id == model_id)).first()
            if row is None:
                raise TrackingError(f"no logged model with id '{model_id}' (model version source '{source}')")
            storage = row.artifact_location if logged else None
            run_id = run_id or row.source_run_id
        elif source.startswith("models:"):
            storage = self.get_model_version_download_uri(*_name_version(resolve(self, source)))
        return storage, run_id, model_id

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        check.model_name(name)
        number = check.version(version)
        with self.engine.connect() as conn:
            self._version_row(conn, name, number)
            return _one_version(conn, name, number)

    def update_model_version(self, name: str, version: int | str, description: str | None) -> ModelVersion:
        return self._change_version(name, version, description=description)

    def transition_model_version_stage(self, name: str, version: int | str, stage: str,
                                       archive_existing_versions: bool = False) -> ModelVersion:
        """Move a version to ``stage`` (MLflow's deprecated stages, any case); with
        ``archive_existing_versions`` (only for Staging and Production), the other versions in
        that stage move to Archived."""
        stage = check.stage(stage)
        if archive_existing_versions and stage not in Stage.ACTIVE:
            raise TrackingError(f"archive_existing_versions applies to the stages {' and '.join(Stage.ACTIVE)} "
                                f"only, not {stage}")
        return self._change_version(name, version, current_stage=stage,
                                    archive_others_in=stage if archive_existing_versions else None)

    def _change_version(self, name: str, version: int | str, archive_others_in: str | None = None,
                        **values) -> ModelVersion:
        check.model_name(name)
        number = check.version(version)
        now = now_ms()
        with writing(self.engine) as conn:
            self._version_row(conn, name, number)
            if archive_others_in:
                conn.execute(update(t.model_versions).where(mv.name == name, mv.version != number,
                                                            mv.current_stage == archive_others_in)
                             .values(current_stage=Stage.ARCHIVED, last_updated_time=now))
            conn.execute(update(t.model_versions).where(mv.name == name, mv.version == number)
                         .values(last_updated_time=now, **values))
            if "current_stage" in values:
                conn.execute(update(t.registered_models).where(rm.name == name).values(last_updated_time=now))
            return _one_version(conn, name, number)

    def delete_model_version(self, name: str, version: int | str) -> None:
        """Delete a version: its aliases and tags go, its row stays (redacted) so that its number
        is never given out again."""
        check.model_name(name)
        number = check.version(version)
        now = now_ms()
        with writing(self.engine) as conn:
            self._version_row(conn, name, number)
            conn.execute(delete(t.registered_model_aliases).where(rma.name == name, rma.version == number))
            conn.execute(delete(t.model_version_tags).where(mvt.name == name, mvt.version == number))
            conn.execute(update(t.model_versions).where(mv.name == name, mv.version == number)
                         .values(current_stage=Stage.DELETED, last_updated_time=now, **REDACTED))
            conn.execute(update(t.registered_models).where(rm.name == name).values(last_updated_time=now))

    def search_model_versions(self, filter_string: str = "", max_results: int = grammars.DEFAULT_VERSIONS,
                              order_by: Sequence[str] | None = None,
                              page_token: str | None = None) -> tuple[list[ModelVersion], str | None]:
        """One page of versions matching ``filter_string`` (see :mod:`flowml.registry.search`),
        by default the most recently changed first."""
        _check_page_size(max_results, grammars.MAX_VERSIONS)
        clauses = parse_filter(filter_string or "", grammars.MODEL_VERSIONS)
        orders = parse_order_by(list(order_by or grammars.DEFAULT_VERSION_ORDER), grammars.MODEL_VERSIONS)
        offset = decode_page_token(page_token)
        ordering = _ordering(t.model_versions, orders, _ORDER_COLUMNS)
        if not any(o.key == "version_number" for o in orders):
            ordering.append(mv.version.desc())
        clauses, hide_prompts = _prompt_rule(clauses)
        stmt = select(mv.name, mv.version).where(mv.current_stage != Stage.DELETED,
                                                 *[_version_condition(c) for c in clauses])
        if hide_prompts:
            stmt = stmt.where(_not_a_prompt(t.model_version_tags, and_(mvt.name == mv.name, mvt.version == mv.version)))
        stmt = stmt.order_by(*ordering).limit(max_results + 1).offset(offset)
        with self.engine.connect() as conn:
            keys = [tuple(row) for row in conn.execute(stmt)]
            found = _versions(conn, keys[:max_results])
        return found, encode_page_token(offset + max_results) if len(keys) > max_results else None

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: str) -> None:
        check.model_name(name)
        number = check.version(version)
        key, value = check.tag(key, value)
        with writing(self.engine) as conn:
            self._version_row(conn, name, number)
            conn.execute(delete(t.model_version_tags).where(mvt.name == name, mvt.version == number, mvt.key == key))
            _put_tags(conn, t.model_version_tags, {"name": name, "version": number}, {key: value})

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        check.model_name(name)
        number = check.version(version)
        with writing(self.engine) as conn:
            self._version_row(conn, name, number)
            gone = conn.execute(delete(t.model_version_tags).where(mvt.name == name, mvt.version == number,
                                                                   mvt.key == key)).rowcount
        if not gone:
            raise TrackingError(f"version {number} of registered model '{name}' has no tag '{key}'", NOT_FOUND)

    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        """Where the version's files are: its source, or for a ``models:/`` source the files it named."""
        check.model_name(name)
        number = check.version(version)
        with self.engine.connect() as conn:
            self._version_row(conn, name, number)
            row = conn.execute(select(mv.storage_location, mv.source)
                               .where(mv.name == name, mv.version == number)).one()
        return row.storage_location or row.source

    # aliases ---------------------------------------------------------------------------

    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        """Point ``alias`` at a version, moving it if it pointed elsewhere."""
        check.model_name(name)
        check.new_alias(alias)
        number = check.version(version)
        with writing(self.engine) as conn:
            self._version_row(conn, name, number)
            conn.execute(delete(t.registered_model_aliases).where(rma.name == name, rma.alias == alias))
            conn.execute(insert(t.registered_model_aliases).values(name=name, alias=alias, version=number))

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove ``alias`` of ``name`` (which must exist); an alias it does not have is no
        error, as in MLflow."""
        check.model_name(name)
        check.alias(alias)
        with writing(self.engine) as conn:
            self._model_row(conn, name)
            conn.execute(delete(t.registered_model_aliases).where(rma.name == name, rma.alias == alias))

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version ``alias`` points at; ``latest`` (any case) is the newest live version."""
        check.model_name(name)
        check.alias(alias)
        with self.engine.connect() as conn:
            self._model_row(conn, name)
            if alias.lower() == "latest":
                number = conn.execute(select(func.max(mv.version))
                                      .where(mv.name == name, mv.current_stage != Stage.DELETED)).scalar()
                if number is None:
                    raise TrackingError(f"registered model '{name}' has no versions", NOT_FOUND)
            else:
                number = conn.execute(select(rma.version).where(rma.name == name, rma.alias == alias)).scalar()
                if number is None:
                    known = list(conn.execute(select(rma.alias).where(rma.name == name)).scalars())
                    raise TrackingError(f"registered model '{name}' has no alias '{alias}'"
                                        f"{did_you_mean(alias, known)}")
            return _one_version(conn, name, number)

    # rows ------------------------------------------------------------------------------

    def _model_row(self, conn: Connection, name: str, lock: bool = False) -> None:
        """Check ``name`` exists; ``lock``: hold its row until the transaction ends (PostgreSQL)."""
        stmt = select(rm.name).where(rm.name == name)
        if conn.execute(stmt.with_for_update() if lock else stmt).first() is None:
            known = list(conn.execute(select(rm.name).limit(1000)).scalars())
            raise TrackingError(f"no registered model named '{name}'{did_you_mean(name, known)}", NOT_FOUND)

    def _version_row(self, conn: Connection, name: str, number: int) -> None:
        found = conn.execute(select(mv.current_stage).where(mv.name == name, mv.version == number)).first()
        if found is None or found[0] == Stage.DELETED:
            self._model_row(conn, name)
            raise TrackingError(f"registered model '{name}' has no version {number}", NOT_FOUND)


def _check_page_size(max_results: int, limit: int) -> None:
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= limit:
        raise TrackingError(f"max_results must be a whole number between 1 and {limit}, got {max_results!r}")


def _name_version(version: ModelVersion) -> tuple[str, int]:
    return version.name, version.version


def _lineage_columns(lineage: Lineage) -> dict:
    digests = lineage.input_digests
    return {"lineage_step": lineage.step, "lineage_run_id": lineage.run_id,
            "lineage_pipeline_run_id": lineage.pipeline_run_id, "lineage_cache_key": lineage.cache_key,
            "lineage_input_digests": json.dumps(digests, sort_keys=True) if digests else None,
            "content_digest": lineage.content_digest}


def _put_tags(conn: Connection, table, owner: dict, tags: dict[str, str]) -> None:
    if tags:
        conn.execute(insert(table), [{**owner, "key": k, "value": v} for k, v in tags.items()])


def _ordering(table, orders: list[Order], columns: dict[str, str]) -> list:
    """ORDER BY terms for ``orders``, then by name unless name is one of them (MLflow's tie-breaker)."""
    terms = []
    for order in orders:
        column = table.c[columns[order.key]]
        terms.append(column.asc() if order.ascending else column.desc())
    if not any(o.key == "name" for o in orders):
        terms.append(table.c.name.asc())
    return terms


def _prompt_rule(clauses: list[Clause]) -> tuple[list[Clause], bool]:
    """MLflow's rule for prompts (registered models and versions tagged
    ``mlflow.prompt.is_prompt = 'true'``, which its client registers): searches leave them out
    unless a filter asks for them (``= 'true'`` or ``!= 'false'``). MLflow's client adds
    ``tag.`mlflow.prompt.is_prompt` != 'true'`` to every registered-model search, meaning
    "not prompts", which models without the tag must pass. Returns the clauses left to apply,
    and whether to hide prompts."""
    asked = [c for c in clauses if c.kind == "tag" and c.key == PROMPT_TAG]
    if any((c.op, str(c.value).lower()) in (("=", "true"), ("!=", "false")) for c in asked):
        return clauses, False
    return [c for c in clauses if c not in asked], True


def _not_a_prompt(tags, owner):
    return ~exists().where(owner, tags.c.key == PROMPT_TAG, tags.c.value == "true")


def _model_condition(clause: Clause):
    if clause.kind == "attribute":
        return compare(rm.name, clause.op, clause.value)
    return keyed_condition(t.registered_model_tags, rmt.name == rm.name, clause)


def _version_condition(clause: Clause):
    if clause.kind == "tag":
        return keyed_condition(t.model_version_tags, and_(mvt.name == mv.name, mvt.version == mv.version), clause)
    if clause.key == "version_number":
        if not float(clause.value).is_integer():
            raise TrackingError(f"version_number is a whole number, got {clause.value:g}")
        return compare(mv.version, clause.op, int(clause.value))
    return compare(mv.source if clause.key == "source_path" else mv[clause.key], clause.op, clause.value)


def _models(conn: Connection, names: list[str]) -> list[RegisteredModel]:
    """The registered models ``names``, in that order, with tags, aliases and latest versions."""
    if not names:
        return []
    found = {r.name: RegisteredModel(r.name, r.creation_time, r.last_updated_time, r.description)
             for r in conn.execute(select(t.registered_models).where(rm.name.in_(names)))}
    for name, key, value in conn.execute(select(rmt.name, rmt.key, rmt.value).where(rmt.name.in_(names))):
        found[name].tags[key] = value
    for name, alias, version in conn.execute(select(rma.name, rma.alias, rma.version)
                                             .where(rma.name.in_(names)).order_by(rma.alias)):
        found[name].aliases[alias] = version
    for version in _latest_versions(conn, names):
        found[version.name].latest_versions.append(version)
    return [found[n] for n in names if n in found]


def _latest_versions(conn: Connection, names: list[str]) -> list[ModelVersion]:
    """The newest live version of each stage of each of ``names``."""
    newest = (select(mv.name, func.max(mv.version))
              .where(mv.name.in_(names), mv.current_stage != Stage.DELETED)
              .group_by(mv.name, mv.current_stage))
    return _versions(conn, [tuple(r) for r in conn.execute(newest)])


def _one_version(conn: Connection, name: str, number: int) -> ModelVersion:
    return _versions(conn, [(name, number)])[0]


def _versions(conn: Connection, keys: list[tuple[str, int]]) -> list[ModelVersion]:
    """The live versions with these (name, number) keys, in that order, with tags and aliases."""
    found: dict[tuple[str, int], ModelVersion] = {}
    for some in _chunks(keys):
        for row in conn.execute(select(*_VERSION_COLUMNS).where(tuple_(mv.name, mv.version).in_(some),
                                                                mv.current_stage != Stage.DELETED)):
            found[(row.name, row.version)] = _version(row)
        for name, number, key, value in conn.execute(select(mvt.name, mvt.version, mvt.key, mvt.value)
                                                     .where(tuple_(mvt.name, mvt.version).in_(some))):
            if (name, number) in found:
                found[(name, number)].tags[key] = value
        for name, number, alias in conn.execute(select(rma.name, rma.version, rma.alias)
                                                .where(tuple_(rma.name, rma.version).in_(some)).order_by(rma.alias)):
            if (name, number) in found:
                found[(name, number)].aliases.append(alias)
    return [found[k] for k in keys if k in found]


def _chunks(keys: list, size: int = 400):
    """Keys in groups small enough for one statement's parameters (SQLite allows 32,766)."""
    for start in range(0, len(keys), size):
        yield keys[start:start + size]


def _version(r) -> ModelVersion:
    lineage = Lineage(r.lineage_step, r.lineage_run_id, r.lineage_pipeline_run_id, r.lineage_cache_key,
                      json.loads(r.lineage_input_digests) if r.lineage_input_digests else {}, r.content_digest)
    return ModelVersion(r.name, r.version, r.creation_time, r.last_updated_time, r.current_stage, r.source, r.run_id,
                        r.status, r.description, r.user_id, r.status_message, r.run_link, r.model_id, lineage=lineage)
