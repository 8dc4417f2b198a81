"""The ``conda`` environment: ``environments: {legacy: {conda: {file: environment.yml, lock: conda-lock.yml}}}``.

The environment file is resolved into locked packages (:mod:`.resolve`) when the pipeline is
loaded, so a fault in it is reported before anything runs, with the file and field. The
packages are installed by rattler into a prefix of flowml's shared environment folder named
for their digest, made once under that folder's lock and renamed into place when complete
(:class:`flowml.environments.store.StoredEnvironment`); that key is the environment's
fingerprint, so a change of the lock reruns exactly the steps that use it. When ``lock`` is
given and the environment file changed (or the lock does not exist), the new lock is written
there as the run starts.
"""

from __future__ import annotations

import os
from typing import Any

from flowml.environments import EnvSetupError
from flowml.environments.store import StoredEnvironment
from flowml.errors import Problem, SpecError
from flowml_conda.errors import CondaInputError
from flowml_conda.resolve import current_platform, remember_written, resolve


class CondaEnvironment(StoredEnvironment):
    """A conda prefix shared by every project whose environment locks to the same packages."""

    def __init__(self, name: str, config: Any, root: str) -> None:
        super().__init__(name, config, root)
        config = config or {}
        self.env_file = _project_file(config.get("file"), root, "file", "a conda environment file")
        self.lock_file = _project_file(config.get("lock"), root, "lock", "a conda-lock lock file", must_exist=False)
        shown = {"file": config.get("file"), "lock": config.get("lock")}
        try:
            self.resolution = resolve(self.env_file, self.lock_file, shown, current_platform(), self.store)
        except CondaInputError as exc:
            raise SpecError(Problem(str(exc), field=exc.field)) from None

    @property
    def key(self) -> str:
        return self.resolution.key

    def prepare(self) -> None:
        """Write the new lock, if there is one, before the prefix is made or held."""
        if self._held is None:
            self._write_lock()
        super().prepare()

    def meta(self) -> dict:
        return {"label": f"conda {self.resolution.platform}", "packages": len(self.resolution.packages),
                "conda": {"platform": self.resolution.platform,
                          "packages": sorted(f"{p['name']}-{p['version']}-{p['build']}"
                                             for p in self.resolution.packages)}}

    def process_env(self, env: dict[str, str]) -> dict[str, str]:
        """The prefix's ``bin`` first on PATH and ``CONDA_PREFIX`` set, as ``conda activate`` does
        (its activation scripts are not run)."""
        env["PATH"] = os.pathsep.join([os.path.join(self.path, "bin"), env.get("PATH", os.defpath)])
        env["CONDA_PREFIX"] = env["CONDA_DEFAULT_ENV"] = self.path
        return env

    def make(self, folder: str) -> None:
        """Install the locked packages into ``folder`` (it becomes the prefix at ``self.path``)."""
        from flowml_conda.solve import install

        try:
            install(self.resolution.packages, folder, self.path)
        except Exception as exc:  # rattler's errors share no base class but Exception
            raise EnvSetupError(f"environment {self.name}: installing the conda packages failed: "
                                f"{' '.join(str(exc).split())}") from None

    def _write_lock(self) -> None:
        """The new lock at the pipeline's ``lock`` path, replacing the old one in one step."""
        text = self.resolution.lock_text
        if text is None or self.lock_file is None:
            return
        tmp = f"{self.lock_file}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, self.lock_file)
        except OSError as exc:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise EnvSetupError(f"environment {self.name}: cannot write {self.lock_file}: {exc.strerror or exc}") from None
        remember_written(self.store, self.env_file, self.lock_file, self.resolution)


def _project_file(value: str | None, root: str, field: str, what: str, must_exist: bool = True) -> str | None:
    """The absolute path of ``value`` (relative to the pipeline's folder in the file)."""
    if value is None:
        return None
    path = os.path.join(root, value)
    if os.path.isdir(path) or (must_exist and not os.path.isfile(path)):
        state = "is a folder" if os.path.isdir(path) else "not found"
        raise SpecError(Problem(f"'{value}' {state}; expected {what}, relative to the pipeline's folder", field=field))
    return path
