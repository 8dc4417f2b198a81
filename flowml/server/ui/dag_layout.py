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


@dataclass(frozen=True)
class _Waypoint:
    """Where a long edge crosses a column."""

    source: str
    target: str
    column: int


def layout(nodes: list[str], edges: list[tuple[str, str]]) -> Layout:
    """Positions for ``nodes`` and paths for ``edges`` (edges naming unknown nodes are ignored;
    if the edges have a cycle, the nodes are drawn in one column without edges)."""
    edges = _known_edges(nodes, edges)
    graph = _graph(nodes, edges)
    if not nx.is_directed_acyclic_graph(graph):
        return _place([list(nodes)], _graph(nodes, []), acyclic=False)
    columns = order_columns(*_with_waypoints(graph, layers(graph)))
    return _place(columns, graph)


def layers(graph: nx.DiGraph) -> list[list]:
    """The topological generations of ``graph``, each in the order its nodes were added."""
    rank = {node: i for i, node in enumerate(graph.nodes)}
    return [sorted(generation, key=rank.__getitem__) for generation in nx.topological_generations(graph)]


def order_columns(columns: list[list], links: list[tuple]) -> list[list]:
    """``columns`` reordered to reduce crossings among ``links`` (pairs between adjacent
    columns): barycenter sweeps down and up, keeping the best order seen."""
    best, best_crossings = [list(c) for c in columns], _total_crossings(columns, links)
    current = [list(c) for c in columns]
    preds: dict = {}
    succs: dict = {}
    for a, b in links:
        succs.setdefault(a, []).append(b)
        preds.setdefault(b, []).append(a)
    for sweep in range(SWEEPS):
        down = sweep % 2 == 0
        indices = range(1, len(current)) if down else range(len(current) - 2, -1, -1)
        for i in indices:
            neighbours = preds if down else succs
            fixed = {node: pos for pos, node in enumerate(current[i - 1 if down else i + 1])}
            current[i] = _by_barycenter(current[i], neighbours, fixed)
        found = _total_crossings(current, links)
        if found < best_crossings:
            best, best_crossings = [list(c) for c in current], found
    return best


def crossings(upper: list, lower: list, links: list[tuple]) -> int:
    """How many of ``links`` cross between two adjacent columns in the given orders."""
    pos_a = {node: i for i, node in enumerate(upper)}
    pos_b = {node: i for i, node in enumerate(lower)}
    between = [(pos_a[a], pos_b[b]) for a, b in links if a in pos_a and b in pos_b]
    return sum(1 for i, (a1, b1) in enumerate(between) for a2, b2 in between[i + 1:] if (a1 - a2) * (b1 - b2) < 0)


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
        total[node] = (durations[node] or 0.0) + (total[before] if before is not None else 0.0)
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


def _with_waypoints(graph: nx.DiGraph, columns: list[list]) -> tuple[list[list], list[tuple]]:
    """The columns with a waypoint wherever an edge skips a column, and the links between
    adjacent columns that the edges become."""
    column_of = {node: i for i, column in enumerate(columns) for node in column}
    columns = [list(c) for c in columns]
    links: list[tuple] = []
    for a, b in graph.edges:
        previous = a
        for i in range(column_of[a] + 1, column_of[b]):
            waypoint = _Waypoint(a, b, i)
            columns[i].append(waypoint)
            links.append((previous, waypoint))
            previous = waypoint
        links.append((previous, b))
    return columns, links


def _by_barycenter(column: list, neighbours: dict, fixed: dict) -> list:
    """``column`` sorted by the mean position of each node's neighbours in the fixed column;
    a node without any keeps its place."""
    def key(item: tuple[int, object]) -> float:
        index, node = item
        places = [fixed[n] for n in neighbours.get(node, ()) if n in fixed]
        return sum(places) / len(places) if places else index

    return [node for _, node in sorted(enumerate(column), key=key)]


def _total_crossings(columns: list[list], links: list[tuple]) -> int:
    return sum(crossings(columns[i], columns[i + 1], links) for i in range(len(columns) - 1))


def _place(columns: list[list], graph: nx.DiGraph, acyclic: bool = True) -> Layout:
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
    wires = [Wire(a, b, _path(a, b, centres)) for a, b in graph.edges]
    width = 2 * MARGIN + len(columns) * NODE_W + max(len(columns) - 1, 0) * GAP_X
    return Layout(boxes, wires, width, tallest + 2 * MARGIN, acyclic)


def _height(node) -> float:
    return WAYPOINT_H if isinstance(node, _Waypoint) else NODE_H


def _path(a: str, b: str, centres: dict) -> str:
    """Right side of ``a``, through the waypoints of this edge, to the left side of ``b``."""
    ax, ay = centres[a]
    bx, by = centres[b]
    points = [(ax + NODE_W, ay)]
    for waypoint in sorted((w for w in centres if isinstance(w, _Waypoint) and (w.source, w.target) == (a, b)),
                           key=lambda w: w.column):
        wx, wy = centres[waypoint]
        points += [(wx, wy), (wx + NODE_W, wy)]
    points.append((bx, by))
    d = f"M{points[0][0]:.1f},{points[0][1]:.1f}"
    for i in range(0, len(points) - 1, 2):  # a curve across each gap, a straight run across each waypoint's column
        (x1, y1), (x2, y2) = points[i], points[i + 1]
        bend = (x2 - x1) / 2
        d += f" C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
        if i + 2 < len(points):
            d += f" L{points[i + 2][0]:.1f},{points[i + 2][1]:.1f}"
    return d
