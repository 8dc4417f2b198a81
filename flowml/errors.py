"""Error types, raised where a fault is found and turned into a message in one place: the CLI.

Every error a user can cause by bad input is a :class:`FlowmlError` subclass with an
``exit_code`` of 2; the CLI prints ``str(error)`` and exits with that code, never a traceback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


class FlowmlError(Exception):
    """Base class of errors that the CLI reports as a message and an exit code."""

    exit_code = 1


@dataclass
class Problem:
    """One fault in a user's input.

    Attributes:
        message: what is wrong and what was expected.
        file: the file the fault is in, or a pseudo-source such as ``command line``.
        line: 1-based line, when known.
        column: 1-based column, when known.
        field: dotted path of the offending field, e.g. ``steps.train.retries``.
    """

    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = self.file or ""
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        parts = [p for p in (where, self.field) if p]
        return ": ".join([*parts, self.message])


@dataclass
class SpecError(FlowmlError):
    """Bad input in a pipeline file or on the command line (exit code 2)."""

    problems: list[Problem] = field(default_factory=list)
    exit_code = 2

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = problems
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class StoreError(FlowmlError):
    """The cache store or its database cannot be used (exit code 1)."""


class TrackingError(FlowmlError):
    """A tracking request that cannot be served, with MLflow's error code so that the REST API
    can answer as MLflow does (``RESOURCE_DOES_NOT_EXIST`` is 404, the others 400)."""

    exit_code = 2

    def __init__(self, message: str, error_code: str = "INVALID_PARAMETER_VALUE") -> None:
        super().__init__(message)
        self.error_code = error_code


def pipeline_file(path: str) -> str:
    """The absolute path of a pipeline file, given the file or the folder that holds pipeline.yaml."""
    path = os.path.abspath(path)
    return os.path.join(path, "pipeline.yaml") if os.path.isdir(path) else path


def display_path(path: str) -> str:
    """``path`` relative to the working folder when that reads better, else absolute."""
    rel = os.path.relpath(path)
    return path if rel.startswith("../..") else rel


def did_you_mean(word: str, choices) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""``."""
    import difflib  # only when there is an error to report: it is not free to import

    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
