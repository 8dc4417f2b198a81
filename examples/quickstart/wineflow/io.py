"""Reading and writing the quickstart's files: CSV tables and JSON documents.

Everything here writes deterministic bytes: the same data gives the same file,
so flowml's content hashes only change when the content does.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

TARGET = "target"


def read_xy(csv_path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read a CSV with a header row; return (X, y, feature_names).

    ``y`` is the ``target`` column (as int); ``X`` is every other column, as float64.
    """
    path = Path(csv_path)
    with path.open(newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"{path}: empty file, expected a header row") from None
        if TARGET not in header:
            raise ValueError(f"{path}: no {TARGET!r} column in the header")
        t = header.index(TARGET)
        features = [name for i, name in enumerate(header) if i != t]
        xs: list[list[float]] = []
        ys: list[int] = []
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(
                    f"{path}:{line_no}: expected {len(header)} fields, got {len(row)}"
                )
            try:
                xs.append([float(v) for i, v in enumerate(row) if i != t])
                ys.append(int(row[t]))
            except ValueError as exc:
                raise ValueError(f"{path}:{line_no}: {exc}") from None
    if not ys:
        raise ValueError(f"{path}: no data rows")
    return np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.int64), features


def write_xy(
    csv_path: str | os.PathLike[str],
    X: np.ndarray,
    y: np.ndarray,
    feature_names: Sequence[str],
) -> None:
    """Write X and y as a CSV in the layout ``read_xy`` reads (target last).

    Floats are written with ``repr`` so they round-trip exactly.
    """
    path = Path(csv_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([*feature_names, TARGET])
        for row, target in zip(X, y):
            writer.writerow([repr(float(v)) for v in row] + [int(target)])


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as JSON with sorted keys, two-space indent and a final newline."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, sort_keys=True, indent=2) + "\n")
