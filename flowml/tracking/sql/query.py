"""``search_runs`` and ``search_experiments`` in SQL: parsed filter clauses and orders
(``flowml.tracking.search``) applied to a SELECT over ``runs`` or ``experiments``, so that the
database filters, sorts and pages 10,000 runs, never Python.

MLflow's semantics, on SQLite and PostgreSQL alike:

- a metric clause compares the run's latest value; NaN is stored as NULL, so it matches no
  comparison, ``!=`` included;
- a param or tag clause needs the run to have the key: ``params.a != 'x'`` skips runs without
  ``a``; ``IS NULL`` is "has no such key";
- ``LIKE`` is case-sensitive and ``ILIKE`` is not, with ``\\`` as the escape character;
- ordering on a metric, param, tag or nullable attribute puts runs without a value last in
  both directions (for a metric, NaN before a missing key), then ``start_time DESC, run_id``;
- experiments are ordered by ``creation_time DESC, experiment_id ASC`` when no order is given,
  and otherwise by the orders then ``experiment_id DESC`` unless ``experiment_id`` is one of
  them (MLflow's SQL store: ``_get_search_experiments_order_by_clauses``). Their columns are
  never NULL, so no NULLs-last handling is needed.
"""

from __future__ import annotations

import operator

from sqlalchemy import Boolean, Float, and_, exists, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.sql.functions import FunctionElement

from flowml.tracking.search import Clause, Order
from flowml.tracking.sql.tables import experiment_tags, experiments, latest_metrics, params, runs, tags

_KEYED = {"metric": latest_metrics, "param": params, "tag": tags}
_COMPARE = {"=": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge,
            "<": operator.lt, "<=": operator.le}


def apply_search(stmt: Select, clauses: list[Clause], orders: list[Order]) -> Select:
    """``stmt`` (a SELECT whose FROM is ``runs``) filtered by ``clauses`` and ordered by ``orders``,
    then by MLflow's default ``start_time DESC, run_id`` so that pages are stable. The caller adds
    its own WHERE (experiments, lifecycle), LIMIT and OFFSET."""
    stmt = stmt.where(*run_filter(clauses))
    order_by: list[ColumnElement] = []
    for number, order in enumerate(orders):
        if order.kind == "attribute":
            value = runs.c[order.key]
            if value.nullable:
                order_by.append(value.is_(None))
        else:
            # An outer join, not EXISTS: runs without the key must still be listed, last.
            keyed = _KEYED[order.kind].alias(f"order_{number}")
            stmt = stmt.outerjoin(keyed, and_(keyed.c.run_id == runs.c.run_id, keyed.c.key == order.key))
            value = keyed.c.value
            order_by.append(value.is_(None))
            if order.kind == "metric":
                order_by.append(keyed.c.run_id.is_(None))  # a NaN (row, NULL value) before no row
        order_by.append(value.asc() if order.ascending else value.desc())
    return stmt.order_by(*order_by, runs.c.start_time.desc(), runs.c.run_id.asc())


def run_filter(clauses: list[Clause]) -> list[ColumnElement]:
    """One boolean expression on ``runs`` per clause, all to be ANDed."""
    return [_condition(clause) for clause in clauses]


def apply_experiment_search(stmt: Select, clauses: list[Clause], orders: list[Order]) -> Select:
    """``stmt`` (a SELECT whose FROM is ``experiments``) filtered by ``clauses`` and ordered by
    ``orders`` (attributes only: ``search.EXPERIMENTS``), with MLflow's default order and
    tie-breaker. The caller adds its own WHERE (lifecycle), LIMIT and OFFSET."""
    e = experiments.c
    stmt = stmt.where(*[_experiment_condition(clause) for clause in clauses])
    if not orders:
        return stmt.order_by(e.creation_time.desc(), e.experiment_id.asc())
    order_by = [e[o.key].asc() if o.ascending else e[o.key].desc() for o in orders]
    if not any(o.key == "experiment_id" for o in orders):
        order_by.append(e.experiment_id.desc())
    return stmt.order_by(*order_by)


def _experiment_condition(clause: Clause) -> ColumnElement:
    if clause.kind == "attribute":
        return compare(experiments.c[clause.key], clause.op, clause.value)
    return keyed_condition(experiment_tags, experiment_tags.c.experiment_id == experiments.c.experiment_id, clause)


def _condition(clause: Clause) -> ColumnElement:
    if clause.kind == "attribute":
        return compare(runs.c[clause.key], clause.op, clause.value)
    keyed = _KEYED[clause.kind]
    return keyed_condition(keyed, keyed.c.run_id == runs.c.run_id, clause)


def keyed_condition(keyed, owner: ColumnElement, clause: Clause) -> ColumnElement:
    """A clause on a key-value table (params, tags, latest metrics, experiment tags) whose rows
    ``owner`` ties to the outer row: the outer row must have the key, and its value match."""
    has_key = and_(owner, keyed.c.key == clause.key)
    if clause.op == "IS NULL":
        return ~exists().where(has_key)
    if clause.op == "IS NOT NULL":
        return exists().where(has_key)
    return exists().where(has_key, compare(keyed.c.value, clause.op, clause.value))


def compare(column: ColumnElement, op: str, value) -> ColumnElement:
    if op == "IN":
        return column.in_(value)
    if op == "NOT IN":
        return column.not_in(value)
    if op == "LIKE":
        return _CaseSensitiveLike(column, literal(value), literal(_like_to_glob(value)))
    if op == "ILIKE":
        return column.ilike(value, escape="\\")
    if isinstance(value, float):
        # Typed as a double, so that start_time > 1.5 is not cast to BIGINT on PostgreSQL.
        value = literal(value, Float(precision=53))
    return _COMPARE[op](column, value)


class _CaseSensitiveLike(FunctionElement):
    """``column LIKE pattern``, case-sensitive as in PostgreSQL and MLflow. Arguments: the column,
    the LIKE pattern and the same pattern as a GLOB, which SQLite uses instead because its LIKE
    ignores case (and ``PRAGMA case_sensitive_like`` would change every connection)."""

    type = Boolean()
    inherit_cache = True
    name = "case_sensitive_like"


@compiles(_CaseSensitiveLike)
def _compile_like(element, compiler, **kw) -> str:
    column, pattern, _glob = element.clauses
    return compiler.process(column.like(pattern, escape="\\"), **kw)


@compiles(_CaseSensitiveLike, "sqlite")
def _compile_glob(element, compiler, **kw) -> str:
    column, _pattern, glob = element.clauses
    return compiler.process(column.op("GLOB")(glob), **kw)


def _like_to_glob(pattern: str) -> str:
    """The GLOB pattern matching what LIKE ``pattern`` (escape ``\\``) matches: ``%`` is ``*``,
    ``_`` is ``?``, and GLOB's own ``* ? [`` are bracketed to stand for themselves. The parser
    refuses a pattern that ends with a lone ``\\``."""
    glob = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            char = next(chars)
        elif char in "%_":
            glob.append("*" if char == "%" else "?")
            continue
        glob.append(f"[{char}]" if char in "*?[" else char)
    return "".join(glob)
