"""Runs as a pandas DataFrame with MLflow's columns (``metrics.rmse``, ``params.alpha`` ...),
for ``search_runs``'s default output. pandas is imported only here."""

from __future__ import annotations

from flowml.errors import TrackingError
from flowml.tracking.entities import Run


def runs_frame(runs: list[Run]):
    try:
        import pandas as pd
    except ImportError:
        raise TrackingError("search_runs returns a pandas DataFrame by default: install pandas, "
                            "or pass output_format='list'") from None
    rows = []
    for run in runs:
        info = run.info
        row = {"run_id": info.run_id, "experiment_id": info.experiment_id, "status": info.status,
               "artifact_uri": info.artifact_uri,
               "start_time": pd.to_datetime(info.start_time, unit="ms", utc=True),
               "end_time": pd.to_datetime(info.end_time, unit="ms", utc=True) if info.end_time else pd.NaT}
        row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
        row.update({f"params.{k}": v for k, v in run.data.params.items()})
        row.update({f"tags.{k}": v for k, v in run.data.tags.items()})
        rows.append(row)
    columns = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    return pd.DataFrame(rows, columns=columns + sorted({c for r in rows for c in r} - set(columns)))
