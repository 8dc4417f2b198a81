"""Metric charts: one chart per chosen metric with every chosen run overlaid, drawn in the
browser by static/charts.js (our own SVG) from ``/ui-api/metric-history``.

The page itself holds no history, only the runs, their metric keys and the chart settings;
each chart asks for its metric's points, thinned on the server to about what it can draw
(:mod:`flowml.server.ui.downsample`), so a history of a million points costs the browser no
more than one of a thousand.
"""

from __future__ import annotations

import math

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from flowml.errors import TrackingError
from flowml.server.ui.downsample import SMALLEST_LIMIT, downsample
from flowml.server.ui.render import page
from flowml.server.ui.selection import MAX_RUNS, crumbs, select_runs
from flowml.tracking.entities import json_number

router = APIRouter()

X_AXES = {"step": "Step", "time": "Wall time", "relative": "Relative time"}
DEFAULT_CHARTS = 6  # charts shown when none is chosen: the first keys, by name
DEFAULT_POINTS = 1000
MAX_POINTS = 20_000


@router.get("/charts")
def charts(request: Request, runs: list[str] = Query(default=[]), metrics: list[str] = Query(default=[]),
           x: str = "step", log: int = 0, smooth: float = 0.0):
    store = request.app.state.store
    selection = select_runs(store, runs)
    keys = sorted({key for run in selection.runs for key in run.data.metrics})
    asked = list(dict.fromkeys(metrics))
    chosen = [k for k in asked if k in keys] if asked else keys[:DEFAULT_CHARTS]
    settings = {"x": x if x in X_AXES else "step", "log": bool(log), "smooth": min(max(smooth, 0.0), 0.99) if math.isfinite(smooth) else 0.0}
    status = 200 if selection.runs else (404 if selection.unknown else 400)
    return page(request, "charts.html", status, title="Charts", section="experiments",
                crumbs=crumbs(store, selection, "Charts"), selection=selection, keys=keys, chosen=chosen,
                missing_keys=[k for k in asked if k not in keys], settings=settings, x_axes=X_AXES,
                script={"runs": [{"id": r.info.run_id, "name": r.info.run_name or r.info.run_id[:8]}
                                 for r in selection.runs],
                        "metrics": chosen, "settings": settings, "max_points": DEFAULT_POINTS})


@router.get("/ui-api/metric-history")
def metric_history(request: Request, key: str, runs: list[str] = Query(),
                   max_points: int = Query(DEFAULT_POINTS, ge=SMALLEST_LIMIT, le=MAX_POINTS)):
    """``key``'s history in each of ``runs``: ``[step, timestamp, value]`` points (NaN and the
    infinities as MLflow's strings), at most ``max_points`` per run; a run whose history was
    longer says ``downsampled`` and its ``total``."""
    if len(runs) > MAX_RUNS:
        raise TrackingError(f"at most {MAX_RUNS} runs at a time, got {len(runs)}")
    found = request.app.state.store.metric_points(runs, key)
    unknown = [run_id for run_id in runs if run_id not in found]
    if unknown:
        raise TrackingError(f"no run with id '{unknown[0]}'", "RESOURCE_DOES_NOT_EXIST")
    series = [{"run_id": run_id, "total": len(points), "downsampled": len(points) > max_points,
               "points": [[step, ts, json_number(value)] for step, ts, value in downsample(points, max_points)]}
              for run_id, points in found.items()]
    return JSONResponse({"key": key, "max_points": max_points, "runs": series}, headers={"Cache-Control": "no-store"})
