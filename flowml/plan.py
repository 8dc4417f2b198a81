"""A compiled plan: the selected nodes of a pipeline in run order, as plain data.

Loading pipeline.yaml validates it with pydantic and builds its graph with networkx; both
cost more to import (about 0.2 s here) than a whole no-op rerun may take. So once a
pipeline has been loaded and checked, its plan for that invocation (file bytes, ``-P``,
``--target``, ``--from``) is written to ``.flowml/plans/<key>.json``, and the next run with
the same invocation reads it back without importing either. The key also covers the
flowml version and the modules that compile plans, so a changed flowml never reads a stale
plan. The one fact a plan depends on outside the file, that every input no step writes
exists, is checked again on every read.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

from flowml.version import __version__
from flowml.errors import Problem, display_path
from flowml.spec.node import Node, nodes_named

PLAN_FORMAT = 1
PLANS_DIR = os.path.join(".flowml", "plans")
MAX_PLANS = 64


@dataclass
class Plan:
    """What to run: nodes in order with their upstream, and the pipeline facts they need."""

    name: str
    path: str  # the pipeline file, absolute
    root: str  # the folder steps run in
    params: dict[str, Any]
    environments: dict[str, dict[str, Any]]  # name -> {"kind": ..., "config": {...}}
    nodes: dict[str, Node]  # the selected nodes, in run order
    preds: dict[str, list[str]]  # selected upstream of each selected node
    producers: dict[str, dict[str, str]]  # node -> {input: "writer, writer"} (for explanations)
    all_nodes: dict[str, str]  # every node of the pipeline -> its step
    required_inputs: list[str] = field(default_factory=list)  # inputs no step writes: must exist

    @property
    def ident(self) -> str:
        """The pipeline file relative to its folder: what per-pipeline state in the store is keyed by
        (two files may share a ``name:``)."""
        return os.path.relpath(self.path, self.root)

    @property
    def order(self) -> list[str]:
        return list(self.nodes)

    def steps_of(self, name: str) -> list[str]:
        """Node names for a step name or a node name, among all nodes of the pipeline."""
        return nodes_named(name, self.all_nodes)

    def problem(self, where: tuple, message: str) -> Problem:
        """A problem at a field of the pipeline file, with its line (the file is re-read for it)."""
        from flowml.spec.yamlsource import load_yaml

        with open(self.path, encoding="utf-8") as fh:
            _, source = load_yaml(fh.read(), display_path(self.path))
        return source.problem(where, message)

    def to_json(self) -> dict[str, Any]:
        return {"format": PLAN_FORMAT, "name": self.name, "path": self.path, "root": self.root,
                "params": self.params, "environments": self.environments,
                "nodes": [n.to_json() for n in self.nodes.values()], "preds": self.preds,
                "producers": self.producers, "all_nodes": self.all_nodes, "required_inputs": self.required_inputs}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Plan":
        nodes = {n["name"]: Node.from_json(n) for n in data["nodes"]}
        return cls(data["name"], data["path"], data["root"], data["params"], data["environments"], nodes,
                   data["preds"], data["producers"], data["all_nodes"], data["required_inputs"])


def plan_key(path: str, text: bytes, overrides, targets, from_) -> str:
    """The key of this invocation of the pipeline file ``path`` whose bytes are ``text``.

    It covers flowml's own code by the modification times of its modules, so that an
    upgraded (or edited) flowml compiles afresh rather than trusting an old plan.
    """
    import xxhash

    ident = json.dumps([PLAN_FORMAT, __version__, _code_stamp(), path, list(overrides), list(targets), list(from_)])
    return xxhash.xxh3_128_hexdigest(ident.encode() + b"\0" + text)


def _code_stamp() -> list[int]:
    package = os.path.dirname(os.path.abspath(__file__))
    stamps = []
    for folder, _, files in os.walk(package):
        stamps += [os.stat(os.path.join(folder, f)).st_mtime_ns for f in sorted(files) if f.endswith(".py")]
    return stamps


def read_plan(root: str, key: str) -> Plan | None:
    """The stored plan for ``key``, if any and if its required inputs still exist."""
    try:
        with open(os.path.join(root, PLANS_DIR, key + ".json"), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    if data.get("format") != PLAN_FORMAT:
        return None
    plan = Plan.from_json(data)
    if not all(os.path.lexists(os.path.join(root, p)) for p in plan.required_inputs):
        return None  # the slow path will report the missing input with its position
    return plan


def write_plan(plan: Plan, key: str) -> None:
    """Store ``plan`` atomically (a temp file renamed into place); a failure only costs speed."""
    folder = os.path.join(plan.root, PLANS_DIR)
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(plan.to_json(), fh, separators=(",", ":"))
        os.replace(tmp, os.path.join(folder, key + ".json"))
        _prune(folder)
    except OSError:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)


def _prune(folder: str) -> None:
    """Keep the most recent plans only; each edit of a pipeline makes a new one."""
    plans = sorted((e.stat().st_mtime_ns, e.path) for e in os.scandir(folder) if e.name.endswith(".json"))
    for _, path in plans[:-MAX_PLANS]:
        os.unlink(path)
