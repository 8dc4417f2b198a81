"""Where to draw a pipeline's steps, and which chain of them took longest: pure functions, no
web framework, so that the pipeline page only turns their answer into SVG.

The layout is a small Sugiyama-style one, drawn left to right as a pipeline reads:

1. **Layers**: networkx's topological generations (a step sits one column after the latest of
   the steps it needs).
2. **Long edges** (``prepare -> evaluate`` across the ``train`` column) get a waypoint in each
   column they cross, so that they bend around the steps there instead of running through them.
3. **Order within a column**: barycenter sweeps (each step moves towards the mean position of
   its neighbours in the column before, then after), keeping the order with the fewest crossings.
4. **Coordinates**: columns of fixed width; each column's boxes stacked and centred vertically.

Edges are cubic curves with horizontal tangents, so that they leave a box on its right and
enter the next on its left, as people draw pipelines by hand.
"""

from __future__ import annotations

import math

from dataclasses import dataclass

import networkx as nx

NODE_W, NODE_H = 184, 54  # a step's box
GAP_X, GAP_Y = 64, 18  # between columns, between boxes in a column
WAYPOINT_H = 10  # the room a long edge takes where it crosses a column
MARGIN = 16
SWEEPS = 8


@dataclass(frozen=True)
class Box:
    """A step's box: top-left corner and size."""

    name: str
    x: float
    y: float
    width: float = NODE_W
    height: float = NODE_H


@dataclass(frozen=True)
class Wire:
    """An edge as drawn: the SVG path from ``source``'s right side to ``target``'s left side."""

    source: str
    target: str
    d: str


@dataclass(frozen=True)
class Layout:
    boxes: dict[str, Box]
    wires: list[Wire]
    width: float
    height: float
    acyclic: bool = True  # False: the edges had a cycle, so none were drawn


@dataclass(frozen=True, eq=False)  # each one is unique: hashed by identity, which is fast
class _Waypoint:
    """Where a long edge crosses a column."""

    column: int


def layout(nodes: list[str], edges: list[tuple[str, str]]) -> Layout:
    """Positions for ``nodes`` and paths for ``edges`` (edges naming unknown nodes are ignored;
    if the edges have a cycle, the nodes are drawn in one column without edges)."""
    edges = _known_edges(nodes, edges)
    graph = _graph(nodes, edges)
    if not nx.is_directed_acyclic_graph(graph):
        return _place([list(nodes)], {}, acyclic=False)
    columns, links, routes = _with_waypoints(graph, layers(graph))
    return _place(order_columns(columns, links), routes)


def layers(graph: nx.DiGraph) -> list[list]:
    """The topological generations of ``graph``, each in the order its nodes were added."""
    rank = {node: i for i, node in enumerate(graph.nodes)}
    return [sorted(generation, key=rank.__getitem__) for generation in nx.topological_generations(graph)]


def order_columns(columns: list[list], links: list[tuple]) -> list[list]:
    """``columns`` reordered to reduce crossings among ``links`` (pairs between adjacent
    columns): barycenter sweeps down and up, keeping the best order seen."""
    column_of = {node: i for i, column in enumerate(columns) for node in column}
    gaps: list[list[tuple]] = [[] for _ in columns]  # gaps[i]: the links from column i to i + 1
    preds: dict = {}
    succs: dict = {}
    for a, b in links:
        gaps[column_of[a]].append((a, b))
        succs.setdefault(a, []).append(b)
        preds.setdefault(b, []).append(a)

    def total(order: list[list]) -> int:
        return sum(crossings(order[i], order[i + 1], gaps[i]) for i in range(len(order) - 1))

    current = [list(c) for c in columns]
    best, best_crossings = [list(c) for c in columns], total(current)
    for sweep in range(SWEEPS):
        if best_crossings == 0:
            break
        down = sweep % 2 == 0
        for i in (range(1, len(current)) if down else range(len(current) - 2, -1, -1)):
            fixed = {node: pos for pos, node in enumerate(current[i - 1 if down else i + 1])}
            current[i] = _by_barycenter(current[i], preds if down else succs, fixed)
        found = total(current)
        if found < best_crossings:
            best, best_crossings = [list(c) for c in current], found
    return best


def crossings(upper: list, lower: list, links: list[tuple]) -> int:
    """How many of ``links`` cross between two adjacent columns in the given orders: with the
    links sorted by their upper end, the pairs whose lower ends come in the opposite order
    (counted with a Fenwick tree, so a column of hundreds of steps costs milliseconds)."""
    pos_a = {node: i for i, node in enumerate(upper)}
    pos_b = {node: i for i, node in enumerate(lower)}
    between = sorted((pos_a[a], pos_b[b]) for a, b in links if a in pos_a and b in pos_b)
    tree = [0] * (len(lower) + 1)  # tree[i]: how many lower ends seen so far, by Fenwick ranges
    found = 0
    for seen, (_, b) in enumerate(between):
        i, at_most_b = b + 1, 0
        while i > 0:
            at_most_b += tree[i]
            i -= i & -i
        found += seen - at_most_b  # earlier links whose lower end comes after b: they cross this one
        i = b + 1
        while i < len(tree):
            tree[i] += 1
            i += i & -i
    return found


