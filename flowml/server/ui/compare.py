"""Comparing runs (``/compare?runs=<id>&runs=<id>``): their params, metrics and tags side by
side, a column per run and a row per key, rows whose values differ marked (and the others
hidden on demand); and a scatter plot of any param or metric against any other across the
runs (drawn by static/compare.js from the latest values the page carries; no history is read).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fastapi import APIRouter, Query, Request

from flowml.server.ui.render import page, user_tags
from flowml.server.ui.selection import crumbs, select_runs
from flowml.tracking.entities import json_number

router = APIRouter()



@dataclass
class Row:
    """One key across the runs: ``values[i]`` is run i's value, None where it has none;
    ``changed[i]``: whether it is not the first run's value."""

    key: str
    values: list
    changed: list[bool]

    @property
    def differs(self) -> bool:
        return any(self.changed)


@dataclass
class Section:
    title: str
    kind: str  # params, metrics or tags
    rows: list[Row]

    @property
    def differing(self) -> int:
        return sum(row.differs for row in self.rows)


@router.get("/compare")
def compare(request: Request, runs: list[str] = Query(default=[]), diff: int = 0):
    store = request.app.state.store
    selection = select_runs(store, runs)
    found = selection.runs
    sections = [Section("Params", "params", _rows([r.data.params for r in found])),
                Section("Metrics", "metrics", _rows([r.data.metrics for r in found])),
                Section("Tags", "tags", _rows([user_tags(r.data.tags)
                                               for r in found]))]
    enough = len(found) >= 2
    status = 200 if enough else (404 if selection.unknown else 400)
    return page(request, "compare.html", status, title="Compare runs", section="experiments",
                crumbs=crumbs(store, selection, "Compare"), selection=selection, enough=enough, sections=sections,
                only_diff=bool(diff), axes=_default_axes(sections),
                script={"runs": [_plotted(run) for run in found]} if enough else None)


def _rows(dicts: list[dict]) -> list[Row]:
    """A row per key any run has, by key."""
    keys = sorted({key for values in dicts for key in values})
    rows = []
    for key in keys:
        values = [values.get(key) for values in dicts]
        first = _comparable(values[0])
        rows.append(Row(key, values, [_comparable(v) != first for v in values]))
    return rows


def _comparable(value):
    """NaN equals NaN here (a run that diverged twice the same way is not a difference)."""
    return "nan" if isinstance(value, float) and math.isnan(value) else value


def _default_axes(sections: list[Section]) -> dict[str, str]:
    """The plot first shows the first param that differs against the first metric that differs
    (or the first of each, when none does)."""
    def first(section: Section) -> str:
        row = next((r for r in section.rows if r.differs), section.rows[0] if section.rows else None)
        return f"{section.kind}.{row.key}" if row else ""
    params, metrics = sections[0], sections[1]
    return {"x": first(params) or first(metrics), "y": first(metrics)}


def _plotted(run) -> dict:
    """What the plot needs of a run: its name, params and latest metrics (NaN and the
    infinities as MLflow's strings: JSON has no NaN)."""
    return {"id": run.info.run_id, "name": run.info.run_name or run.info.run_id[:8],
            "params": run.data.params, "metrics": {k: json_number(v) for k, v in run.data.metrics.items()}}
