"""Lock files in conda-lock's format, through conda-lock's own models: a lock that conda-lock
made elsewhere is read as it is, and one that flowml writes is read by ``conda-lock install``
and ``conda-lock render``, and recognised by ``conda-lock lock --check-input-hash`` as up to date.

A lock matches an environment file when its content hash for this machine's platform is one
that conda-lock computes for that file (with its default virtual packages): then its packages
are installed as they are, without solving.
"""

from __future__ import annotations

import os
import re
import tempfile

from flowml_conda.errors import CondaInputError

_FILE = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)-(?P<build>[^-]+)\.(?:conda|tar\.bz2)$")


def read_lock(path: str, shown: str):
    """The conda-lock lock file at ``path`` (version 1 files converted as conda-lock does).

    Raises:
        CondaInputError: not a lock file that conda-lock can read.
    """
    import pathlib

    import yaml
    from conda_lock.lockfile import parse_conda_lock_file
    from pydantic import ValidationError

    try:
        return parse_conda_lock_file(pathlib.Path(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{shown}:{mark.line + 1}:{mark.column + 1}" if mark else shown
        raise CondaInputError("lock", f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise CondaInputError("lock", f"{shown}: {field}: {first['msg']}; expected a conda-lock lock file") from None
    except (ValueError, AttributeError, TypeError) as exc:
        raise CondaInputError("lock", f"{shown}: not a conda-lock lock file: {exc}") from None


def matching_packages(lock, spec, virtual_repo, platform: str) -> list[dict] | None:
    """The packages ``lock`` holds for ``platform`` when it was made from ``spec`` (conda-lock's
    content hash agrees); None when it is out of date or lacks the platform."""
    from conda_lock.content_hash import backwards_compatible_content_hashes

    held = lock.metadata.content_hash.get(platform)
    if held is None or held not in backwards_compatible_content_hashes(spec, virtual_repo, platform):
        return None
    return packages_of(lock, platform)


def packages_of(lock, platform: str) -> list[dict]:
    """The conda packages of ``platform`` in ``lock``, as plain records to install.

    Raises:
        CondaInputError: the lock also holds pip packages (rattler installs conda packages only).
    """
    found = [d for d in lock.package if d.platform == platform]
    if any(d.manager != "conda" for d in found):
        raise CondaInputError("lock", "pip packages in the lock are not installed in conda environments; "
                                      "install them in a python environment (uv) instead")
    return [_package(d) for d in found]


def _package(dep) -> dict:
    """A conda-lock locked dependency as the record :func:`flowml_conda.solve.install` takes
    (conda-lock leaves ``build`` out: the file name holds it)."""
    build = dep.build
    if build is None:
        match = _FILE.match(dep.url.rsplit("/", 1)[-1])
        build = match.group("build") if match else "0"
    return {"name": dep.name, "version": dep.version, "build": build, "url": dep.url, "md5": dep.hash.md5,
            "sha256": dep.hash.sha256, "depends": [f"{n} {v}".strip() for n, v in dep.dependencies.items()]}


def make_lock(solved: dict[str, list], spec, virtual_repo, lock_path: str, env_path: str, previous=None):
    """A conda-lock lock of the records ``solved`` for each platform; the packages that
    ``previous`` holds for other platforms are kept, as conda-lock keeps them."""
    from conda_lock.content_hash import compute_content_hashes
    from conda_lock.lockfile.v2prelim.models import HashModel, LockedDependency, Lockfile, LockMeta

    hashes = compute_content_hashes(spec, virtual_repo)
    packages = [LockedDependency(name=r.name.normalized, version=str(r.version), manager="conda", platform=platform,
                                 dependencies=_dependencies(r.depends), url=r.url,
                                 hash=HashModel(md5=r.md5.hex(), sha256=r.sha256.hex() if r.sha256 else None),
                                 categories={"main"}, build=str(r.build))
                for platform, records in solved.items() for r in records]
    source = os.path.relpath(env_path, os.path.dirname(lock_path))
    fresh = Lockfile(package=packages, metadata=LockMeta(content_hash={p: hashes[p] for p in solved},
                                                         channels=spec.channels, platforms=sorted(solved),
                                                         sources=[source]))
    if previous is None or previous.metadata.channels != fresh.metadata.channels:
        return fresh
    kept = previous.model_copy(deep=True, update={"package": [d for d in previous.package if d.platform not in solved]})
    return kept.merge(fresh)


def render(lock, lock_path: str) -> str:
    """The text conda-lock writes for ``lock`` at ``lock_path`` (its help comments name the file)."""
    import pathlib

    from conda_lock.lockfile import write_conda_lock_file

    with tempfile.TemporaryDirectory() as folder:
        out = pathlib.Path(folder, os.path.basename(lock_path))
        write_conda_lock_file(lock, out, metadata_choices=None)
        return out.read_text(encoding="utf-8")


def _dependencies(depends: list[str]) -> dict[str, str]:
    """A record's ``depends`` as conda-lock keeps them: name -> version spec (specs on one name joined)."""
    from rattler import MatchSpec

    found: dict[str, list[str]] = {}
    for dep in depends:
        spec = MatchSpec(dep)
        found.setdefault(spec.name.normalized, [])
        if spec.version:
            found[spec.name.normalized].append(str(spec.version))
    return {name: ",".join(versions) for name, versions in found.items()}
