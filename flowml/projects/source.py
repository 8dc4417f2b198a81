"""Tell what ``flowml run TARGET`` names: a pipeline file, a folder with ``pipeline.yaml`` or
an ``MLproject``, or a git repository at some revision, and where its files are.

A local folder runs in place, as it is. A git URI, or a local repository with ``--version``,
is checked out from the cache of :mod:`flowml.projects.git`; its runs record the repository,
commit and subfolder as MLflow's ``mlflow.source.git.*`` tags do.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from flowml.errors import Problem, SpecError, display_path, pipeline_file

# A URI with a scheme (file://, https://, ssh://, git://) or git's scp-like user@host:path
_GIT_URI = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|[\w.-]+@[\w.-]+:)")
MLPROJECT = "mlproject"  # matched ignoring case, as MLflow does
DEFAULT_ENTRY_POINT = "main"
# mlflow.project.env, in MLflow's words for the environment managers
ENV_TAGS = {"python": "uv", "conda": "conda", "docker": "docker"}


@dataclass
class ProjectSource:
    """Where a run's project is and what it runs: ``pipeline`` (a pipeline file) or
    ``mlproject`` (an MLproject file, run at ``entry_point``)."""

    folder: str
    pipeline: str | None = None
    mlproject: str | None = None
    entry_point: str = DEFAULT_ENTRY_POINT
    name: str = ""  # the pipeline's name when an MLproject has none
    tags: dict[str, str] = field(default_factory=dict)
    fetched: bool = False  # checked out from a git repository into the cache

    def load(self, overrides: list[str] | tuple[str, ...]):
        """The MLproject's entry point as a one-step pipeline with ``-P`` values applied."""
        from flowml.projects.mlproject import load_mlproject

        return load_mlproject(self.mlproject, self.entry_point, overrides, self.name)

    def run_tags(self, environments: dict[str, dict[str, Any]]) -> dict[str, str]:
        """The tags of this source's runs, given the plan's environments (MLflow's
        ``mlflow.project.*`` tags for an MLproject)."""
        tags = dict(self.tags)
        if self.mlproject:
            kinds = [env["kind"] for env in environments.values()]
            tags["mlflow.project.entryPoint"] = self.entry_point
            tags["mlflow.project.env"] = ENV_TAGS.get(kinds[0], kinds[0]) if kinds else "local"
        return tags


def is_git_uri(target: str) -> bool:
    """Whether ``target`` is a URI (``file://``, ``https://``, ``ssh://``, ``user@host:path``)
    rather than a local path."""
    return bool(_GIT_URI.match(target))


def open_project(target: str, version: str | None = None, entry_point: str | None = None) -> ProjectSource:
    """The project ``target`` names, checked out at ``version`` if it is a git repository.

    Raises:
        SpecError: for a revision, subfolder or entry point that is not there, or ``--version``
            on a folder that is not a git repository.
    """
    if version is not None or _GIT_URI.match(target) or _is_bare_repository(target.split("#", 1)[0]):
        source = _from_git(target, version)
    else:
        source = _from_folder(target)
    if entry_point is not None:
        if source.mlproject is None:
            raise SpecError(Problem(f"-e/--entry-point picks an entry point of an MLproject, but "
                                    f"{display_path(source.pipeline)} is a pipeline file: use --target to pick steps",
                                    "command line", field=f"-e {entry_point}"))
        source.entry_point = entry_point
    return source


def _from_folder(target: str) -> ProjectSource:
    """A local pipeline file, or a folder: its pipeline.yaml first, else its MLproject."""
    path = target
    if "#" in target and not os.path.exists(target):
        base, subdir = target.split("#", 1)
        path = os.path.join(base, _checked_subdir(subdir, target))
    path = os.path.abspath(path)
    found = _find_in(path) if os.path.isdir(path) else None
    if found is not None:
        return found
    if os.path.basename(path).lower() == MLPROJECT and os.path.isfile(path):
        folder = os.path.dirname(path)
        return ProjectSource(folder, mlproject=path, name=os.path.basename(folder))
    if os.path.basename(path) == "pipeline.yaml" and not os.path.exists(path):  # plain `flowml run` by an MLproject
        found = _find_in(os.path.dirname(path))
        if found is not None:
            return found
    pipeline = pipeline_file(path)  # loading it reports what is wrong with it
    return ProjectSource(os.path.dirname(pipeline), pipeline=pipeline)


