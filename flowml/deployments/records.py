"""The project's record of its deployments: ``.flowml/deployments/<name>/deployment.json``.

A record is what lets a later command (another process, maybe after a reboot) find a
deployment's server again. It is written atomically (a temp file renamed over it), so a
crash mid-deploy leaves the previous record whole, and a deploy holds the deployment's lock
file for its whole length, so two deploys of one name take turns instead of racing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
from typing import Iterator

from flowml.deployments import Deployment, DeploymentError
from flowml.errors import Problem, SpecError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
RECORD = "deployment.json"


def check_name(name: str) -> str:
    """``name`` if it can name a deployment (and a folder and a container), else a SpecError."""
    if not NAME.match(name):
        raise SpecError(Problem(f"'{name}' cannot name a deployment: use letters, digits, '_', '.' and '-' "
                                "(at most 63, starting with a letter or digit)", "command line", field="NAME"))
    return name


class Records:
    """The deployment records of the project at ``root``."""

    def __init__(self, root: str) -> None:
        self.dir = os.path.join(root, ".flowml", "deployments")

    def folder(self, name: str) -> str:
        """The deployment's folder (its record, lock and logs), created if needed."""
        path = os.path.join(self.dir, check_name(name))
        os.makedirs(path, exist_ok=True)
        return path

    def find(self, name: str) -> Deployment | None:
        """The record of ``name``, or None."""
        try:
            with open(os.path.join(self.dir, check_name(name), RECORD), encoding="utf-8") as fh:
                return Deployment.from_json(json.load(fh))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            raise DeploymentError(f"the record of deployment '{name}' cannot be read: {exc}") from None

    def get(self, name: str) -> Deployment:
        """The record of ``name``.

        Raises:
            DeploymentError: (exit code 2) naming the deployments that exist.
        """
        found = self.find(name)
        if found is None:
            from flowml.errors import did_you_mean

            names = self.names()
            known = did_you_mean(name, names) or (f" (deployments: {', '.join(names)})" if names else
                                                  " (there are no deployments in this project)")
            raise DeploymentError(f"no deployment named '{name}'{known}", exit_code=2)
        return found

    def names(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.dir) if os.path.exists(os.path.join(self.dir, n, RECORD)))
        except FileNotFoundError:
            return []

    def all(self) -> list[Deployment]:
        return [d for d in (self.find(n) for n in self.names()) if d is not None]

    def save(self, deployment: Deployment) -> None:
        """Write the record atomically."""
        folder = self.folder(deployment.name)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".record-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(deployment.to_json(), fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, os.path.join(folder, RECORD))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def remove(self, name: str) -> None:
        """Forget ``name``: its record, logs and lock go."""
        shutil.rmtree(os.path.join(self.dir, check_name(name)), ignore_errors=True)

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold the deployment's lock (blocking): one deploy or delete of a name at a time."""
        fd = os.open(os.path.join(self.folder(name), ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
