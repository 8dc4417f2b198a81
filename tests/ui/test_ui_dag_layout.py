"""The pipeline page's graph layout and critical path (pure functions, no server)."""

from __future__ import annotations

import itertools
import random

import pytest

from flowml.server.ui.dag_layout import NODE_H, NODE_W, crossings, critical_path, layout, order_columns

QUICKSTART = ["prepare", "train[max_depth=2]", "train[max_depth=4]", "train[max_depth=8]", "evaluate", "register"]
QUICKSTART_EDGES = [("prepare", "train[max_depth=2]"), ("prepare", "train[max_depth=4]"), ("prepare", "train[max_depth=8]"),
                    ("train[max_depth=2]", "evaluate"), ("train[max_depth=8]", "evaluate"),
                    ("train[max_depth=4]", "evaluate"), ("prepare", "evaluate"), ("evaluate", "register")]


def _columns(drawing) -> list[list[str]]:
    """Box names grouped by column (x), each top to bottom."""
    by_x: dict[float, list] = {}
    for box in drawing.boxes.values():
        by_x.setdefault(box.x, []).append(box)
    return [[b.name for b in sorted(by_x[x], key=lambda b: b.y)] for x in sorted(by_x)]


def test_steps_sit_in_topological_layers_left_to_right():
    drawing = layout(QUICKSTART, QUICKSTART_EDGES)
    columns = _columns(drawing)
    assert [sorted(c) for c in columns] == [["prepare"], sorted(QUICKSTART[1:4]), ["evaluate"], ["register"]]
    for a, b in QUICKSTART_EDGES:  # every edge points right
        assert drawing.boxes[a].x < drawing.boxes[b].x


def test_boxes_do_not_overlap_and_fit_the_drawing():
    nodes = [f"n{i}" for i in range(12)]
    edges = [(f"n{i}", f"n{j}") for i in range(12) for j in range(i + 1, 12) if (i * 7 + j) % 5 == 0]
    drawing = layout(nodes, edges)
    for a, b in itertools.combinations(drawing.boxes.values(), 2):
        apart = a.x + NODE_W <= b.x or b.x + NODE_W <= a.x or a.y + NODE_H <= b.y or b.y + NODE_H <= a.y
        assert apart, (a, b)
    for box in drawing.boxes.values():
        assert 0 <= box.x and box.x + box.width <= drawing.width
        assert 0 <= box.y and box.y + box.height <= drawing.height


def test_every_edge_is_a_curve_from_its_source_to_its_target():
    drawing = layout(QUICKSTART, QUICKSTART_EDGES)
    assert {(w.source, w.target) for w in drawing.wires} == set(QUICKSTART_EDGES)
    for wire in drawing.wires:
        source, target = drawing.boxes[wire.source], drawing.boxes[wire.target]
        assert wire.d.startswith(f"M{source.x + NODE_W:.1f},{source.y + NODE_H / 2:.1f} C")
        assert wire.d.endswith(f"{target.x:.1f},{target.y + NODE_H / 2:.1f}")


def test_a_long_edge_bends_around_the_column_it_crosses():
    drawing = layout(QUICKSTART, QUICKSTART_EDGES)
    skip = next(w for w in drawing.wires if (w.source, w.target) == ("prepare", "evaluate"))
    assert " L" in skip.d  # a straight run through a waypoint in the train column
    run_y = float(skip.d.split(" L")[1].split(",")[1].split()[0])
    trains = [drawing.boxes[n] for n in QUICKSTART[1:4]]
    assert all(run_y < b.y or run_y > b.y + NODE_H for b in trains)  # not through a train box


def test_ordering_removes_avoidable_crossings():
    # a -> y and b -> x drawn in the given order cross once; swapping one column uncrosses them
    columns, links = [["a", "b"], ["x", "y"]], [("a", "y"), ("b", "x")]
    assert crossings(*columns, links) == 1
    ordered = order_columns(columns, links)
    assert crossings(ordered[0], ordered[1], links) == 0


def test_crossings_counts_every_pair_of_links_that_cross():
    rng = random.Random(7)
    for _ in range(200):
        upper, lower = [f"u{i}" for i in range(rng.randint(1, 7))], [f"l{i}" for i in range(rng.randint(1, 7))]
        links = list({(rng.choice(upper), rng.choice(lower)) for _ in range(rng.randint(0, 15))})
        ends = [(upper.index(a), lower.index(b)) for a, b in links]
        pairwise = sum((a1 - a2) * (b1 - b2) < 0 for (a1, b1), (a2, b2) in itertools.combinations(ends, 2))
        assert crossings(upper, lower, links) == pairwise


def test_ordering_never_makes_crossings_worse():
    columns = [["a", "b", "c"], ["d", "e", "f"], ["g", "h"]]
    links = [("a", "f"), ("b", "d"), ("c", "e"), ("d", "h"), ("e", "g"), ("f", "g")]
    before = sum(crossings(columns[i], columns[i + 1], links) for i in range(2))
    after_columns = order_columns(columns, links)
    after = sum(crossings(after_columns[i], after_columns[i + 1], links) for i in range(2))
    assert after <= before and after == 0
    assert [sorted(c) for c in after_columns] == [sorted(c) for c in columns]


def test_a_cycle_is_drawn_without_edges():
    drawing = layout(["a", "b"], [("a", "b"), ("b", "a")])
    assert not drawing.acyclic and drawing.wires == []
    assert set(drawing.boxes) == {"a", "b"}


def test_edges_to_unknown_steps_are_ignored():
    drawing = layout(["a", "b"], [("a", "b"), ("a", "ghost"), ("a", "a")])
    assert [(w.source, w.target) for w in drawing.wires] == [("a", "b")]


def test_critical_path_is_the_longest_chain_by_duration():
    durations = {"prepare": 3.0, "train[max_depth=2]": 4.5, "train[max_depth=4]": 6.0, "train[max_depth=8]": 2.0,
                 "evaluate": 3.0, "register": 0.5}
    path, total = critical_path(durations, QUICKSTART_EDGES)
    assert path == ["prepare", "train[max_depth=4]", "evaluate", "register"]
    assert total == pytest.approx(12.5)


def test_critical_path_prefers_a_long_single_step_over_a_chain_of_short_ones():
    durations = {"a": 1.0, "b": 1.0, "c": 1.0, "slow": 10.0}
    assert critical_path(durations, [("a", "b"), ("b", "c")]) == (["slow"], 10.0)


def test_critical_path_counts_missing_durations_as_zero_and_handles_empty_and_cyclic_graphs():
    assert critical_path({"a": None, "b": 2.0}, [("a", "b")]) == (["a", "b"], 2.0)
    assert critical_path({}, []) == ([], 0.0)
    assert critical_path({"a": 1.0, "b": 1.0}, [("a", "b"), ("b", "a")]) == ([], 0.0)