def critical_path(durations: dict[str, float | None], edges: list[tuple[str, str]]) -> tuple[list[str], float]:
    """The chain of steps whose durations add up to the most (the pipeline could not have
    finished sooner than that, however many workers it had), and that sum. Steps without a
    duration count as 0; on a tie the chain found first in ``durations``' order wins."""
    graph = _graph(list(durations), _known_edges(list(durations), edges))
    if not durations or not nx.is_directed_acyclic_graph(graph):
        return [], 0.0
    total: dict[str, float] = {}
    came_from: dict[str, str | None] = {}
    rank = {node: i for i, node in enumerate(durations)}
    for node in nx.lexicographical_topological_sort(graph, key=rank.__getitem__):
        before = max(graph.predecessors(node), key=lambda p: total[p], default=None)
        own = durations[node] if durations[node] is not None and math.isfinite(durations[node]) else 0.0
        total[node] = own + (total[before] if before is not None else 0.0)
        came_from[node] = before
    end = max(durations, key=lambda n: total[n])
    path: list[str] = []
    node: str | None = end
    while node is not None:
        path.append(node)
        node = came_from[node]
    return path[::-1], total[end]


# helpers ---------------------------------------------------------------------------------

def _known_edges(nodes: list[str], edges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    known = set(nodes)
    return list(dict.fromkeys((a, b) for a, b in edges if a in known and b in known and a != b))


def _graph(nodes: list, edges: list[tuple]) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edges)
    return graph


def _with_waypoints(graph: nx.DiGraph, columns: list[list]) -> tuple[list[list], list[tuple], dict]:
    """The columns with a waypoint wherever an edge skips a column, the links between adjacent
    columns that the edges become, and each edge's waypoints from left to right."""
    column_of = {node: i for i, column in enumerate(columns) for node in column}
    columns = [list(c) for c in columns]
    links: list[tuple] = []
    routes: dict[tuple, list[_Waypoint]] = {}
    for a, b in graph.edges:
        previous = a
        route = routes[a, b] = [_Waypoint(i) for i in range(column_of[a] + 1, column_of[b])]
        for waypoint in route:
            columns[waypoint.column].append(waypoint)
            links.append((previous, waypoint))
            previous = waypoint
        links.append((previous, b))
    return columns, links, routes


def _by_barycenter(column: list, neighbours: dict, fixed: dict) -> list:
    """``column`` sorted by the mean position of each node's neighbours in the fixed column;
    a node without any keeps its place."""
    def key(item: tuple[int, object]) -> float:
        index, node = item
        places = [fixed[n] for n in neighbours.get(node, ()) if n in fixed]
        return sum(places) / len(places) if places else index

    return [node for _, node in sorted(enumerate(column), key=key)]


def _place(columns: list[list], routes: dict[tuple, list[_Waypoint]], acyclic: bool = True) -> Layout:
    heights = [sum(_height(n) for n in column) + GAP_Y * (len(column) - 1) for column in columns]
    tallest = max(heights, default=0)
    centres: dict = {}  # node or waypoint -> (left x, centre y)
    boxes: dict[str, Box] = {}
    for i, (column, height) in enumerate(zip(columns, heights)):
        x, y = MARGIN + i * (NODE_W + GAP_X), MARGIN + (tallest - height) / 2
        for node in column:
            centres[node] = (x, y + _height(node) / 2)
            if not isinstance(node, _Waypoint):
                boxes[node] = Box(node, x, y)
            y += _height(node) + GAP_Y
    wires = [Wire(a, b, _path([centres[a], *(centres[w] for w in route), centres[b]]))
             for (a, b), route in routes.items()]
    width = 2 * MARGIN + len(columns) * NODE_W + max(len(columns) - 1, 0) * GAP_X
    return Layout(boxes, wires, width, tallest + 2 * MARGIN, acyclic)


def _height(node) -> float:
    return WAYPOINT_H if isinstance(node, _Waypoint) else NODE_H


def _path(centres: list[tuple[float, float]]) -> str:
    """From the right side of the first box, across each waypoint's column, to the left side of
    the last box (``centres`` are left-edge centres): a curve over each gap, a straight run
    across each waypoint's column."""
    points = [(centres[0][0] + NODE_W, centres[0][1])]
    for x, y in centres[1:-1]:
        points += [(x, y), (x + NODE_W, y)]
    points.append(centres[-1])
    d = f"M{points[0][0]:.1f},{points[0][1]:.1f}"
    for i in range(0, len(points) - 1, 2):
        (x1, y1), (x2, y2) = points[i], points[i + 1]
        bend = (x2 - x1) / 2
        d += f" C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
        if i + 2 < len(points):
            d += f" L{points[i + 2][0]:.1f},{points[i + 2][1]:.1f}"
    return d
