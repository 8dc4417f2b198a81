"""Thinning a long metric history out to what a chart can show, without changing its shape.

A chart a thousand pixels wide cannot show more than a couple of values per pixel column, so
a history of 100,000 points is cut into buckets of consecutive points and each bucket keeps
only its lowest and its highest value, in their own order (the "min/max" reduction): every
spike and every dip survives, so do the first and the last point, and the line drawn through
what is left covers the same pixels as the full one. Points whose value is not a finite number
(NaN, an infinity) cannot be drawn but do mean something (a divergence, a gap): a bucket that
has any keeps its first one, so the chart can still show the gap.

Pure functions over ``(step, timestamp, value)`` tuples; the chart routes call them.
"""

from __future__ import annotations

import math
from typing import Sequence

Point = tuple  # (step, timestamp, value)
SMALLEST_LIMIT = 8


def downsample(points: Sequence[Point], limit: int) -> list[Point]:
    """At most ``limit`` of ``points`` (in order): all of them when they fit, else the first, the
    last, and each bucket's extremes (plus its first non-finite point, if it has one)."""
    if limit < SMALLEST_LIMIT:
        raise ValueError(f"a limit under {SMALLEST_LIMIT} points cannot keep a history's shape")
    if len(points) <= limit:
        return list(points)
    values = [p[2] for p in points]
    finite = all(map(math.isfinite, values))
    per_bucket = 2 if finite else 3
    buckets = (limit - 2) // per_bucket
    inner = len(points) - 2  # the first and the last point are kept as they are
    keep = [0]
    for b in range(buckets):
        lo, hi = 1 + b * inner // buckets, 1 + (b + 1) * inner // buckets
        keep.extend(sorted(set(_extremes(values, lo, hi) if finite else _extremes_and_gap(values, lo, hi))))
    keep.append(len(points) - 1)
    return [points[i] for i in keep]


def _extremes(values: list[float], lo: int, hi: int) -> tuple[int, int]:
    """Where ``values[lo:hi]`` (all finite) is lowest and highest."""
    span = range(lo, hi)
    return min(span, key=values.__getitem__), max(span, key=values.__getitem__)


def _extremes_and_gap(values: list[float], lo: int, hi: int) -> list[int]:
    """Where ``values[lo:hi]`` is lowest and highest among its finite values, and where its first
    non-finite value is (if any)."""
    numbers = [i for i in range(lo, hi) if math.isfinite(values[i])]
    kept = [min(numbers, key=values.__getitem__), max(numbers, key=values.__getitem__)] if numbers else []
    gap = next((i for i in range(lo, hi) if not math.isfinite(values[i])), None)
    return kept + ([gap] if gap is not None else [])
