"""Nodes -> a networkx DiGraph, its checks, selection and drawings.

Edges come from data: a node that reads a path another node writes depends on it, where
a folder covers every path under it (in both directions: reading ``models/`` waits for
every writer of ``models/x/``). ``needs:`` and ``${steps.s...}`` references add edges
without data. Cycles, two writers of one path, and inputs that nothing writes and that do
not exist are reported with their position in the file.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass

import networkx as nx

from flowml.errors import Problem, SpecError, did_you_mean
from flowml.plan import Plan
from flowml.spec.expand import expand
from flowml.spec.node import Node, is_within, nodes_named
from flowml.spec.load import LoadedPipeline


@dataclass
class Dag:
    """The pipeline's graph; node names map to :class:`Node` objects."""

    pipeline: LoadedPipeline
    graph: nx.DiGraph
    nodes: dict[str, Node]
    producers: dict[str, str]  # output path -> node name
    outputs_sorted: list[str]

    def order(self, names=None) -> list[str]:
        """Node names in a stable topological order (file order breaks ties)."""
        rank = {n: i for i, n in enumerate(self.nodes)}
        graph = self.graph if names is None else self.graph.subgraph(names)
        return list(nx.lexicographical_topological_sort(graph, key=rank.__getitem__))

    def steps_of(self, name: str) -> list[str]:
        """Node names for a step name or a node name (``train`` or ``train[a=1]``)."""
        return nodes_named(name, {n: node.step for n, node in self.nodes.items()})


def build_dag(pipeline: LoadedPipeline) -> Dag:
    """Expand ``pipeline`` and connect its nodes.

    Raises:
        SpecError: for overlapping outputs, missing inputs, bad references or a cycle.
    """
    nodes = {n.name: n for n in expand(pipeline)}
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    producers = _producers(pipeline, nodes)
    outputs_sorted = sorted(producers)
    problems: list[Problem] = []
    for node in nodes.values():
        for i, path in enumerate(node.inputs):
            writers = _writers(path, producers, outputs_sorted)
            writers.discard(node.name)
            own = next((o for o in node.outputs if is_within(path, o)), None)
            if own is not None:
                problems.append(pipeline.source.problem(
                    ("steps", node.step, "inputs", i),
                    f"input '{path}' lies inside this step's own output '{own}', which is cleared before "
                    "the step runs; write the output somewhere else"))
            elif not writers and not os.path.lexists(os.path.join(pipeline.root, path)):
                problems.append(pipeline.source.problem(
                    ("steps", node.step, "inputs", i),
                    f"input '{path}' does not exist and no step writes it{did_you_mean(path, producers)}"))
            graph.add_edges_from((w, node.name) for w in writers)
        for need in node.needs:
            graph.add_edges_from((n, node.name) for n in nodes if nodes[n].step == need)
        for ref in sorted(node.upstream_refs):
            targets = [ref] if ref in nodes else [n for n in nodes if nodes[n].step == ref]
            if len(targets) != 1:
                choices = ", ".join(targets) or "none"
                problems.append(pipeline.source.problem(
                    ("steps", node.step), f"'${{steps.{ref}.metrics...}}' must name one node (nodes: {choices})"))
            graph.add_edges_from((t, node.name) for t in targets)
    if problems:
        raise SpecError(problems)
    _check_acyclic(pipeline, graph, nodes)
    return Dag(pipeline, graph, nodes, producers, outputs_sorted)


def _producers(pipeline: LoadedPipeline, nodes: dict[str, Node]) -> dict[str, str]:
    """Map each output to its node; two nodes writing one path (or nested paths) is an error."""
    owned: list[tuple[str, str, int]] = sorted(
        (path, node.name, i) for node in nodes.values() for i, path in enumerate(node.outputs))
    problems = []
    stack: list[tuple[str, str, int]] = []
    for path, name, i in owned:
        while stack and not is_within(path, stack[-1][0]):
            stack.pop()
        clash = next((s for s in stack if s[1] != name), None)
        if clash:
            what = (f"steps '{clash[1]}' and '{name}' both write '{path}'" if clash[0] == path else
                    f"'{path}' written by '{name}' lies inside '{clash[0]}' written by '{clash[1]}'")
            problems.append(pipeline.source.problem(("steps", nodes[name].step, "outputs", _index(nodes[name], i)), what))
        stack.append((path, name, i))
    if problems:
        raise SpecError(problems)
    return {path: name for path, name, _ in owned}


def _index(node: Node, i: int) -> int | str:
    """The outputs index in the file, or ``metrics`` for the implicit metrics output."""
    return i if i < node.declared_outputs else "metrics"