def _find_in(folder: str, source: ProjectSource | None = None) -> ProjectSource | None:
    """``folder``'s pipeline.yaml or, failing that, its MLproject; None if it has neither."""
    source = source or ProjectSource(folder, name=os.path.basename(folder))
    source.folder = folder
    candidate = os.path.join(folder, "pipeline.yaml")
    if os.path.isfile(candidate):
        source.pipeline = candidate
        return source
    with os.scandir(folder) as entries:
        mlproject = next((e.path for e in entries if e.name.lower() == MLPROJECT and e.is_file()), None)
    if mlproject is None:
        return None
    source.mlproject = mlproject
    return source


def _from_git(target: str, version: str | None) -> ProjectSource:
    """Check out ``target`` (``URI[#subdir]``) at ``version`` and find its project there."""
    from flowml.projects.git import checkout, is_cached, is_repository

    uri, _, subdir = target.partition("#")
    subdir = _checked_subdir(subdir, target) if subdir else ""
    local = uri[len("file://"):] if uri.startswith("file://") else (None if _GIT_URI.match(uri) else uri)
    if local is not None and not uri.startswith("file://"):
        uri = os.path.abspath(uri)
    if local is not None and not is_cached(uri):  # once cloned, the copy serves while the original is away
        if not os.path.exists(local):
            raise SpecError(Problem(f"no such repository: {local}", "command line", field=target))
        if not is_repository(local):
            if version is None:  # file:// of a plain folder runs it in place, as MLflow does
                return _from_folder(local + (f"#{subdir}" if subdir else ""))
            raise SpecError(Problem(f"--version {version}: {display_path(os.path.abspath(local))} is not a git "
                                    "repository; --version picks a branch, tag or commit of one",
                                    "command line", field=target))
    done = checkout(uri, version)
    folder = os.path.join(done.folder, subdir)
    where = f"{subdir or '.'} at {done.commit[:12]}" + (f" ({version})" if version else "")
    if not os.path.isdir(folder):
        raise SpecError(Problem(f"no folder {where} of {uri}", "command line", field=target))
    if os.path.commonpath([os.path.realpath(folder), os.path.realpath(done.folder)]) != os.path.realpath(done.folder):
        raise SpecError(Problem(f"'#{subdir}' leads out of the repository (a symbolic link): it must name a "
                                f"folder inside it", "command line", field=target))
    tags = {"mlflow.source.name": target, "mlflow.source.git.repoURL": uri, "mlflow.source.git.commit": done.commit}
    if done.branch:
        tags["mlflow.source.git.branch"] = done.branch
    if subdir:
        tags["flowml.source.git.subdir"] = subdir
    name = posixpath.basename(subdir) if subdir else _repository_name(uri)
    found = _find_in(folder, ProjectSource(folder, name=name, tags=tags, fetched=True))
    if found is None:
        raise SpecError(Problem(f"neither pipeline.yaml nor an MLproject file in {where} of {uri}",
                                "command line", field=target))
    return found


def _checked_subdir(subdir: str, target: str) -> str:
    """``#subdir`` normalised; it must stay inside the project."""
    norm = posixpath.normpath(subdir.strip("/")) if subdir.strip("/") else ""
    if not norm or subdir.startswith("/") or norm == ".." or norm.startswith("../"):
        raise SpecError(Problem(f"'#{subdir}' must name a folder inside the project, e.g. #models/train",
                                "command line", field=target))
    return norm


def _is_bare_repository(path: str) -> bool:
    """A bare repository (``project.git``) holds no files to run in place: it is fetched."""
    return (os.path.isfile(os.path.join(path, "HEAD")) and os.path.isdir(os.path.join(path, "objects"))
            and os.path.isdir(os.path.join(path, "refs")))


def _repository_name(uri: str) -> str:
    """``project`` for ``.../project.git``: the default name of an MLproject without one."""
    tail = re.split(r"[/:]", uri.rstrip("/"))[-1]
    return tail[:-4] if tail.endswith(".git") else tail
