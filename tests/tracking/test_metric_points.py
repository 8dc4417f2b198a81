"""SqlStore.metric_points: one key's history for several runs, as plain tuples (the UI's charts)."""

from __future__ import annotations

import math

from flowml.tracking.entities import Metric


def test_metric_points_gives_each_known_run_its_history_by_step(store, exp_id):
    first = store.create_run(exp_id).info.run_id
    second = store.create_run(exp_id).info.run_id
    without = store.create_run(exp_id).info.run_id
    store.log_batch(first, metrics=[Metric("loss", 3.0 - step, 100 + step, step) for step in (2, 0, 1)])
    store.log_batch(second, metrics=[Metric("loss", math.nan, 7, 0), Metric("loss", -math.inf, 8, 1),
                                     Metric("other", 1.0, 9, 0)])
    store.log_metric(without, Metric("other", 1.0, 1, 0))
    found = store.metric_points([second, "0" * 32, first, without, first], "loss")
    assert list(found) == [second, first, without]  # asked order, unknown id left out, duplicates once
    assert found[first] == [(0, 100, 3.0), (1, 101, 2.0), (2, 102, 1.0)]
    (nan_step, nan_time, nan), rest = found[second][0], found[second][1:]
    assert (nan_step, nan_time) == (0, 7) and math.isnan(nan) and rest == [(1, 8, -math.inf)]
    assert found[without] == []
    assert store.metric_points([], "loss") == {}