def _writers(path: str, producers: dict[str, str], outputs_sorted: list[str]) -> set[str]:
    """Nodes writing ``path``, a folder above it, or anything under it."""
    writers = set()
    probe = path
    while probe:
        if probe in producers:
            writers.add(producers[probe])
        parent = os.path.dirname(probe)
        probe = parent if parent != probe else ""
    prefix = path + "/" if path != "." else ""
    i = bisect.bisect_left(outputs_sorted, prefix)
    while i < len(outputs_sorted) and outputs_sorted[i].startswith(prefix):
        writers.add(producers[outputs_sorted[i]])
        i += 1
    return writers


def _check_acyclic(pipeline: LoadedPipeline, graph: nx.DiGraph, nodes: dict[str, Node]) -> None:
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return
    path = [edge[0] for edge in cycle] + [cycle[0][0]]
    raise SpecError(pipeline.source.problem(("steps", nodes[path[0]].step), "cycle: " + " -> ".join(path)))


def select(dag: Dag, targets=(), from_=()) -> list[str]:
    """Node names to run, in order: ``targets`` with what they need, ``from_`` with what follows.

    Raises:
        SpecError: for a name that is neither a step nor a node.
    """
    selected = set(dag.nodes)
    if targets:
        picked = _resolve(dag, targets, "--target")
        selected &= picked.union(*(nx.ancestors(dag.graph, n) for n in picked))
    if from_:
        picked = _resolve(dag, from_, "--from")
        selected &= picked.union(*(nx.descendants(dag.graph, n) for n in picked))
    return dag.order(selected)


def _resolve(dag: Dag, names, option: str) -> set[str]:
    picked: set[str] = set()
    problems = []
    for name in names:
        found = dag.steps_of(name)
        if not found:
            choices = list(dict.fromkeys([n.step for n in dag.nodes.values()] + list(dag.nodes)))
            problems.append(Problem(f"unknown step '{name}'{did_you_mean(name, choices)}", "command line", field=option))
        picked.update(found)
    if problems:
        raise SpecError(problems)
    return picked


def render_text(dag: Dag) -> str:
    """One line per node in run order, with the nodes it waits for."""
    lines = []
    for name in dag.order():
        deps = sorted(dag.graph.predecessors(name), key=list(dag.nodes).index)
        lines.append(name + (f"  <- {', '.join(deps)}" if deps else ""))
    return "\n".join(lines)


def render_dot(dag: Dag) -> str:
    """Graphviz DOT."""
    def q(name: str) -> str:
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"digraph {q(dag.pipeline.spec.name)} {{", "  rankdir=LR;", "  node [shape=box];"]
    lines += [f"  {q(n)};" for n in dag.order()]
    lines += [f"  {q(a)} -> {q(b)};" for a, b in sorted(dag.graph.edges)]
    return "\n".join(lines + ["}"])


def render_mermaid(dag: Dag) -> str:
    """A Mermaid flowchart (node ids are positional, labels are the names)."""
    ids = {n: f"n{i}" for i, n in enumerate(dag.order())}
    lines = ["flowchart TD"]
    lines += [f'    {ids[n]}["{n.replace(chr(34), "#quot;")}"]' for n in ids]
    lines += [f"    {ids[a]} --> {ids[b]}" for a, b in sorted(dag.graph.edges)]
    return "\n".join(lines)


def compile_plan(dag: Dag, targets=(), from_=()) -> Plan:
    """The plain-data plan of the selected nodes (see :mod:`flowml.plan`).

    Raises:
        SpecError: for an unknown ``--target`` or ``--from``.
    """
    order = select(dag, targets, from_)
    chosen = set(order)
    spec = dag.pipeline.spec
    producers, required = {}, set()
    for name in order:
        node = dag.nodes[name]
        producers[name] = {}
        for path in node.inputs:
            writers = sorted(_writers(path, dag.producers, dag.outputs_sorted) - {name})
            if writers:
                producers[name][path] = ", ".join(writers)
            else:
                required.add(path)
    environments = {n: {"kind": e.kind, "config": getattr(e, e.kind).model_dump()} for n, e in spec.environments.items()}
    return Plan(spec.name, dag.pipeline.path, dag.pipeline.root, dag.pipeline.params, environments,
                {n: dag.nodes[n] for n in order},
                {n: [p for p in dag.graph.predecessors(n) if p in chosen] for n in order},
                producers, {n: node.step for n, node in dag.nodes.items()}, sorted(required))
