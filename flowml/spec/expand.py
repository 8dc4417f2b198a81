"""Matrix fan-out: each step becomes one or more concrete nodes with params substituted.

A node is what the DAG, the cache and the scheduler work with. ``${params.x}`` and
``${matrix.x}`` are resolved here; ``${steps.s.metrics.m}`` stays in place until the
step it names has finished, and ``when:`` stays a template evaluated at run time.
"""

from __future__ import annotations

import itertools
import posixpath
from typing import Any

from flowml.errors import Problem, SpecError, TrackingError
from flowml.spec import modelrefs
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
    template, needs, deploy, register, project = step.run, list(step.needs), None, None, None
    if action in ("register", "deploy"):
        run, inputs, needs, record = _model_step(pipeline, name, step, resolve, inputs)
        deploy, register = (record, None) if action == "deploy" else (None, record)
        action, template = "run", run
    elif action == "project":
        project = _project_step(pipeline, name, step, resolve)
    return Node(node_name(name, combo), name, action, template, run, inputs, outputs, env_vars, used,
                matrix=combo, env=step.env, needs=needs, retries=step.retries, timeout=step.timeout,
                cache_version=step.cache_version, when=step.when, metrics=metrics,
                declared_outputs=len(step.outputs), upstream_refs=upstream, deploy=deploy, register=register, project=project,
                resources=step.resources.model_dump(exclude_none=True) if step.resources else {})


def _model_step(pipeline: LoadedPipeline, name: str, step: Step, resolve, inputs: list[str]):
    """A ``register:`` or ``deploy:`` step as the flowml command it runs, so that caching, retries,
    logs, ``when:`` and tracking apply to it as to any step.

    Returns (argv, inputs, needs, record). A register step's input is its model directory, so
    a rerun with the same model is a cache hit and registers nothing; its record
    (``{"name", "alias"}``) lets the scheduler see that the version it made is still there. A
    deploy step runs after every step that registers the model it deploys, and its record
    (``{"name", "model"}``) lets the scheduler key it on the version the URI names.
    """
    kind = "register" if step.register_ is not None else "deploy"
    base = ("steps", name)
    for unused in ("outputs", "metrics", "env"):
        if getattr(step, unused):
            raise SpecError(pipeline.source.problem(base + (unused,), f"a {kind}: step runs flowml itself and "
                                                                      f"writes no files: remove '{unused}'"))
    if step.register_ is not None:
        spec = substitute(step.register_.model_dump(), resolve)
        model = _path(pipeline, spec["model"], base + ("register", "model"), output=False)
        _check(pipeline, base + ("register", "name"), modelrefs.model_name, str(spec["name"]))
        argv = ["flowml", "registry", "register", model, "--name", str(spec["name"])]
        if spec["alias"]:
            _check(pipeline, base + ("register", "alias"), modelrefs.new_alias, str(spec["alias"]))
            argv += ["--alias", str(spec["alias"])]
        record = {"name": str(spec["name"]), "alias": str(spec["alias"]) if spec["alias"] else None}
        return argv, [model, *inputs], list(step.needs), record
    spec = substitute(step.deploy.model_dump(), resolve)
    uri = format_value(spec["model"]).strip()
    registered = _check(pipeline, base + ("deploy", "model"), _registered_name, uri)
    if registered is None and ":" not in uri.split("/", 1)[0]:  # a folder: its content is an input
        uri = _path(pipeline, uri, base + ("deploy", "model"), output=False)
        inputs = [uri, *inputs]
    deployment = str(spec["name"] or registered or name)
    _check(pipeline, base + ("deploy", "name" if spec["name"] else "model"), modelrefs.deployment_name, deployment)
    argv = ["flowml", "deployments", "create", deployment, "-m", uri, "--target", str(spec["target"])]
    argv += ["--port", str(spec["port"])] if spec["port"] else []
    registers = [s for s, other in pipeline.spec.steps.items()
                 if other.register_ is not None and s != name and registered in _names_registered(pipeline, s, other)]
    needs = list(dict.fromkeys([*step.needs, *registers]))
    return argv, inputs, needs, {"name": deployment, "model": uri}


def _project_step(pipeline: LoadedPipeline, name: str, step: Step, resolve) -> dict[str, Any]:
    """A ``project:`` step's spec with ``${params...}`` and ``${matrix...}`` substituted; the
    project itself is opened when the pipeline runs (:mod:`flowml.projects.chain`), since the
    commit a version names can move between runs."""
    where = ("steps", name)
    if step.env is not None:
        raise SpecError(pipeline.source.problem(where + ("env",), "a project: step runs in the environment its "
                                                                  "project declares: remove 'env'"))
    return substitute(step.project.model_dump(), resolve)


def _check(pipeline: LoadedPipeline, where: tuple, rule, value: str):
    """``rule(value)``, its complaint turned into a problem at ``where`` in the pipeline file;
    a value still holding a ``${steps...}`` reference is known only at run time and passes."""
    if "${" in value:
        return None
    try:
        return rule(value)
    except TrackingError as exc:
        raise SpecError(pipeline.source.problem(where, str(exc))) from None


def _names_registered(pipeline: LoadedPipeline, name: str, step: Step) -> set[str]:
    """The registered model names a register step uses, params and matrix substituted as its
    nodes will have them (so a deploy step finds the step registering its model)."""
    names = set()
    for combo in _combinations(pipeline, name, step):
        names.add(str(substitute(step.register_.name, lambda ref: pipeline.params[ref.name]
                                 if ref.namespace == "params" else combo[ref.name])))
    return names


def _registered_name(uri: str) -> str | None:
    """``wine`` for ``models:/wine@candidate`` or ``models:/wine/3`` (checked as the registry
    checks it), None for any other URI or a folder; a malformed ``models:`` URI is an error."""
    if not uri.lower().startswith("models:"):
        return None
    parts = modelrefs.parse_model_uri(uri)
    if parts is None:
        return None
    modelrefs.model_name(parts.name)
    if parts.alias is not None:
        modelrefs.alias(parts.alias)
    return parts.name


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
