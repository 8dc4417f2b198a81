"""Executors place step processes. The core ships ``local`` (a subprocess per step);
others register under the ``flowml.executors`` entry-point group and load lazily.

An executor's ``run`` blocks until the process ends (the scheduler calls it from a
worker thread, one per running step) and ``kill_all`` stops every process it started.

Why a blocking ``run`` rather than submit/poll/cancel: the scheduler's thread for a step
already owns everything around one attempt (the node's lock, retries with backoff,
saving outputs), and an executor that places steps elsewhere waits on its own handle in
that thread without polling (a Dask future's ``result()``). Submit is the start of
``run``, poll is its return, cancel is ``kill_all``: the scheduler calls it on Ctrl-C or
SIGTERM, and every ``run`` then returns ``killed``. Threads cost nothing next to a step.

An executor whose steps run on other machines sets ``remote``: the scheduler then hands
it a :class:`StepSpec` (what the step needs, with nothing of this machine's paths or
variables), leaves preparing environments to where the step runs, and takes the outputs
back from :attr:`ProcessResult.outputs`, which travelled through the tracking server.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from flowml.cache.hashing import Content
from flowml.errors import Problem, SpecError
from flowml.plan import Plan
from flowml.plugins import find_plugin
from flowml.spec.node import Node

BUILTIN = {"local": "flowml.executors.local:LocalExecutor"}


@dataclass
class StepSpec:
    """A step as a machine that shares nothing with this one but the tracking server runs it."""

    command: list[str]  # the argv before its environment wraps it
    environment: tuple[str, str, Any]  # (kind, name, config) of the step's environment, e.g. ("local", "local", None)
    variables: dict[str, str]  # the step's own: its env_vars, FLOWML_* and tracking variables, none of this process's
    inputs: dict[str, str | None]  # input path -> the digest its cache key was computed with
    upstream: dict[str, tuple[Content, str | None]]  # an upstream output it reads -> (content, run holding its objects)
    run_id: str | None  # the step's run: its outputs are uploaded there
    tracking_uri: str
    node: Node  # its outputs, resources, and what an environment's wrap_step reads
    fingerprint: str  # its environment's, in the cache key: where it runs, the environment must agree


@dataclass(frozen=True)
class Capacity:
    """What the machines an executor spreads the steps over have: in all (how much runs at once)
    and on the largest of them (each figure its own maximum: the most one step can get)."""

    total: tuple[float, int | None, int]  # CPUs, memory (bytes; None: unknown), GPUs
    largest: tuple[float, int | None, int]
    where: str  # the machines, in messages: "the Dask cluster at tcp://..."


@dataclass
class Task:
    """One attempt at a step's process."""

    name: str
    argv: list[str]
    cwd: str
    env: dict[str, str]
    stdout: str  # log file paths
    stderr: str
    timeout: float | None = None
    pass_fds: tuple[int, ...] = ()  # descriptors the process inherits (the node's lock)
    step: StepSpec | None = None  # for a remote executor: argv, cwd and env above are this machine's


@dataclass
class ProcessResult:
    """How a process ended."""

    returncode: int | None
    duration_s: float
    timed_out: bool = False
    killed: bool = False
    error: str | None = None
    # From a remote executor: the outputs written, hashed and uploaded to the step's run
    # (None: they are in the workspace, for the scheduler to save).
    outputs: dict[str, Content] | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not (self.timed_out or self.killed or self.error)


class Executor(ABC):
    """Runs step processes somewhere."""

    remote = False  # True: steps run on other machines (see the module's docstring)

    def start(self, plan: Plan) -> None:
        """The run of ``plan`` begins; called before any step. Do nothing costly here: a run
        may have nothing to do."""

    def capacity(self) -> Capacity | None:
        """What the machines the steps run on have, or None for this machine's (:mod:`flowml.resources`)."""
        return None

    def close(self) -> None:
        """Release connections; called once, after the run."""

    @abstractmethod
    def run(self, task: Task) -> ProcessResult:
        """Run ``task`` to completion (or timeout) and say how it ended."""

    @abstractmethod
    def kill_all(self) -> None:
        """Stop every running process (with its children); their ``run`` calls return killed."""


def load_executor(kind: str, **options) -> Executor:
    """The executor registered as ``kind``.

    Raises:
        SpecError: for an unknown executor.
    """
    cls = find_plugin("flowml.executors", kind, BUILTIN)
    if cls is None:
        raise SpecError(Problem(f"executor '{kind}' is not installed (built in: local; "
                                f"others come from plugins such as flowml-{kind})", "command line", field="--executor"))
    return cls(**options)
