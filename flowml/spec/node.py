"""A node: one executable unit of a pipeline (a step, or one combination of a matrix step).

Plain data with no pydantic in sight, so that a compiled plan can be read back from JSON
without importing the validation stack: that is what keeps a no-op rerun fast.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Node:
    """Everything the cache and the scheduler need to know about one node."""

    name: str  # "train" or "train[alpha=0.1]"
    step: str  # the step it comes from
    action: str  # run | project (a register: or deploy: step compiles to a run of a flowml command)
    template: str | list[str] | None  # ``run`` as written, for explanations
    run: str | list[str] | None  # params and matrix substituted; ${steps...} kept
    inputs: list[str]  # normalized, relative to the pipeline root (or absolute)
    outputs: list[str]  # normalized, relative to the pipeline root, metrics file included
    env_vars: dict[str, Any]
    params_used: dict[str, Any]
    matrix: dict[str, Any] = field(default_factory=dict)
    env: str | None = None
    needs: list[str] = field(default_factory=list)
    retries: int = 0
    timeout: float | None = None
    cache_version: int | None = 0  # None: caching is off
    when: str | None = None  # a template, evaluated once upstream steps finish
    metrics: str | None = None  # normalized path of the metrics file, also in outputs
    declared_outputs: int = 0  # how many of ``outputs`` the file lists (the rest is the metrics file)
    upstream_refs: list[str] = field(default_factory=list)  # node or step names read via ${steps...}
    deploy: dict[str, str] | None = None  # a deploy: step's {"name", "model"}: the version is part of its key
    register: dict[str, str | None] | None = None  # a register: step's {"name", "alias"}: its version must exist
    project: dict[str, Any] | None = None  # a project: step's {"uri", "version", "entry_point", "parameters"}
    resources: dict[str, float] = field(default_factory=dict)  # declared cpus/memory (bytes)/gpus; not in the key

    @property
    def cacheable(self) -> bool:
        return self.cache_version is not None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Node":
        return cls(**data)


def is_within(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (both normalized, ``/``-separated)."""
    return path == folder or folder == "." or path.startswith(folder + "/")


def nodes_named(name: str, steps: dict[str, str]) -> list[str]:
    """Node names for ``name``, a node (``train[a=1]``) or a step (``train``), given node -> step."""
    if name in steps:
        return [name]
    return [n for n, step in steps.items() if step == name]
