"""The runs a chart or a comparison is about (``?runs=<id>&runs=<id>``): found in the order
given, with the ids that name no run kept aside so the page can say so.

Both pages colour run ``i`` with the series colour ``s<i>`` (app.css), so a run keeps its
colour from the comparison to its charts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flowml.errors import TrackingError

MAX_RUNS = 50  # past this a chart is a tangle and a comparison a wall; the page says what it left out


@dataclass
class Selection:
    runs: list = field(default_factory=list)  # the runs found, in the order asked for
    unknown: list[str] = field(default_factory=list)  # ids that name no run
    left_out: int = 0  # ids past MAX_RUNS

    @property
    def ids(self) -> list[str]:
        return [run.info.run_id for run in self.runs]


def select_runs(store, ids: list[str]) -> Selection:
    """The runs named by ``ids`` (blank and repeated ids ignored; at most :data:`MAX_RUNS`)."""
    wanted = list(dict.fromkeys(i.strip() for i in ids if i.strip()))
    selection = Selection(left_out=max(len(wanted) - MAX_RUNS, 0))
    for run_id in wanted[:MAX_RUNS]:
        try:
            selection.runs.append(store.get_run(run_id))
        except TrackingError as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            selection.unknown.append(run_id)
    return selection


def find_run(store, run_id: str | None):
    """The run ``run_id`` names, or None when there is none to show (no id, deleted, never existed)."""
    if not run_id:
        return None
    try:
        return store.get_run(run_id)
    except TrackingError:
        return None


def crumbs(store, selection: Selection, label: str) -> list[tuple[str, str | None]]:
    """Experiments / <the runs' experiment, when they share one> / ``label``."""
    experiments = {run.info.experiment_id for run in selection.runs}
    trail: list[tuple[str, str | None]] = [("Experiments", "/")]
    if len(experiments) == 1:
        experiment = store.get_experiment(experiments.pop())
        trail.append((experiment.name, f"/experiments/{experiment.experiment_id}"))
    return trail + [(label, None)]
