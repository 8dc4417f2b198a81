"""Making a virtual environment with uv: a relocatable venv of one interpreter, synced to a lock."""

from __future__ import annotations

import os

from flowml.environments.uv.tool import UvError, run_uv, uv_env

LOCK_FILE = "requirements.lock"


def make_venv(folder: str, cwd: str, lock: str, python: str, sync_args: list[str]) -> None:
    """A relocatable virtual environment of ``python`` in ``folder``, synced to ``lock``.

    Raises:
        UvError: uv could not make it.
    """
    env = uv_env()
    run_uv(["venv", "--relocatable", "--no-project", "--quiet", "--python", python, folder], cwd,
           "creating the virtual environment", env)
    with open(os.path.join(folder, LOCK_FILE), "w", encoding="utf-8") as fh:
        fh.write(lock)
    if lock.strip():
        run_uv(["pip", "sync", "--quiet", "--python", os.path.join(folder, "bin", "python"),
                os.path.join(folder, LOCK_FILE), *sync_args], cwd, "installing the requirements", env)
    if not has_python(folder):
        raise UvError("creating the virtual environment", f"{folder} has no bin/python")


def has_python(path: str) -> bool:
    """A venv is usable while its interpreter exists (``bin/python`` links to it)."""
    return os.path.exists(os.path.join(path, "bin", "python"))
