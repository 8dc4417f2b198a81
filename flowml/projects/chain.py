"""Chained projects: a ``project:`` step runs an entry point of another project as one step.

```yaml
steps:
  prep:
    project: {uri: "file:///srv/repos/features.git#prep", version: v2, entry_point: main,
              parameters: {rows: 1000, out: data/features.parquet}}
    outputs: [data/features.parquet]
  train: {run: python train.py, inputs: [data/features.parquet]}
```

The choices, and why:

- **What is chained**: a folder or a git repository (``file://``, ``https://``, ``ssh://``,
  ``#subdir``) holding an MLflow ``MLproject`` file, opened as ``flowml run`` opens one
  (:mod:`flowml.projects.source`); a relative folder is the chaining pipeline's, like every path
  in pipeline.yaml. The entry point is one of the file's (or a ``.py``/``.sh`` file of the
  project, as MLflow allows). A project with only a ``pipeline.yaml`` is refused: its steps
  write their outputs inside its own folder and keep their own cache there, so it cannot
  write this workspace's outputs; it runs as a step with ``run: flowml run URI --version REV``.
- **Resolved on every run, before anything runs**: the version is fetched and resolved to a
  commit (a moved tag or a new commit on the branch is seen at once), and the entry point
  and the parameters are checked against the MLproject, so an unknown entry point, a
  parameter of the wrong type, a revision or ``#subdir`` that is not there is bad input at
  the line of the step's ``project:`` field, before any step runs. A fault inside the
  project's own files is reported at its line there.
- **Where it runs**: in the project's own folder (its checkout for a git project), as MLflow
  runs an entry point, so the entry point's relative paths to its own code hold.
- **How outputs reach the workspace**: paths in a ``project:`` step are the chaining
  pipeline's. A parameter whose value names one of the step's ``inputs`` or ``outputs`` (a
  file or folder inside one, or a folder holding one) is passed as that path made absolute
  in the pipeline's folder, so the project reads and writes exactly where the step
  declares; any other ``path`` parameter is resolved against the pipeline's folder too (as
  MLflow resolves one against the caller's folder) and must exist. The declared outputs are
  then saved, restored and fed downstream like any step's. A project that writes into its own
  folder instead writes nothing the pipeline sees: its outputs would be reported missing.
- **Cache key**: the commit (or, for a folder run in place, the digest of its files: those git
  tracks, else its code and environment files, as :func:`project_files` lists them) and
  subfolder, the entry point, the parameters as the project types them (``rows: "1000"`` and
  ``rows: 1000`` of an ``int`` are one value; workspace paths as written, so every clone of
  the workspace shares the key), plus what every step's key has: its declared inputs,
  variables, environment fingerprint and cache version. Not the URI or the version's name: one
  commit under another tag, or from a mirror, is the same code. ``flowml status`` says which
  of them changed.
- **Environment**: the project's own ``python_env`` or ``conda_env`` (:mod:`flowml.projects.envs`),
  prepared when its first step runs, like any environment. A ``docker_env`` is refused for
  now: its container sees the project's folder only, not the workspace its outputs go to.
- **Tracking**: the step is a step run like any other, tagged with the project's source
  (``mlflow.source.name``, ``mlflow.source.git.*``, ``mlflow.project.entryPoint``,
  ``mlflow.project.env``) and with the entry point's parameters as its params.
- Steps of a remote executor (``--executor dask``) run where the project's checkout is not:
  a ``project:`` step is refused there for now.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from typing import Any

from flowml.cache.hashing import StatMemo, tree_digest
from flowml.cache.keys import PROJECT, PROJECT_SOURCE
from flowml.environments import Environment, load_environment
from flowml.errors import Problem, SpecError, display_path
from flowml.plan import Plan
from flowml.projects.envs import project_environment
from flowml.projects.mlproject import EntryPoint, filled_command, project_files, read_entry_point, typed_value
from flowml.projects.source import ENV_TAGS, MLPROJECT, ProjectSource, is_git_uri, open_project
from flowml.spec.interpolate import format_value
from flowml.spec.node import Node, is_within

@dataclass
class ChainedProject:
    """A ``project:`` node, opened: what it runs, where, in which environment, and its key."""

    folder: str  # where the entry point runs: the project's folder
    command: str  # the entry point's command, its values filled in and shell-quoted
    environment: str  # its key among the scheduler's environments ("" for flowml's own interpreter)
    environment_name: str  # as the project names it: python_env, conda_env or local
    key: dict[str, Any]  # the keyed component; a folder's "files" digest is filled by components()
    source: dict[str, Any]  # uri and version as the step names them
    tags: dict[str, str]  # of its runs
    params: dict[str, str]  # of its runs: the entry point's parameters
    files: list[str] | None = field(default=None, repr=False)  # a folder's files; None for a commit

    def components(self, memo: StatMemo) -> dict[str, Any]:
        """The step's cache-key components beyond a run step's: the project (keyed) and its
        source (explains only). A folder's files are hashed once, through ``memo``."""
        if self.files is not None and "files" not in self.key:
            self.key["files"] = tree_digest({rel: memo.digest(os.path.join(self.folder, rel),
                                                              os.path.join(self.folder, rel)) for rel in self.files})
        return {PROJECT: self.key, PROJECT_SOURCE: self.source}


