"""Environments: what a step runs in, and its fingerprint for the cache key.

An environment kind is a class registered under the ``flowml.environments`` entry-point
group (``name = "package.module:Class"``) and imported only when a step uses it, so
start-up stays fast however many plugins are installed. The core ships ``local`` (the
interpreter running flowml) and ``python`` (a virtual environment made by uv).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any

from flowml.errors import FlowmlError, Problem, SpecError
from flowml.plan import Plan
from flowml.plugins import find_plugin
from flowml.spec.node import Node

BUILTIN = {"local": "flowml.environments.local:LocalEnvironment",
           "python": "flowml.environments.python:PythonEnvironment"}
# The package that provides each kind declared in pipeline.yaml, for the error message.
PROVIDERS = {"conda": "flowml-conda", "docker": "flowml-docker"}


class EnvSetupError(FlowmlError):
    """An environment could not be made or used, through no fault in the pipeline (exit code 1)."""


class Environment(ABC):
    """Prepares what a step runs in and says how to run a command inside it.

    The constructor checks ``config`` (the kind's mapping in pipeline.yaml): a fault raises
    :class:`SpecError` whose problem's ``field`` is the key within that mapping (or None)."""

    def __init__(self, name: str, config: Any, root: str) -> None:
        self.name, self.config, self.root = name, config, root

    @abstractmethod
    def fingerprint(self) -> str:
        """A string that changes whenever what runs inside could change (lock digest, image id)."""

    def prepare(self) -> None:
        """Create or update the environment; called once per run before its first step."""

    def process_env(self, env: dict[str, str]) -> dict[str, str]:
        """The variables a step process gets, from the caller's ``env``."""
        return env

    def wrap(self, argv: list[str]) -> list[str]:
        """The argv that runs ``argv`` inside this environment."""
        return argv

    def wrap_step(self, argv: list[str], node: Node) -> list[str]:
        """The argv that runs ``argv``, the command of ``node``, inside this environment. An
        environment that applies what the step declares (a container's resource limits, the
        variables it passes in) overrides this; the others need only :meth:`wrap`."""
        return self.wrap(argv)


def load_environment(kind: str, name: str, config: Any, root: str) -> Environment:
    """Instantiate the environment class registered for ``kind``.

    Raises:
        SpecError: when no installed package provides ``kind``.
    """
    return environment_class(kind, name)(name, config, root)


def environment_class(kind: str, name: str) -> type[Environment]:
    """The class registered for ``kind``.

    Raises:
        SpecError: when no installed package provides ``kind``; it names the package to install.
    """
    cls = find_plugin("flowml.environments", kind, BUILTIN)
    if cls is None:
        provider = PROVIDERS.get(kind)
        needs = (f"install {provider} (pip install {provider})" if provider
                 else f"install a plugin that registers '{kind}' in the flowml.environments entry-point group")
        raise SpecError(Problem(f"environment kind '{kind}' is not available in this installation; {needs}",
                                field=f"environments.{name}"))
    return cls


def load_environments(plan: Plan) -> dict[str, Environment]:
    """One environment per environment the plan's nodes use (``""`` is local). A ``project:``
    step's environment is its project's, opened with the project (:mod:`flowml.projects.chain`).

    Raises:
        SpecError: at the file position of a kind that is not installed.
    """
    envs: dict[str, Environment] = {"": load_environment("local", "local", None, plan.root)}
    for node in plan.nodes.values():
        if node.env and node.env not in envs:
            envs[node.env] = _load_declared(plan, node.env)
    return envs


def _load_declared(plan: Plan, name: str) -> Environment:
    """The environment ``name`` of the pipeline, its faults at their position in the file."""
    kind, config = plan.environments[name]["kind"], plan.environments[name]["config"]
    where = ("environments", name, kind)
    try:
        cls = environment_class(kind, name)
    except SpecError as exc:
        raise SpecError(plan.problem(where, exc.problems[0].message)) from None
    try:
        return cls(name, config, plan.root)
    except SpecError as exc:
        raise SpecError([plan.problem(where + (tuple(p.field.split(".")) if p.field else ()), p.message)
                         for p in exc.problems]) from None


def base_env() -> dict[str, str]:
    """The caller's environment variables, copied."""
    return dict(os.environ)
