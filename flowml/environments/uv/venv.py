"""Making a virtual environment with uv: a relocatable venv of one interpreter, synced to a lock."""

from __future__ import annotations

import os

from flowml.environments.uv.resolve import Resolution
from flowml.environments.uv.tool import UvError, run_uv, uv_env

LOCK_FILE = "requirements.lock"


def make_venv(folder: str, cwd: str, resolution: Resolution, index_args: list[str]) -> None:
    """A relocatable virtual environment of the resolution's interpreter in ``folder``, synced
    to its lock (the requirements' own index options first; local packages built afresh, not
    taken from uv's cache, which would keep a build until their ``pyproject.toml`` changes).

    Raises:
        UvError: uv could not make it.
    """
    env = uv_env()
    run_uv(["venv", "--relocatable", "--no-project", "--quiet", "--python", resolution.python.executable, folder],
           cwd, "creating the virtual environment", env)
    with open(os.path.join(folder, LOCK_FILE), "w", encoding="utf-8") as fh:
        fh.write("".join(f"{line}\n" for line in resolution.options) + resolution.lock)
    if resolution.lock.strip():
        refresh = [arg for name in resolution.local for arg in ("--refresh-package", name)]
        run_uv(["pip", "sync", "--quiet", "--python", os.path.join(folder, "bin", "python"),
                os.path.join(folder, LOCK_FILE), *index_args, *refresh], cwd, "installing the requirements", env)
    if not has_python(folder):
        raise UvError("creating the virtual environment", f"{folder} has no bin/python")


def has_python(path: str) -> bool:
    """A venv is usable while its interpreter exists (``bin/python`` links to it)."""
    return os.path.exists(os.path.join(path, "bin", "python"))
