"""Git projects: a mirror of each repository in a cache folder, and a work tree per commit.

Layout of the folder (``FLOWML_PROJECTS_DIR``, else ``projects`` in flowml's folder of the
user's cache directory)::

    <digest of the URI>/
        uri                 the URI, for whoever looks at the folder
        lock                held while fetching and checking out: runs of one URI take turns
        repo.git/           a mirror clone (every branch and tag), fetched before each run
        commits/<sha>/      a work tree of that commit, shared by the runs of that commit
        commits/<sha>.ready written once that work tree is complete

A work tree per commit, never moved or updated, means a run of one revision cannot change
the files under a run of another, and each commit keeps its own ``.flowml`` store (the
cache of its outputs). The git command line does the work: it is what knows the user's
credentials, SSH keys and proxy settings.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

from flowml.errors import FlowmlError, Problem, SpecError, did_you_mean

PROJECTS_DIR_VAR = "FLOWML_PROJECTS_DIR"
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
# git's own variables would point its commands at the caller's repository instead of ours
_GIT_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR")


class FetchError(FlowmlError):
    """A repository that cannot be cloned or checked out (exit code 1): the network, the
    credentials or git itself, rather than what the user typed."""


@dataclass(frozen=True)
class Checkout:
    folder: str  # the work tree
    commit: str
    branch: str | None  # the branch the revision named, if it named one


def projects_dir() -> str:
    """``FLOWML_PROJECTS_DIR``, else ``projects`` in flowml's folder of the user's cache directory."""
    chosen = os.environ.get(PROJECTS_DIR_VAR)
    if chosen:
        return os.path.abspath(os.path.expanduser(chosen))
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "flowml", "projects")


def is_repository(path: str) -> bool:
    """Whether ``path`` is the top of a git repository (a work tree's or a bare one)."""
    return os.path.exists(os.path.join(path, ".git")) or all(
        os.path.exists(os.path.join(path, part)) for part in ("HEAD", "objects", "refs"))


def is_cached(uri: str) -> bool:
    """Whether ``uri`` was cloned into the cache before."""
    return os.path.isdir(os.path.join(_folder(uri), "repo.git"))


def checkout(uri: str, version: str | None) -> Checkout:
    """A work tree of ``uri`` at ``version`` (a branch, tag or commit; default: the
    repository's default branch), fetched first unless ``version`` is a commit already here.

    Raises:
        SpecError: ``version`` names nothing in the repository.
        FetchError: the repository cannot be cloned, or a work tree cannot be made.
    """
    if version is not None and (not version.strip() or version.startswith("-")):
        raise SpecError(Problem("expected a branch, tag or commit", "command line", field=f"--version {version}"))
    base = _folder(uri)
    mirror = os.path.join(base, "repo.git")
    os.makedirs(base, exist_ok=True)
    with _locked(os.path.join(base, "lock")):
        if not os.path.isdir(mirror):
            _clone(uri, base, mirror)
        elif not (version and _SHA.match(version) and _has_commit(mirror, version)):
            _fetch(uri, mirror)
        commit, branch = _resolve(uri, mirror, version)
        return Checkout(_work_tree(mirror, os.path.join(base, "commits"), commit), commit, branch)


def _folder(uri: str) -> str:
    return os.path.join(projects_dir(), hashlib.sha256(uri.encode()).hexdigest()[:20])


def _clone(uri: str, base: str, mirror: str) -> None:
    """Clone into a temporary folder renamed into place, so an interrupted clone leaves no
    mirror that passes for a complete one."""
    with open(os.path.join(base, "uri"), "w", encoding="utf-8") as fh:
        fh.write(uri + "\n")
    tmp = os.path.join(base, f".tmp-clone-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _git("clone", "--mirror", "--quiet", "--", uri, tmp, cwd=base, doing=f"cannot clone {uri}")
        os.rename(tmp, mirror)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fetch(uri: str, mirror: str) -> None:
    """Bring the mirror up to date; without a network the copy at hand still serves."""
    try:
        _git("fetch", "--prune", "--quiet", "origin", cwd=mirror, doing=f"cannot fetch {uri}")
    except FetchError as exc:
        print(f"warning: {exc}; using the copy fetched before", file=sys.stderr, flush=True)


def _has_commit(mirror: str, sha: str) -> bool:
    return _git("cat-file", "-e", f"{sha}^{{commit}}", cwd=mirror, check=False) is not None


def _resolve(uri: str, mirror: str, version: str | None) -> tuple[str, str | None]:
    """The commit ``version`` names and, if it names a branch, the branch."""
    if version is None:
        commit = _git("rev-parse", "--verify", "--quiet", "HEAD^{commit}", cwd=mirror, check=False)
        if not commit:
            raise SpecError(Problem(f"{uri} has no commits on its default branch", "command line"))
        return commit, _git("symbolic-ref", "--quiet", "--short", "HEAD", cwd=mirror, check=False) or None
    commit = _git("rev-parse", "--verify", "--quiet", f"{version}^{{commit}}", cwd=mirror, check=False)
    if not commit:
        names = _git("for-each-ref", "--format=%(refname:short)", "refs/heads", "refs/tags", cwd=mirror).split()
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        raise SpecError(Problem(f"no branch, tag or commit '{version}' in {uri}{did_you_mean(version, names)}"
                                f" (branches and tags: {shown or 'none'})", "command line", field=f"--version {version}"))
    is_branch = _git("show-ref", "--verify", "--quiet", f"refs/heads/{version}", cwd=mirror, check=False) is not None
    return commit, version if is_branch else None


def _work_tree(mirror: str, folder: str, commit: str) -> str:
    """The work tree of ``commit``, made unless a complete one exists (a half-made one is
    removed first)."""
    path = os.path.join(folder, commit)
    ready = path + ".ready"
    if os.path.exists(ready) and os.path.isdir(path):
        return path
    with contextlib.suppress(FileNotFoundError):
        os.unlink(ready)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(folder, exist_ok=True)
    _git("worktree", "prune", cwd=mirror)
    _git("worktree", "add", "--detach", "--quiet", path, commit, cwd=mirror,
         doing=f"cannot check out {commit[:12]} into {path}")
    with open(ready, "w", encoding="utf-8"):
        pass
    return path


def _git(*args: str, cwd: str, check: bool = True, doing: str = "git failed") -> str | None:
    """git's stdout, stripped; with ``check`` off, None when it fails.

    Raises:
        FetchError: with ``check``, when git fails or is not installed; ``doing`` starts the message.
    """
    env = {k: v for k, v in os.environ.items() if k not in _GIT_VARS}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")  # never wait on a password prompt
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    except OSError as exc:
        raise FetchError(f"{doing}: git is not installed or cannot run ({exc.strerror})") from None
    if proc.returncode == 0:
        return proc.stdout.strip()
    if not check:
        return None
    reason = next((ln for ln in reversed(proc.stderr.splitlines()) if ln.strip()), f"git exited {proc.returncode}")
    raise FetchError(f"{doing}: {reason.removeprefix('fatal: ')}")


@contextlib.contextmanager
def _locked(path: str):
    """An exclusive ``flock`` on ``path`` for the duration."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
