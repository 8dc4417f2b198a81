"""From environment.yml (and its lock, if the pipeline names one) to the packages to install,
and the environment key they give.

When the lock exists and matches the environment file, its packages are taken as they are;
otherwise the file is solved (every platform it lists, else this machine's) and a new lock is
made, to be written where the pipeline says when the run starts. Working that out imports
conda-lock and rattler and may solve, so its result is kept in the shared folder's
``resolved/`` under the digest of both files' bytes: an unchanged pipeline reads it back
(a millisecond) instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform as host
from dataclasses import asdict, dataclass

import xxhash

from flowml.environments.store import EnvStore

FORMAT = 1
_PLATFORMS = {("Linux", "x86_64"): "linux-64", ("Linux", "aarch64"): "linux-aarch64",
              ("Linux", "ppc64le"): "linux-ppc64le", ("Darwin", "x86_64"): "osx-64", ("Darwin", "arm64"): "osx-arm64",
              ("Windows", "amd64"): "win-64"}


@dataclass(frozen=True)
class Resolution:
    """The packages of this machine's platform, and the lock text to write (None when the
    lock file already holds them, or the pipeline names no lock file)."""

    platform: str
    packages: list[dict]
    lock_text: str | None = None

    @property
    def key(self) -> str:
        """The environment's name and fingerprint: platform and the digest of the locked packages."""
        pinned = sorted((p["url"], p["md5"] or "", p.get("sha256") or "") for p in self.packages)
        digest = hashlib.sha256(json.dumps(pinned).encode()).hexdigest()[:24]
        return f"conda-{self.platform}-{digest}"


def current_platform() -> str:
    """This machine's conda platform (``linux-64``, ``osx-arm64``...), without importing rattler
    for the common ones."""
    known = _PLATFORMS.get((host.system(), host.machine().lower()))
    if known:
        return known
    from rattler import Platform

    return str(Platform.current())


def resolve(env_path: str, lock_path: str | None, shown: dict[str, str], platform: str, store: EnvStore) -> Resolution:
    """The resolution of ``env_path`` (and ``lock_path``), read from the ``store``'s resolutions
    when both files are unchanged.

    Args:
        shown: the two paths as the pipeline names them (``file``, ``lock``), for messages.
    Raises:
        CondaInputError: a fault in either file, or packages that cannot be solved.
    """
    name = _record_name(env_path, lock_path, platform)
    found = store.read_resolution(name)
    if found is not None:
        try:
            return Resolution(**found)
        except TypeError:
            pass  # a record of another format: work it out again
    resolution = _work_out(env_path, lock_path, shown, platform)
    store.write_resolution(name, asdict(resolution))
    return resolution


def remember_written(store: EnvStore, env_path: str, lock_path: str, resolution: Resolution) -> None:
    """After its lock was written: the same packages, now read from the lock, for the next run."""
    written = Resolution(resolution.platform, resolution.packages)
    store.write_resolution(_record_name(env_path, lock_path, resolution.platform), asdict(written))


def _work_out(env_path: str, lock_path: str | None, shown: dict[str, str], platform: str) -> Resolution:
    """The lock's packages when it matches the environment file, else a new solve and lock."""
    from conda_lock.virtual_package import default_virtual_package_repodata

    from flowml_conda.envfile import lock_spec, read_env_file
    from flowml_conda.lockfile import make_lock, matching_packages, packages_of, read_lock, render
    from flowml_conda.solve import solve

    env = read_env_file(env_path, shown["file"], platform)
    spec = lock_spec(env)
    virtual_repo = default_virtual_package_repodata()
    previous = read_lock(lock_path, shown["lock"]) if lock_path and os.path.exists(lock_path) else None
    if previous is not None:
        packages = matching_packages(previous, spec, virtual_repo, platform)
        if packages is not None:
            return Resolution(platform, packages)
    solved = {p: solve(env.channels, [_match_spec(d) for d in spec.dependencies[p]], p, virtual_repo, env.shown)
              for p in env.platforms}
    lock = make_lock(solved, spec, virtual_repo, lock_path or os.path.join(os.path.dirname(env_path), "conda-lock.yml"),
                     env_path, previous)
    return Resolution(platform, packages_of(lock, platform), render(lock, lock_path) if lock_path else None)


def _match_spec(dep) -> str:
    """conda-lock's parsed dependency as a match spec string (``channel::name version build``)."""
    name = f"{dep.conda_channel}::{dep.name}" if dep.conda_channel else dep.name
    return " ".join(p for p in (name, dep.version or ("*" if dep.build else ""), dep.build or "") if p)


def _record_name(env_path: str, lock_path: str | None, platform: str) -> str:
    """The name of the stored resolution: a digest of both files' paths and bytes."""
    h = xxhash.xxh3_128(json.dumps([FORMAT, platform, env_path, lock_path]).encode())
    for path in (env_path, lock_path):
        h.update(b"\0" + _read_bytes(path))
    return f"conda-{h.hexdigest()}"


def _read_bytes(path: str | None) -> bytes:
    if path is None:
        return b"\0none"
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return b"\0missing"
