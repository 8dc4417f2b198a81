"""Matrix fan-out: each step becomes one or more concrete nodes with params substituted.

A node is what the DAG, the cache and the scheduler work with. ``${params.x}`` and
``${matrix.x}`` are resolved here; ``${steps.s.metrics.m}`` stays in place until the
step it names has finished, and ``when:`` stays a template evaluated at run time.
"""

from __future__ import annotations

import itertools
import posixpath
from typing import Any

from flowml.errors import Problem, SpecError
from flowml.spec.interpolate import Ref, format_value, refs_in, substitute
from flowml.spec.load import LoadedPipeline
from flowml.spec.models import Step
from flowml.spec.node import Node, is_within


def expand(pipeline: LoadedPipeline) -> list[Node]:
    """All nodes of ``pipeline``, in file order, matrix combinations in declared order.

    Raises:
        SpecError: for output paths outside the project or a matrix that yields nothing.
    """
    nodes: list[Node] = []
    problems: list[Problem] = []
    for name, step in pipeline.spec.steps.items():
        for combo in _combinations(pipeline, name, step):
            try:
                nodes.append(_node(pipeline, name, step, combo))
            except SpecError as exc:
                problems += exc.problems
    if problems:
        raise SpecError(problems)
    return nodes


def node_name(step: str, combo: dict[str, Any]) -> str:
    """``train[alpha=0.1,depth=3]`` for a matrix combination, else the step's name."""
    if not combo:
        return step
    return f"{step}[{','.join(f'{k}={format_value(v)}' for k, v in combo.items())}]"


def _combinations(pipeline: LoadedPipeline, name: str, step: Step) -> list[dict[str, Any]]:
    if not step.matrix:
        return [{}]
    axes = {}
    for key, values in step.matrix.items():
        resolved = substitute(values, lambda ref: pipeline.params[ref.name])
        if not resolved:
            raise SpecError(pipeline.source.problem(("steps", name, "matrix", key), "expected a non-empty list of values"))
        axes[key] = resolved
    combos, seen = [], set()
    for values in itertools.product(*axes.values()):
        combo = dict(zip(axes, values))
        label = node_name(name, combo)
        if label not in seen:
            seen.add(label)
            combos.append(combo)
    return combos


def _node(pipeline: LoadedPipeline, name: str, step: Step, combo: dict[str, Any]) -> Node:
    used: dict[str, Any] = {}
    for key, values in (step.matrix or {}).items():
        for ref in refs_in(values):
            used[ref.name] = pipeline.params[ref.name]

    def resolve(ref: Ref) -> Any:
        if ref.namespace == "params":
            used[ref.name] = pipeline.params[ref.name]
            return pipeline.params[ref.name]
        return combo[ref.name]

    keep = ("steps",)
    run = substitute(step.run, resolve, keep=keep)
    env_vars = substitute(step.env_vars, resolve, keep=keep)
    base = ("steps", name)
    inputs = [_path(pipeline, substitute(p, resolve), base + ("inputs", i), output=False) for i, p in enumerate(step.inputs)]
    outputs = [_path(pipeline, substitute(p, resolve), base + ("outputs", i), output=True) for i, p in enumerate(step.outputs)]
    metrics = None
    if step.metrics is not None:
        metrics = _path(pipeline, substitute(step.metrics, resolve), base + ("metrics",), output=True)
        if not any(is_within(metrics, o) for o in outputs):
            outputs.append(metrics)
    upstream = sorted({ref.step for ref in refs_in([step.run, step.env_vars, step.when]) if ref.namespace == "steps"})
    action = next(a for a in ("run", "project", "register_", "deploy") if getattr(step, a) is not None).rstrip("_")
    return Node(node_name(name, combo), name, action, step.run, run, inputs, outputs, env_vars, used,
                matrix=combo, env=step.env, needs=list(step.needs), retries=step.retries, timeout=step.timeout,
                cache_version=step.cache_version, when=step.when, metrics=metrics,
                declared_outputs=len(step.outputs), upstream_refs=upstream)


def _path(pipeline: LoadedPipeline, value: Any, where: tuple, *, output: bool) -> str:
    """Normalize a declared path; outputs must stay inside the project."""
    text = format_value(value).strip()
    if not text:
        raise SpecError(pipeline.source.problem(where, "expected a path, got an empty string"))
    if posixpath.isabs(text):
        rel = posixpath.relpath(text, pipeline.root)
        if output and rel.startswith(".."):
            raise SpecError(pipeline.source.problem(where, f"output '{text}' is outside the project folder {pipeline.root}"))
        return rel if not rel.startswith("..") else posixpath.normpath(text)
    norm = posixpath.normpath(text)
    if output and (norm == "." or norm.startswith("../") or norm == ".."):
        raise SpecError(pipeline.source.problem(where, f"output '{text}' must be a path inside the project folder"))
    for reserved, what in ((".flowml", "flowml's own store"), (".git", "the git repository")):
        if output and is_within(norm, reserved):
            raise SpecError(pipeline.source.problem(where, f"an output cannot be inside {reserved}/, {what}"))
    pipeline_file = posixpath.relpath(pipeline.path, pipeline.root)
    if output and is_within(pipeline_file, norm):
        raise SpecError(pipeline.source.problem(where, f"output '{text}' would delete {pipeline_file}: "
                                                       "outputs are cleared before their step runs"))
    return norm
