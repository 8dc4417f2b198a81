"""The home page: every experiment with its run count and last activity, searchable by name."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request

from flowml.server.ui.render import page

router = APIRouter()


@dataclass
class ExperimentRow:
    id: str
    name: str
    runs: int
    last_run: int | None
    created: int


@router.get("/")
def experiments(request: Request, q: str = ""):
    store = request.app.state.store
    stats = store.experiment_stats()
    rows = [ExperimentRow(e.experiment_id, e.name, *stats.get(e.experiment_id, (0, None)), e.creation_time)
            for e in all_experiments(store) if q.lower() in e.name.lower()]
    rows.sort(key=lambda r: (r.last_run or r.created or 0), reverse=True)  # where work happened last, first
    return page(request, "experiments.html", title="Experiments", section="experiments", experiments=rows, q=q)


def all_experiments(store) -> list:
    """Every active experiment (a team has tens, not thousands: one query per 1,000)."""
    found, token = [], None
    while True:
        some, token = store.search_experiments(max_results=1000, page_token=token)
        found.extend(some)
        if not token:
            return found
