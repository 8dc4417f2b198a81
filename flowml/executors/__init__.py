"""Executors place step processes. The core ships ``local`` (a subprocess per step);
others register under the ``flowml.executors`` entry-point group and load lazily.

An executor's ``run`` blocks until the process ends (the scheduler calls it from a
worker thread, one per running step) and ``kill_all`` stops every process it started.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from flowml.errors import Problem, SpecError
from flowml.plugins import find_plugin

BUILTIN = {"local": "flowml.executors.local:LocalExecutor"}


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


@dataclass
class ProcessResult:
    """How a process ended."""

    returncode: int | None
    duration_s: float
    timed_out: bool = False
    killed: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not (self.timed_out or self.killed or self.error)


class Executor(ABC):
    """Runs step processes somewhere."""

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
