"""The shared folder of environments, for every kind that keeps its environments there (a
virtual environment per resolved lock, a conda prefix per lock), and :class:`StoredEnvironment`,
the base of those kinds.

Layout of the folder (``FLOWML_ENV_DIR``, else the user's cache folder)::

    <key>/                 a finished environment (a relocatable venv, a conda prefix), with
        flowml-env.json    what it was made from (python, lock) and when
        requirements.lock  the lock a venv was synced to
        .flowml-users/     one file per project that used it, touched on each use
    locks/<key>.lock       held shared by every process using <key>, exclusively to create or remove it
    resolved/*.json        inputs resolved into locks (:mod:`flowml.environments.uv.resolve`, plugins' own)
    .tmp-<key>-*           an environment being made: renamed to <key> once complete
    .removed-*             an environment being removed: renamed aside first

An environment appears under its key only when complete, so an interrupted creation leaves a
``.tmp-`` folder that nothing mistakes for an environment (the next creation of that key, or
``flowml env prune``, removes it). Two processes needing the same new environment create it
once: the second waits for the first's exclusive lock, then finds it made.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import time
import uuid
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable

import xxhash

from flowml.environments import Environment, EnvSetupError

ENV_DIR_VAR = "FLOWML_ENV_DIR"
META = "flowml-env.json"
USERS = ".flowml-users"
TMP = ".tmp-"
REMOVED = ".removed-"


def default_env_dir() -> str:
    """``FLOWML_ENV_DIR``, else ``envs`` in flowml's folder of the user's cache directory."""
    chosen = os.environ.get(ENV_DIR_VAR)
    if chosen:
        return os.path.abspath(os.path.expanduser(chosen))
    home = os.path.expanduser("~")
    if sys.platform == "darwin":
        base = os.path.join(home, "Library", "Caches", "flowml")
    elif os.name == "nt":
        base = os.path.join(os.environ.get("LOCALAPPDATA") or home, "flowml", "Cache")
    else:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache"), "flowml")
    return os.path.join(base, "envs")


class EnvLock:
    """An ``flock`` on ``locks/<key>.lock``: shared while an environment is in use, exclusive
    while it is made or removed. The file may be removed by whoever holds it exclusively, so
    a lock taken on a file that is no longer at its path is dropped and taken again."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self, shared: bool, wait: bool = True) -> bool:
        """Take the lock; False only when ``wait`` is off and another process holds it."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        flags = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, flags)
            except BlockingIOError:
                os.close(fd)
                return False
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                return True
            os.close(fd)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    __del__ = release


@dataclass
class EnvInfo:
    """One environment of the folder, as ``flowml env list`` shows it."""

    key: str
    path: str
    python: str
    packages: int
    size: int
    created: float
    last_used: float
    projects: list[str] = field(default_factory=list)
    in_use: bool = False

    def to_json(self) -> dict:
        return {"key": self.key, "path": self.path, "python": self.python, "packages": self.packages,
                "size": self.size, "created": self.created, "last_used": self.last_used,
                "projects": self.projects, "in_use": self.in_use}


class EnvStore:
    """The folder of environments (created on first use only)."""

    def __init__(self, root: str | None = None) -> None:
        self.root = root or default_env_dir()

    def path(self, key: str) -> str:
        return os.path.join(self.root, key)

    def lock(self, key: str) -> EnvLock:
        return EnvLock(os.path.join(self.root, "locks", key + ".lock"))

    # using -------------------------------------------------------------------------

    def ensure_made(self, key: str, make: Callable[[str], None], meta: dict,
                    ready: Callable[[str], bool] | None = None) -> EnvLock:
        """The environment ``key`` made by ``make`` if missing; returns its lock, held shared.

        Any kind of environment shares the folder's locking, atomic creation, listing and pruning
        this way: only what fills the folder differs.

        Args:
            make: fills a new folder (its path, not yet existing) with the environment; it is
                renamed to ``key`` only once ``make`` returned and ``meta`` was written.
            meta: what to record about it in ``flowml-env.json`` (``label`` and ``packages`` are
                what ``flowml env list`` shows).
            ready: whether a finished environment is still usable (a venv whose interpreter was
                removed is not, and is made again); by default every finished one is.
        Raises:
            whatever ``make`` raises (nothing is left under ``key``), or
            EnvSetupError: the environment ``make`` left is not ready.
        """
        held = self.lock(key)
        while True:
            held.acquire(shared=True)
            if self._complete(key, ready):
                return held
            held.release()
            held.acquire(shared=False)
            try:
                if not self._complete(key, ready):
                    self._create(key, make, meta)
                    if not self._complete(key, ready):
                        raise EnvSetupError(f"the environment made in {self.path(key)} is not usable")
            finally:
                held.release()

    def record_use(self, key: str, project: str) -> None:
        """Note that ``project`` used ``key`` now (one small file per project, its mtime the time)."""
        folder = os.path.join(self.path(key), USERS)
        marker = os.path.join(folder, xxhash.xxh3_64_hexdigest(project.encode()))
        try:
            os.utime(marker)
        except FileNotFoundError:
            os.makedirs(folder, exist_ok=True)
            with open(marker, "w", encoding="utf-8") as fh:
                fh.write(project)

    def _complete(self, key: str, ready: Callable[[str], bool] | None) -> bool:
        """Made to the end (its record written last), and still ``ready``."""
        path = self.path(key)
        return os.path.exists(os.path.join(path, META)) and (ready is None or ready(path))

    def _create(self, key: str, make: Callable[[str], None], meta: dict) -> None:
        """Make ``key`` in a temporary folder and rename it into place (called under the exclusive lock)."""
        os.makedirs(self.root, exist_ok=True)
        self._remove_leftovers(key)
        tmp = os.path.join(self.root, f"{TMP}{key}-{uuid.uuid4().hex[:8]}")
        try:
            make(tmp)
            with open(os.path.join(tmp, META), "w", encoding="utf-8") as fh:
                json.dump({**meta, "key": key, "created": time.time()}, fh, indent=2)
            os.rename(tmp, self.path(key))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _remove_leftovers(self, key: str) -> None:
        """A broken ``key`` (its interpreter gone) and unfinished folders of it (under the exclusive lock)."""
        if os.path.lexists(self.path(key)):
            _remove_tree(self.path(key), self.root)
        for entry in os.scandir(self.root):
            if entry.name.startswith(f"{TMP}{key}-"):
                shutil.rmtree(entry.path, ignore_errors=True)

    # resolutions ---------------------------------------------------------------------

    def read_resolution(self, name: str) -> dict | None:
        """The JSON record ``resolved/<name>.json`` (what an environment's inputs resolved to),
        or None; reading it marks it used, so ``prune`` keeps it."""
        path = os.path.join(self.root, "resolved", name + ".json")
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            os.utime(path)
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write_resolution(self, name: str, data: dict) -> None:
        """Store ``resolved/<name>.json`` atomically; failing to only costs resolving again."""
        path = os.path.join(self.root, "resolved", name + ".json")
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(data, fh)
            os.replace(tmp, path)
        except OSError:
            if os.path.exists(tmp):
                os.unlink(tmp)

    # listing and pruning -----------------------------------------------------------

    def environments(self) -> list[EnvInfo]:
        """Every finished environment of the folder, most recently used first."""
        try:
            entries = [e for e in os.scandir(self.root) if e.is_dir() and not e.name.startswith(".")
                       and e.name not in ("locks", "resolved")]
        except FileNotFoundError:
            return []
        found = [info for info in map(self._info, entries) if info is not None]
        return sorted(found, key=lambda i: -i.last_used)

    def _info(self, entry: os.DirEntry) -> EnvInfo | None:
        try:
            with open(os.path.join(entry.path, META), encoding="utf-8") as fh:
                meta = json.load(fh)
        except (OSError, ValueError):
            return None
        users = []
        try:
            users = [u for u in os.scandir(os.path.join(entry.path, USERS)) if u.is_file()]
        except FileNotFoundError:
            pass
        projects = []
        for user in users:
            with open(user.path, encoding="utf-8") as fh:
                projects.append(fh.read())
        created = meta.get("created", 0.0)
        last_used = max([created, *(u.stat().st_mtime for u in users)])
        python = meta.get("python", {})
        label = meta.get("label") or f"{python.get('implementation', '?')} {python.get('version', '?')}"
        return EnvInfo(entry.name, entry.path, label,
                       meta.get("packages", 0), _size(entry.path), created, last_used, sorted(projects),
                       self._in_use(entry.name))

    def _in_use(self, key: str) -> bool:
        probe = self.lock(key)
        if not probe.acquire(shared=False, wait=False):
            return True
        probe.release()
        return False

    def prune(self, days: float | None, remove_all: bool, dry_run: bool) -> list[tuple[EnvInfo, str, str]]:
        """Remove environments not used for ``days`` days, or that no existing project used, or
        all of them; never one a running process holds. Returns (environment, "removed" |
        "kept", why) for each one it considered."""
        report = []
        for info in self.environments():
            why = _why_remove(info, days, remove_all)
            if why is None:
                continue
            held = self.lock(info.key)
            if not held.acquire(shared=False, wait=False):
                report.append((info, "kept", "in use by a running process"))
                continue
            try:
                if not dry_run:
                    _remove_tree(info.path, self.root)
                    os.unlink(held.path)  # under the lock: a waiter sees the file gone and takes a new one
            finally:
                held.release()
            report.append((info, "would remove" if dry_run else "removed", why))
        if not dry_run:
            self._prune_unfinished()
            self._prune_resolutions(days, remove_all)
        return report

    def _prune_unfinished(self) -> None:
        """Folders of creations and removals that were interrupted (a creation only when no
        process holds its key)."""
        try:
            entries = [e for e in os.scandir(self.root) if e.name.startswith((TMP, REMOVED))]
        except FileNotFoundError:
            return
        for entry in entries:
            if entry.name.startswith(REMOVED):
                shutil.rmtree(entry.path, ignore_errors=True)
                continue
            held = self.lock(entry.name[len(TMP):].rsplit("-", 1)[0])
            if held.acquire(shared=False, wait=False):
                shutil.rmtree(entry.path, ignore_errors=True)
                held.release()

    def _prune_resolutions(self, days: float | None, remove_all: bool) -> None:
        """Resolved locks not read for ``days`` days (each read touches its file)."""
        folder = os.path.join(self.root, "resolved")
        cutoff = time.time() - days * 86400 if days is not None else None
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return
        for entry in entries:
            if remove_all or (cutoff is not None and entry.stat().st_mtime < cutoff):
                os.unlink(entry.path)


class StoredEnvironment(Environment):
    """An environment kept in the shared folder under its :attr:`key`, made there once by
    whichever process needs it first and shared by every project that resolves to the same key.

    A kind says what the key is (a digest of what the environment holds, also its fingerprint),
    how to fill a new folder with it and what to record about it; making it under the folder's
    lock, holding it while this process lives and noting the project's use are done here."""

    def __init__(self, name: str, config: Any, root: str) -> None:
        super().__init__(name, config, root)
        self.store = EnvStore()
        self._held: EnvLock | None = None

    @property
    @abstractmethod
    def key(self) -> str:
        """The environment's name in the folder: it changes whenever what it holds would."""

    @abstractmethod
    def make(self, folder: str) -> None:
        """Fill the new ``folder`` (renamed to :attr:`path` once complete) with the environment.

        Raises:
            EnvSetupError: it cannot be made; the message names the environment."""

    @abstractmethod
    def meta(self) -> dict:
        """What to record in its ``flowml-env.json`` (see :meth:`EnvStore.ensure_made`)."""

    def ready(self, path: str) -> bool:
        """Whether the finished environment at ``path`` is still usable (else it is made again)."""
        return True

    @property
    def path(self) -> str:
        return self.store.path(self.key)

    def fingerprint(self) -> str:
        return self.key

    def prepare(self) -> None:
        """Make the environment if the shared folder lacks it, and hold it (shared) while this
        process lives, so ``flowml env prune`` leaves it alone."""
        try:
            if self._held is None:
                self._held = self.store.ensure_made(self.key, self.make, self.meta(), ready=self.ready)
            self.store.record_use(self.key, self.root)
        except OSError as exc:
            raise EnvSetupError(f"environment {self.name}: cannot use {self.store.root}: "
                                f"{exc.strerror or exc}") from None


def _why_remove(info: EnvInfo, days: float | None, remove_all: bool) -> str | None:
    if remove_all:
        return "--all"
    if days is not None and info.last_used < time.time() - days * 86400:
        return f"not used for {days:g} days"
    if info.projects and not any(os.path.isdir(p) for p in info.projects):
        return "no project that used it exists any more"
    return None


def _remove_tree(path: str, root: str) -> None:
    """Rename ``path`` aside, then delete it: an interrupted removal leaves a ``.removed-``
    folder, never a half-deleted environment under its key."""
    aside = os.path.join(root, f"{REMOVED}{uuid.uuid4().hex[:8]}")
    os.rename(path, aside)
    shutil.rmtree(aside, ignore_errors=True)


def _size(path: str) -> int:
    """Bytes under ``path``, links not followed."""
    total = 0
    for folder, dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total
