"""Environments: what a step runs in, and its fingerprint for the cache key.

An environment kind is a class registered under the ``flowml.environments`` entry-point
group (``name = "package.module:Class"``) and imported only when a step uses it, so
start-up stays fast however many plugins are installed. The core ships ``local``: the
interpreter running flowml.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any

from flowml.errors import Problem, SpecError
from flowml.plan import Plan
from flowml.plugins import find_plugin

BUILTIN = {"local": "flowml.environments.local:LocalEnvironment"}
# Where each kind declared in pipeline.yaml is expected to come from, for the error message.
PROVIDERS = {"python": "flowml (the uv environments arrive with the environments issue)",
             "conda": "flowml-conda", "docker": "flowml-docker"}


class Environment(ABC):
    """Prepares what a step runs in and says how to run a command inside it."""

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


def load_environment(kind: str, name: str, config: Any, root: str) -> Environment:
    """Instantiate the environment class registered for ``kind``.

    Raises:
        SpecError: when no installed package provides ``kind``.
    """
    cls = find_plugin("flowml.environments", kind, BUILTIN)
    if cls is None:
        provider = PROVIDERS.get(kind, f"a plugin registering '{kind}' under flowml.environments")
        raise SpecError(Problem(f"environment kind '{kind}' is not available in this installation; "
                                f"it needs {provider}", field=f"environments.{name}"))
    return cls(name, config, root)


def load_environments(plan: Plan) -> dict[str, Environment]:
    """One environment per environment the plan's nodes use (``""`` is local).

    Raises:
        SpecError: at the file position of a kind that is not installed, or of a
            ``project:``/``register:``/``deploy:`` step, which this version cannot run.
    """
    envs: dict[str, Environment] = {"": load_environment("local", "local", None, plan.root)}
    for node in plan.nodes.values():
        if node.action != "run":
            raise SpecError(plan.problem(("steps", node.step, node.action),
                                         f"'{node.action}:' steps are not available in this version of flowml yet; use run:"))
        if node.env and node.env not in envs:
            declared = plan.environments[node.env]
            try:
                envs[node.env] = load_environment(declared["kind"], node.env, declared["config"], plan.root)
            except SpecError as exc:
                raise SpecError(plan.problem(("environments", node.env, declared["kind"]),
                                             exc.problems[0].message)) from None
    return envs


def base_env() -> dict[str, str]:
    """The caller's environment variables, copied."""
    return dict(os.environ)
