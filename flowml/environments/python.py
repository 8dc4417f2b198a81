"""The ``python`` environment: a virtual environment made by uv from a requirements file.

``environments: {train: {python: {requirements: requirements.txt, version: "3.11"}}}``. The
requirements are resolved into a lock for the interpreter ``version`` names (default: the
Python running flowml), and the environment is the one of the shared folder with that lock
(:mod:`flowml.environments.store`), made on first use. Its fingerprint is the key of that
folder (interpreter version, the lock's digest and that of any local package's files), so
editing a requirement, or a local package it names, changes the cache key of exactly the steps
that use this environment. Bad input (no such requirements file, a
version that is not one, or none installed, requirements that cannot be resolved) is found
when the pipeline is loaded, before anything is run or made.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from flowml.environments.store import StoredEnvironment
from flowml.environments.uv.pipconfig import uv_index_args
from flowml.environments.uv.resolve import ResolveError, resolve
from flowml.environments.uv.tool import UvError
from flowml.environments.uv.venv import has_python, make_venv
from flowml.errors import Problem, SpecError

VERSION = re.compile(r"^\d+(\.\d+){0,2}$")


class PythonEnvironment(StoredEnvironment):
    """A uv virtual environment shared by every project whose requirements resolve alike."""

    def __init__(self, name: str, config: Any, root: str) -> None:
        super().__init__(name, config, root)
        config = config or {}
        requirements = _requirements(config.get("requirements"), root)
        try:
            self.resolution = resolve(requirements, _python_request(config.get("version")), root, self.store.root)
        except ResolveError as exc:
            raise SpecError(Problem(str(exc), field=exc.field)) from None

    @property
    def key(self) -> str:
        return self.resolution.key

    def make(self, folder: str) -> None:
        try:
            make_venv(folder, self.root, self.resolution, uv_index_args())
        except UvError as exc:
            raise UvError(f"environment {self.name}: {exc.doing}", exc.message) from None

    def meta(self) -> dict:
        python = self.resolution.python
        return {"python": {"implementation": python.implementation, "version": python.version,
                           "executable": python.executable}, "packages": self.resolution.packages}

    def ready(self, path: str) -> bool:
        return has_python(path)

    def process_env(self, env: dict[str, str]) -> dict[str, str]:
        """The environment's ``bin`` first on PATH and ``VIRTUAL_ENV`` set; the virtualenv that
        runs flowml (or one the caller activated) taken off PATH, so nothing of it leaks in."""
        own = sys.prefix if sys.prefix != sys.base_prefix else None
        leaky = {os.path.normpath(os.path.join(p, "bin")) for p in (env.get("VIRTUAL_ENV"), own) if p}
        path = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p and os.path.normpath(p) not in leaky]
        env["PATH"] = os.pathsep.join([os.path.join(self.path, "bin"), *path])
        env["VIRTUAL_ENV"] = self.path
        env.pop("PYTHONHOME", None)
        return env


def _requirements(value: str | None, root: str) -> str | None:
    """The requirements file's absolute path (relative to the pipeline's folder in the file)."""
    if value is None:
        return None
    path = os.path.join(root, value)
    if not os.path.isfile(path):
        what = "is a folder" if os.path.isdir(path) else "not found"
        raise SpecError(Problem(f"requirements file '{value}' {what}; expected a pip requirements file, "
                                f"relative to the pipeline's folder", field="requirements"))
    return path


def _python_request(version: str | None) -> str:
    """What to ask uv for: ``version``, or the base interpreter running flowml when none is given."""
    if version is None:
        return getattr(sys, "_base_executable", sys.executable)
    if not VERSION.match(str(version)):
        raise SpecError(Problem(f"expected a Python version such as \"3.11\" or \"3.11.7\", got {version!r}",
                                field="version"))
    return str(version)