def open_chained(plan: Plan, remote: bool = False) -> tuple[dict[str, ChainedProject], dict[str, Environment]]:
    """Every ``project:`` node of ``plan`` opened (git versions fetched and resolved), with
    the environments they run in, by key.

    Raises:
        SpecError: at the step's ``project:`` field in the pipeline file for what the step
            names wrongly; at the MLproject's line for a fault in the project's files.
        FetchError: a repository that cannot be cloned.
    """
    chained: dict[str, ChainedProject] = {}
    environments: dict[str, Environment] = {}
    opened: dict[tuple[str, str | None], ProjectSource | SpecError] = {}  # one fetch per URI and version
    problems: list[Problem] = []
    for node in plan.nodes.values():
        if node.action != "project":
            continue
        try:
            if remote:
                raise SpecError(_at(plan, node, "uri", "a project: step runs where its project is checked out, "
                                                       "which a remote executor's worker is not: run this "
                                                       "pipeline with --executor local"))
            chained[node.name] = _open_node(plan, node, opened, environments)
        except SpecError as exc:
            problems += [p for p in exc.problems if p not in problems]  # a matrix repeats its step's faults
    if problems:
        raise SpecError(problems)
    return chained, environments


def _open_node(plan: Plan, node: Node, opened: dict, environments: dict[str, Environment]) -> ChainedProject:
    spec = node.project
    source = _source(plan, node, opened)
    mlproject = source.mlproject or _mlproject_in(source.folder)
    if mlproject is None:
        raise SpecError(_at(plan, node, "uri", f"{display_path(source.folder)} holds a pipeline.yaml, not an "
                                               "MLproject: a project: step runs an MLproject's entry point (run a "
                                               "pipeline as a step with run: flowml run URI --version REV)"))
    try:
        point, data, mlsource = read_entry_point(mlproject, spec["entry_point"])
    except SpecError as exc:
        raise _relocated(plan, node, exc) from None
    values, keyed = _values(plan, node, point, source.folder)
    found = project_environment(data, source.folder, mlsource)
    env_key, env_name = "", "local"
    if found is not None:
        if found.kind == "docker":
            raise SpecError(_at(plan, node, "uri", "a project with a docker_env cannot be chained yet: its container "
                                                   "would see the project's folder only, not this pipeline's "
                                                   "folder where the step's outputs go"))
        env_key, env_name = f"{source.folder}#{found.name}", found.name
        if env_key not in environments:
            try:
                environments[env_key] = load_environment(found.kind, found.name, found.config, source.folder)
            except SpecError as exc:
                raise SpecError([mlsource.problem(found.where, p.message) for p in exc.problems]) from None
    commit = source.tags.get("mlflow.source.git.commit")
    key = {"entry_point": point.name, "parameters": keyed}
    key.update({"commit": commit, "subdir": source.tags.get("flowml.source.git.subdir", "")} if commit else {})
    tags = {"mlflow.source.name": source.tags.get("mlflow.source.name", source.folder), **source.tags,
            "mlflow.project.entryPoint": point.name, "mlflow.project.env": ENV_TAGS.get(found.kind, found.kind)
            if found else "local", "flowml.environment": env_name}
    return ChainedProject(source.folder, filled_command(point, values, mlsource), env_key, env_name, key,
                          {"uri": spec["uri"], "version": spec["version"]}, tags,
                          {k: format_value(v) for k, v in keyed.items()},
                          None if commit else project_files(source.folder))


