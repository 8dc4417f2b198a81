"""The git commit a run's code came from, and whether the work tree had changes."""

from __future__ import annotations

import subprocess


def git_tags(folder: str) -> dict[str, str]:
    """``mlflow.source.git.commit``, ``mlflow.source.git.branch`` and ``flowml.git.dirty`` for the
    repository holding ``folder``; empty outside a repository or without git. Not cached: in a
    notebook the work tree changes between runs, and three git calls cost about 10 ms."""
    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    tags = {"mlflow.source.git.commit": commit}
    branch = git("rev-parse", "--abbrev-ref", "HEAD")
    if branch and branch != "HEAD":
        tags["mlflow.source.git.branch"] = branch
    status = git("status", "--porcelain", "--untracked-files=no")
    if status is not None:
        tags["flowml.git.dirty"] = "true" if status else "false"
    return tags
