"""The charts' server-side downsampling (flowml.server.ui.downsample), as a unit."""

from __future__ import annotations

import math

import pytest

from flowml.server.ui.downsample import downsample


def history(values) -> list[tuple]:
    return [(step, 1_700_000_000_000 + step * 1000, value) for step, value in enumerate(values)]


def test_a_short_history_is_kept_whole():
    points = history([1.0, 2.0, 3.0])
    assert downsample(points, 8) == points
    assert downsample(history(range(100)), 100) == history(range(100))


@pytest.mark.parametrize("limit", [8, 9, 100, 999, 1000])
def test_the_limit_is_respected_and_order_kept(limit):
    points = history(math.sin(i / 50) for i in range(10_000))
    thinned = downsample(points, limit)
    assert len(thinned) <= limit
    assert len(thinned) >= limit - 3  # the room is used, not wasted
    assert [p[0] for p in thinned] == sorted({p[0] for p in thinned})  # by step, no repeats
    assert thinned[0] == points[0] and thinned[-1] == points[-1]
    assert set(thinned) <= set(points)  # real points, not made-up averages


def test_spikes_and_dips_survive():
    values = [1.0] * 50_000
    values[12_345], values[40_001], values[7] = 90.0, -40.0, 1.5  # one-point outliers
    thinned = downsample(history(values), 200)
    kept = {p[0]: p[2] for p in thinned}
    assert kept[12_345] == 90.0 and kept[40_001] == -40.0 and kept[7] == 1.5


def test_the_shape_is_kept():
    """A slow wave with fast noise on it: over every stretch of the history, the kept points
    reach as high and as low as the full history (give or take the wave's drift over one
    bucket), so the noise band is drawn as wide as it is, not averaged away."""
    values = [math.sin(i / 3000) * 10 + (i % 17) * 0.1 for i in range(30_000)]
    thinned = downsample(history(values), 500)  # buckets of 120 points: the wave drifts < 0.4 over one
    for start in range(0, 30_000, 600):
        full = values[start:start + 600]
        kept = [p[2] for p in thinned if start <= p[0] < start + 600]
        assert max(full) - max(kept) < 0.4 and min(kept) - min(full) < 0.4
    assert max(p[2] for p in thinned) == max(values) and min(p[2] for p in thinned) == min(values)


def test_non_finite_values_are_not_extremes_but_gaps_survive():
    values = [float(i % 10) for i in range(20_000)]
    values[5_000] = math.nan
    values[15_000] = math.inf
    values[16_000] = -math.inf
    thinned = downsample(history(values), 300)
    assert len(thinned) <= 300
    finite = [p[2] for p in thinned if math.isfinite(p[2])]
    assert min(finite) == 0.0 and max(finite) == 9.0  # an infinity does not take the place of the max
    steps = {p[0] for p in thinned}
    assert {5_000, 15_000, 16_000} <= steps  # each gap is still there to be drawn as one


def test_a_history_of_only_nan_is_thinned_too():
    thinned = downsample(history([math.nan] * 5000), 100)
    assert 2 <= len(thinned) <= 100 and all(math.isnan(p[2]) for p in thinned)


def test_a_limit_too_small_for_a_shape_is_refused():
    with pytest.raises(ValueError):
        downsample(history(range(100)), 3)


def test_100000_points_are_thinned_within_the_bound():
    points = history(math.sin(i / 1000) for i in range(100_000))
    thinned = downsample(points, 1000)
    assert len(thinned) <= 1000
