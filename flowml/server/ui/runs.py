"""An experiment's runs table: chosen columns of params, metrics (latest values) and tags,
sorted by any column, filtered with ``search_runs``'s grammar, a page at a time.

Only the page's runs are loaded (100 by default), so the page costs the same with 10,000
runs as with 10. The columns offered are the keys the page's runs have, plus the ones chosen.
Sorted by time, pipeline runs are drawn as trees: a step run follows its pipeline run when both
are on the page (its steps start after it, so the order still holds). Sorted by anything else,
rows keep the sort's order, each step run naming its pipeline run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from fastapi import APIRouter, Request

from flowml.errors import TrackingError
from flowml.server.ui.render import page, run_duration, user_tags
from flowml.tracking.search import decode_page_token, encode_page_token

router = APIRouter()

PAGE_SIZES = (25, 50, 100, 250, 500)
KINDS = ("metrics", "params", "tags")
ATTRIBUTES = {"run_name": "Run", "status": "Status", "start_time": "Started", "end_time": "Ended", "user_id": "User"}
DEFAULT_ORDER = ("attributes.start_time", True)


@dataclass
class Column:
    """A table column: ``kind`` is metrics, params, tags or attributes."""

    kind: str
    key: str

    @property
    def ident(self) -> str:
        return f"{self.kind}.{self.key}"

    def order_clause(self, descending: bool) -> str:
        key = self.key if self.kind == "attributes" else "`" + self.key.replace("`", "") + "`"
        return f"{self.kind}.{key} {'DESC' if descending else 'ASC'}"


@dataclass
class Row:
    run: object
    depth: int = 0
    children: list = field(default_factory=list)  # run ids drawn under this one
    parent: str | None = None  # set on a step run whose pipeline run is on the page


@router.get("/experiments/{experiment_id}")
def runs_table(request: Request, experiment_id: str, filter: str = "", sort: str = "", desc: int = 1,
               size: int = 100, start: str = "", cols: list[str] | None = None):
    store = request.app.state.store
    experiment = store.get_experiment(experiment_id)
    size = size if size in PAGE_SIZES else 100
    sort_column = _parse_column(sort) or Column("attributes", DEFAULT_ORDER[0].split(".", 1)[1])
    descending = bool(desc) if sort else DEFAULT_ORDER[1]
    try:
        offset = decode_page_token(start or None)
    except TrackingError:  # a stale or edited link: start again from the first page
        offset, start = 0, ""
    runs, next_token, total, filter_error = [], None, 0, None
    try:
        runs, next_token = store.search_runs([experiment_id], filter, max_results=size,
                                             order_by=[sort_column.order_clause(descending)], page_token=start or None)
        total = store.count_runs([experiment_id], filter)
    except TrackingError as exc:
        filter_error = str(exc)
    chosen = [c for c in (_parse_column(c) for c in cols or []) if c and c.kind in KINDS]
    available = _available(runs, chosen)
    shown = chosen if cols else [Column(kind, key) for kind in ("metrics", "params") for key in available[kind]]
    query = {"filter": filter, "size": size, "cols": [c.ident for c in chosen]} if cols else {"filter": filter, "size": size}

    def link(**changes) -> str:
        values = {**query, "sort": sort_column.ident, "desc": int(descending), **changes}
        return f"/experiments/{experiment_id}?" + urlencode({k: v for k, v in values.items() if v not in ("", None)}, doseq=True)

    def sort_link(ident: str) -> str:
        flip = ident == sort_column.ident and descending
        return link(sort=ident, desc=0 if flip else 1, start="")

    pages = {"first": offset + 1 if runs else 0, "last": offset + len(runs), "total": total,
             "next": link(start=next_token) if next_token else None,
             "prev": link(start=encode_page_token(max(offset - size, 0))) if offset > 0 else None}
    return page(request, "runs.html", title=experiment.name, section="experiments",
                crumbs=[("Experiments", "/"), (experiment.name, None)], experiment=experiment,
                rows=_tree(runs) if sort_column.key == "start_time" else [Row(run) for run in runs],
                columns=shown, available=available, chosen={c.ident for c in shown}, sort=sort_column, descending=descending, sort_link=sort_link,
                filter=filter, filter_error=filter_error, size=size, sizes=PAGE_SIZES, pages=pages,
                duration=run_duration)


def _parse_column(text: str) -> Column | None:
    kind, _, key = text.partition(".")
    if key and (kind in KINDS or (kind == "attributes" and key in ATTRIBUTES)):
        return Column(kind, key)
    return None


def _available(runs: list, chosen: list[Column]) -> dict[str, list[str]]:
    """Keys of each kind the page's runs have (and the chosen ones), sorted; flowml's and
    MLflow's own tags are left out of the offer (the table shows what they say)."""
    keys: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for run in runs:
        keys["metrics"].update(run.data.metrics)
        keys["params"].update(run.data.params)
        keys["tags"].update(user_tags(run.data.tags))
    for column in chosen:
        keys[column.kind].add(column.key)
    return {kind: sorted(found) for kind, found in keys.items()}


def _tree(runs: list) -> list[Row]:
    """Rows in page order, each step run moved under its pipeline run when that is on the page."""
    rows = {run.info.run_id: Row(run) for run in runs}
    for row in rows.values():
        parent = row.run.data.tags.get("mlflow.parentRunId")
        if parent in rows and parent != row.run.info.run_id:
            row.parent = parent
            rows[parent].children.append(row.run.info.run_id)
    ordered: dict[str, Row] = {}

    def place(row: Row, depth: int) -> None:
        row.depth = depth
        ordered[row.run.info.run_id] = row
        for child in sorted(row.children, key=lambda i: rows[i].run.info.start_time or 0):
            if child not in ordered:  # parent tags that form a cycle cannot recurse forever
                place(rows[child], depth + 1)

    for row in rows.values():
        if row.parent is None:
            place(row, 0)
    for row in rows.values():  # in a cycle of parent tags: drawn flat rather than lost
        if row.run.info.run_id not in ordered:
            row.parent, row.children = None, []
            place(row, 0)
    return list(ordered.values())
