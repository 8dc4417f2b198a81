"""rattler: solving specs against channels, and installing locked packages into a prefix.

The virtual packages a solve assumes for a platform (``__glibc``, ``__linux``, ``__osx``...) are
conda-lock's defaults, not this machine's, so a lock is the same whoever makes it and installs
on the machines conda-lock's own locks install on.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlsplit

from flowml_conda.errors import CondaInputError

_BUILD_NUMBER = re.compile(r"_(\d+)$")


def solve(channels: list[str], specs: list[str], platform: str, virtual_repo, shown: str) -> list:
    """The records rattler picks for ``specs`` on ``platform`` (its subdir and noarch).

    Args:
        virtual_repo: conda-lock's virtual package repository (its packages for ``platform``
            are assumed present).
        shown: the environment file, for messages.
    Raises:
        CondaInputError: no solution (an unknown package, conflicting versions) or a channel
            that cannot be read; rattler's message says which.
    """
    import rattler
    from rattler import exceptions

    if not channels:
        raise CondaInputError("file", f"{shown}: channels: none given; name the channels to solve against")
    try:
        return asyncio.run(rattler.solve(channels, specs, platforms=[platform, "noarch"],
                                         virtual_packages=virtual_packages(virtual_repo, platform)))
    except exceptions.SolverError as exc:
        raise CondaInputError("file", f"{shown}: dependencies cannot be solved for {platform}: "
                                      f"{_one_line(exc)}") from None
    except (exceptions.GatewayError, exceptions.FetchRepoDataError, exceptions.InvalidChannelError) as exc:
        raise CondaInputError("file", f"{shown}: channels: cannot read a channel: {_one_line(exc)}") from None


def virtual_packages(virtual_repo, platform: str) -> list:
    """conda-lock's default virtual packages of ``platform`` as rattler's."""
    from rattler import BuildString, GenericVirtualPackage, PackageName, Version

    return [GenericVirtualPackage(PackageName(p.name), Version(p.version), BuildString(p.build))
            for p, subdirs in virtual_repo.packages_by_subdir.items() if platform in subdirs]


def install(packages: list[dict], folder: str, prefix: str) -> None:
    """Install the locked ``packages`` into ``folder``, a prefix that will be renamed ``prefix``
    (files naming their prefix get ``prefix``). Packages come from rattler's package cache
    (``RATTLER_CACHE_DIR``, shared with pixi) or are downloaded there and checked against the
    lock's hashes.

    Raises:
        Exception: rattler's, when a package cannot be fetched, fails its hash or cannot be linked.
    """
    import rattler

    records = [_record(p) for p in packages]
    asyncio.run(rattler.install(records, folder, alternative_target_prefix=prefix, show_progress=False))


def _record(package: dict):
    """A locked package as the repodata record rattler installs."""
    from rattler import BuildString, PackageRecord, RepoDataRecord

    url = package["url"]
    parts = urlsplit(url).path.rstrip("/").split("/")
    file_name, subdir = parts[-1], parts[-2]
    build = package["build"]
    number = _BUILD_NUMBER.search(build)
    record = PackageRecord(package["name"], package["version"], BuildString(build), int(number.group(1)) if number else 0,
                           subdir, depends=package["depends"], md5=bytes.fromhex(package["md5"]),
                           sha256=bytes.fromhex(package["sha256"]) if package.get("sha256") else None)
    return RepoDataRecord(record, file_name, url, url[: url.rindex(f"/{subdir}/")] + "/")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