def _source(plan: Plan, node: Node, opened: dict) -> ProjectSource:
    """The project the node names, opened once per URI and version in a run."""
    uri, version = node.project["uri"], node.project["version"]
    target = uri if is_git_uri(uri) else os.path.join(plan.root, os.path.expanduser(uri))
    if (target, version) not in opened:
        try:
            opened[(target, version)] = open_project(target, version)
        except SpecError as exc:
            opened[(target, version)] = exc
    found = opened[(target, version)]
    if isinstance(found, SpecError):
        raise _relocated(plan, node, found)
    return found


def _mlproject_in(folder: str) -> str | None:
    """The MLproject file of a folder that also has a pipeline.yaml (which ``flowml run`` prefers)."""
    with os.scandir(folder) as entries:
        return next((e.path for e in entries if e.name.lower() == MLPROJECT and e.is_file()), None)


def _values(plan: Plan, node: Node, point: EntryPoint, folder: str) -> tuple[dict[str, str], dict[str, Any]]:
    """Each parameter's value as the command gets it, and as the cache key holds it (typed,
    workspace paths as written), checked against the entry point's declaration.

    Raises:
        SpecError: at the step's ``parameters`` for a missing value or one of the wrong type.
    """
    given = {name: format_value(value) for name, value in node.project["parameters"].items()}
    declared = [*node.inputs, *node.outputs]
    values: dict[str, str] = {}
    keyed: dict[str, Any] = {}
    problems = []
    for name, param in point.parameters.items():
        where = ("parameters", name)
        if name not in given and param.default is None:
            problems.append(_at(plan, node, "parameters", f"parameter '{name}' of entry point '{point.name}' has no "
                                                          f"default: give it a value under parameters"))
            continue
        text = given.get(name, str(param.default))
        workspace = _workspace_path(text, declared) if name in given and param.type in ("string", "path") else None
        try:
            if workspace is not None:  # an input or output of the step: this pipeline's path
                values[name], keyed[name] = os.path.join(plan.root, workspace), workspace
            elif param.type == "path":  # the pipeline's when given here, the project's as its default
                values[name] = typed_value("path", text, plan.root if name in given else folder)
                keyed[name] = _shown_path(values[name], plan.root, folder)
            else:
                values[name] = typed_value(param.type, text, folder)
                keyed[name] = {"int": int, "float": float}.get(param.type, str)(values[name])
        except ValueError as exc:
            problems.append(_at(plan, node, where, f"{exc}, for entry point '{point.name}'"))
    if problems:
        raise SpecError(problems)
    for name, text in given.items():  # not declared: appended as --name value, as MLflow does
        if name not in point.parameters:
            workspace = _workspace_path(text, declared)
            values[name] = os.path.join(plan.root, workspace) if workspace is not None else text
            keyed[name] = workspace if workspace is not None else text
    return values, keyed


def _workspace_path(text: str, declared: list[str]) -> str | None:
    """``text`` normalized when it names one of the step's declared paths (a path inside one,
    or a folder holding one), else None."""
    if not text.strip() or "://" in text or os.path.isabs(text) or text.startswith(("-", "~")):
        return None
    norm = posixpath.normpath(text.strip())
    if any(is_within(norm, d) or is_within(d, norm) for d in declared if not posixpath.isabs(d)):
        return norm
    return None


def _shown_path(path: str, root: str, folder: str) -> str:
    """A path parameter as its key holds it: relative to the pipeline or the project when inside one."""
    for base, mark in ((root, ""), (folder, "<project>/")):
        if os.path.commonpath([path, base]) == base:
            return mark + os.path.relpath(path, base)
    return path


def _relocated(plan: Plan, node: Node, exc: SpecError) -> SpecError:
    """The problems of what the step names (reported by the code ``flowml run`` shares as the
    command line's) at the step's ``project:`` field; those inside the project's files stay
    at their line there."""
    problems = []
    for problem in exc.problems:
        if problem.file != "command line":
            problems.append(problem)
            continue
        flag = (problem.field or "").split(" ", 1)[0]
        where = {"--version": "version", "-e": "entry_point"}.get(flag, "uri")
        problems.append(_at(plan, node, where, problem.message))
    return SpecError(problems)


def _at(plan: Plan, node: Node, where: str | tuple, message: str) -> Problem:
    """A problem at ``where`` inside the step's ``project:`` mapping (its nearest line)."""
    return plan.problem(("steps", node.step, "project", *((where,) if isinstance(where, str) else where)), message)
