"""Deployments: a model served somewhere under a name, switched to new versions, removed on request.

A deployment target is a class registered under the ``flowml.deployments`` entry-point group
(``name = "package.module:Class"``) and imported only when used; the core ships ``local``
(a managed ``flowml models serve`` process) and flowml-docker adds ``docker``. Whatever the
target, each deployment is recorded in the project's ``.flowml/deployments/<name>/``
(:mod:`flowml.deployments.records`), so ``flowml deployments list`` shows all of them and
``status``, ``logs`` and ``delete`` find a deployment's target from its record.

The contract every target keeps: ``deploy`` returns only once the new version answers
``/ping``, and a deploy that fails leaves the previous version serving.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

from flowml.errors import FlowmlError, Problem, SpecError
from flowml.plugins import find_plugin

BUILTIN = {"local": "flowml.deployments.local:LocalTarget"}
# Where each known plugin kind (deployment target or image builder) comes from, for the message
# when it is not installed.
PROVIDERS = {"docker": "flowml-docker (pip install flowml-docker, or pip install -e runners/flowml-docker)"}
DEFAULT_HOST = "127.0.0.1"


class DeploymentError(FlowmlError):
    """A deployment that could not be made, or that does not exist (then bad input, exit code 2)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Deployment:
    """One named deployment as its target last saw it.

    ``handle`` holds what the target needs to find its server again (a pid and its start
    time, a container id); ``version`` is the registry version served, when the model URI
    names one (``models:/wine@candidate`` -> ``"3"``). ``host`` and ``workers`` are what the
    server was started with, so a redeploy that asks for others knows to restart it.
    """

    name: str
    target: str
    model_uri: str
    port: int
    url: str
    version: str | None = None
    state: str = "running"  # running | stopped (refreshed by the target's ``status``)
    log: str | None = None
    updated: float = 0.0
    handle: dict[str, Any] = field(default_factory=dict)
    host: str = DEFAULT_HOST  # the address the server binds
    workers: int = 1  # the server's worker processes

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Deployment":
        return cls(**data)


class DeploymentTarget(ABC):
    """Where models are deployed. ``root`` is the project whose ``.flowml/`` keeps the records."""

    kind = ""

    def __init__(self, root: str) -> None:
        from flowml.deployments.records import Records

        self.root = root
        self.records = Records(root)

    @abstractmethod
    def deploy(self, name: str, model_uri: str, config: dict[str, Any]) -> Deployment:
        """Serve ``model_uri`` as ``name`` (create it, or switch it to this model) and return
        once it answers; on failure raise :class:`DeploymentError` with the old one still serving.

        ``config``: ``port`` (default: the deployment's current port, else a free one) and
        target-specific settings such as ``workers``.
        """

    @abstractmethod
    def status(self, name: str) -> Deployment:
        """The deployment with its state checked now."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Stop the deployment's server(s) and forget it."""

    @abstractmethod
    def logs(self, name: str, tail: int | None = None) -> str:
        """What the deployment's server wrote (the last ``tail`` lines)."""

    def placement(self, old: Deployment | None, config: dict[str, Any]) -> tuple[str, int, int]:
        """(host, port, workers) for a deploy: what ``config`` asks for, else what the deployment
        has now (a redeploy keeps its address and size unless told otherwise), else the defaults
        (a free port)."""
        from flowml.deployments.health import free_port

        host = config.get("host") or (old.host if old else DEFAULT_HOST)
        port = int(config.get("port") or (old.port if old else 0) or free_port(host))
        workers = int(config.get("workers") or (old.workers if old else 1))
        return host, port, workers

    def list(self) -> list[Deployment]:
        """This target's deployments, their states checked now."""
        return [self.status(d.name) for d in self.records.all() if d.target == self.kind]


def load_target(kind: str, root: str) -> DeploymentTarget:
    """The target registered as ``kind``, for the project at ``root``.

    Raises:
        SpecError: when no installed package provides ``kind``.
    """
    cls = find_plugin("flowml.deployments", kind, BUILTIN)
    if cls is None:
        provider = PROVIDERS.get(kind, f"a plugin registering '{kind}' under flowml.deployments")
        raise SpecError(Problem(f"deployment target '{kind}' is not installed (built in: local); "
                                f"it needs {provider}", "command line", field="--target"))
    return cls(root)


def target_of(root: str, name: str) -> DeploymentTarget:
    """The target that holds the deployment ``name`` of the project at ``root``.

    Raises:
        DeploymentError: (exit code 2) when there is no such deployment.
    """
    from flowml.deployments.records import Records

    record = Records(root).get(name)
    return load_target(record.target, root)


def all_deployments(root: str) -> list[Deployment]:
    """Every deployment of the project at ``root``, each checked by its target now; one whose
    target is not installed here is listed as it was last recorded, with state ``unknown``."""
    from flowml.deployments.records import Records

    found = []
    for record in Records(root).all():
        try:
            found.append(load_target(record.target, root).status(record.name))
        except SpecError:
            record.state = "unknown"
            found.append(record)
    return found
