"""What ``flowml runs`` and ``flowml experiments`` print: rich tables for people, and
MLflow-shaped JSON (``--json``) for machines. rich is imported only here.

Every cell is a :class:`rich.text.Text`, never markup: run names like ``train[alpha=0.1]``
and whatever users put in params and tags must print as written.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from flowml.tracking.entities import Experiment, Run

MAX_METRIC_COLUMNS = 4


def runs_table(runs: list[Run]):
    """One row per run; child runs follow their parent, indented; the most common metrics as columns."""
    from rich.table import Table

    keys = _common_keys([r.data.metrics for r in runs], MAX_METRIC_COLUMNS)
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("run id", "name", "status", "started", "duration", "cache", *keys):
        table.add_column(column, justify="right" if column in keys or column == "duration" else "left")
    for run, depth in _tree(runs):
        tags = run.data.tags
        cache = {"true": "hit", "false": "miss"}.get(tags.get("flowml.cache_hit", ""), "")
        add_row(table, run.info.run_id, "  " * depth + run.info.run_name, run.info.status, format_time(run.info.start_time),
             _duration(run), cache, *(_number(run.data.metrics.get(k)) for k in keys))
    return table


def run_details(run: Run, children: list[Run], artifacts: list[str]):
    """Everything about one run, as a group of small tables."""
    from rich.console import Group
    from rich.table import Table

    info = run.info
    head = pairs_table("run", {"id": info.run_id, "name": info.run_name, "experiment": info.experiment_id,
                          "status": info.status, "user": info.user_id, "started": format_time(info.start_time),
                          "duration": _duration(run), "artifacts": info.artifact_uri,
                          "lifecycle": info.lifecycle_stage})
    parts: list[Any] = [head]
    for title, values in (("params", run.data.params),
                          ("metrics (latest)", {k: _number(v) for k, v in run.data.metrics.items()}),
                          ("tags", run.data.tags)):
        if values:
            parts.append(pairs_table(title, dict(sorted(values.items()))))
    if artifacts:
        parts.append(pairs_table("artifacts", {path: "" for path in artifacts}))
    if children:
        table = Table(title="child runs", title_justify="left", box=None, header_style="bold")
        for column in ("run id", "name", "status", "cache"):
            table.add_column(column)
        for child in children:
            add_row(table, child.info.run_id, child.info.run_name, child.info.status,
                 {"true": "hit", "false": "miss"}.get(child.data.tags.get("flowml.cache_hit", ""), ""))
        parts.append(table)
    return Group(*parts)


def comparison(runs: list[Run]) -> dict[str, Any]:
    """Params and metrics of ``runs`` side by side, and the keys whose values differ."""
    out: dict[str, Any] = {"runs": [r.info.run_id for r in runs], "params": {}, "metrics": {}, "different": []}
    for section in ("params", "metrics"):
        keys = sorted({k for r in runs for k in getattr(r.data, section)})
        for key in keys:
            values = {r.info.run_id: getattr(r.data, section).get(key) for r in runs}
            out[section][key] = values
            if len({json.dumps(v) for v in values.values()}) > 1:
                out["different"].append(f"{section}.{key}")
    return out


def comparison_table(runs: list[Run]):
    """The comparison as a table; a row whose values differ is marked with ``*`` and highlighted."""
    from rich.table import Table
    from rich.text import Text

    data = comparison(runs)
    table = Table(box=None, header_style="bold")
    table.add_column("")
    table.add_column("key")
    for run in runs:
        table.add_column(Text(f"{run.info.run_name}\n{run.info.run_id[:8]}"), justify="right")
    for section in ("params", "metrics"):
        for key, values in data[section].items():
            differs = f"{section}.{key}" in data["different"]
            cells = [_number(v) if section == "metrics" else ("" if v is None else v) for v in values.values()]
            add_row(table, "*" if differs else "", f"{section}.{key}", *cells, style="bold yellow" if differs else None)
    return table


def experiments_table(experiments: list[Experiment], stats: dict[str, tuple[int, int | None]]):
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("id", "name", "runs", "last activity", "stage"):
        table.add_column(column, justify="right" if column == "runs" else "left")
    for exp in experiments:
        count, last = stats.get(exp.experiment_id, (0, None))
        add_row(table, exp.experiment_id, exp.name, str(count), format_time(last or exp.last_update_time), exp.lifecycle_stage)
    return table


def _tree(runs: list[Run]) -> list[tuple[Run, int]]:
    """Runs in their order, each child moved right under its parent when the parent is listed."""
    listed = {r.info.run_id for r in runs}
    children: dict[str, list[Run]] = {}
    roots = []
    for run in runs:
        parent = run.data.tags.get("mlflow.parentRunId")
        (children.setdefault(parent, []) if parent in listed else roots).append(run)
    out: list[tuple[Run, int]] = []

    def walk(run: Run, depth: int) -> None:
        out.append((run, depth))
        for child in sorted(children.get(run.info.run_id, []), key=lambda r: (r.info.start_time, r.info.run_id)):
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return out


def pairs_table(title: str, values: dict[str, Any]):
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for key, value in values.items():
        add_row(table, key, "" if value is None else str(value))
    return table


def add_row(table, *cells: str, style: str | None = None) -> None:
    from rich.text import Text

    table.add_row(*(Text(cell) for cell in cells), style=style)


def _common_keys(dicts: list[dict], limit: int) -> list[str]:
    counts: dict[str, int] = {}
    for d in dicts:
        for key in d:
            counts[key] = counts.get(key, 0) + 1
    return sorted(sorted(counts), key=lambda k: -counts[k])[:limit]


def format_time(ms: int | None) -> str:
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _duration(run: Run) -> str:
    if run.info.end_time is None:
        return ""
    return f"{(run.info.end_time - run.info.start_time) / 1000:.1f}s"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"
