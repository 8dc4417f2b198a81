"""Requirements resolved into a lock for one interpreter, and the environment key it gives.

The lock is what ``uv pip compile`` makes of the requirements (pinned versions, with hashes
where the index gives them), without its header or ``# via`` notes, so that two projects with
the same requirements get the same text and so share one environment. Resolving asks the
index, so its result is kept in ``resolved/`` of the environment folder under the digest of
what it depends on (the requirements file and the files it includes, the Python asked for,
the index settings and uv's resolver settings); an unchanged pipeline reads it back instead of
resolving again, unless the interpreter was replaced in place (a patch upgrade) or a local
package's files changed (:mod:`.sources`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from dataclasses import asdict, dataclass, field

import xxhash

from flowml.environments.uv.pipconfig import UV_INDEX_VARS, uv_index_args
from flowml.environments.uv.sources import absolute_lock, index_options, package_names, source_digest
from flowml.environments.uv.tool import UvError, run_uv

FORMAT = 2
# uv's variables that change what a resolution picks (beside the index ones)
RESOLVER_VARS = ("UV_PRERELEASE", "UV_RESOLUTION", "UV_EXCLUDE_NEWER", "UV_INDEX_STRATEGY", "UV_TORCH_BACKEND")
# -r/-c (and their long forms) include another file, relative to the one naming it
_INCLUDE = re.compile(r"^\s*(?:-r|-c|--requirement|--constraint)(?:\s*=\s*|\s+)(\S+)")
_QUERY = ("import platform, sys; print(platform.python_implementation().lower()); "
          "print(platform.python_version()); print(sys.executable)")


class ResolveError(Exception):
    """A fault in the user's input: ``field`` is ``requirements`` or ``version``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Interpreter:
    implementation: str
    version: str
    executable: str


@dataclass(frozen=True)
class Resolution:
    """A lock and the interpreter it was resolved for. ``sources``: the digest of each local
    package the lock names (its absolute path -> :func:`.sources.source_digest`), ``local``
    their names (rebuilt by each sync), ``options`` the requirements' own index option lines
    (a sync needs them again)."""

    lock: str
    python: Interpreter
    sources: dict[str, str] = field(default_factory=dict)
    local: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """The environment's name and fingerprint: interpreter, version and the digest of the
        lock (and of the local packages' files)."""
        h = hashlib.sha256(self.lock.encode())
        if self.sources:
            h.update(json.dumps(sorted(self.sources.items())).encode())
        return f"{self.python.implementation}-{self.python.version}-{h.hexdigest()[:24]}"

    @property
    def packages(self) -> int:
        return sum(1 for ln in self.lock.splitlines() if ln and not ln[0].isspace() and not ln.startswith("#"))


def resolve(requirements: str | None, python: str, cwd: str, folder: str) -> Resolution:
    """The lock of ``requirements`` (a file, or None for none) for the interpreter ``python``
    asks for, read from ``folder``'s ``resolved/`` when nothing it depends on changed.

    Raises:
        ResolveError: no interpreter matches ``python``, or the requirements cannot be resolved
            (uv's message says why, a network failure included).
    """
    args = uv_index_args(constraints=True)
    record = os.path.join(folder, "resolved", _resolution_key(requirements, python, args) + ".json")
    found = _read(record, cwd)
    if found is not None:
        return found
    interpreter = find_python(python, cwd)
    resolution = compile_lock(requirements, interpreter, args, cwd) if requirements else Resolution("", interpreter)
    _write(record, resolution)
    return resolution


def find_python(request: str, cwd: str) -> Interpreter:
    """The interpreter uv picks for ``request`` (a version or a path), outside any virtualenv."""
    try:
        path = run_uv(["python", "find", "--system", "--no-project", request], cwd, "finding Python").strip()
    except UvError as exc:
        raise ResolveError("version", f"no Python {request} on this machine: {exc.message}") from None
    proc = subprocess.run([path, "-I", "-S", "-c", _QUERY], capture_output=True, text=True)
    implementation, version, executable = (proc.stdout.splitlines() + ["", "", ""])[:3]
    if proc.returncode != 0 or not executable:
        raise ResolveError("version", f"the Python at {path} does not run: {proc.stderr.strip()}")
    return Interpreter(implementation, version, executable)


def compile_lock(requirements: str, python: Interpreter, index_args: list[str], cwd: str) -> Resolution:
    """``uv pip compile`` of ``requirements`` for ``python``: pinned, hashed, without notes, its
    local paths read against the requirements file's folder and made absolute.

    Args:
        cwd: the pipeline's folder (a local package holding it counts by its code only).
    """
    folder = os.path.dirname(requirements)
    try:
        out = run_uv(["pip", "compile", requirements, "--python", python.executable, "--generate-hashes",
                      "--no-header", "--no-annotate", "--quiet", *index_args], folder, "resolving")
        lock, paths = absolute_lock("\n".join(ln.rstrip() for ln in out.strip().splitlines()), folder)
        options = index_options(_with_includes([requirements]))
        names = package_names(paths, options, python.executable, folder, index_args) if paths else []
    except UvError as exc:
        raise ResolveError("requirements", f"cannot resolve {os.path.relpath(requirements, cwd)}: "
                                           f"{exc.message}") from None
    return Resolution(lock, python, {p: source_digest(p, cwd) for p in paths}, names, options)


def _resolution_key(requirements: str | None, python: str, index_args: list[str]) -> str:
    """Digest of what a resolution depends on: the files' bytes (requirements, what they
    include, constraint files), the Python asked for, the index options (pip's, or uv's own
    variables) and uv's resolver settings."""
    files = [requirements] if requirements else []
    files += [index_args[i + 1] for i, a in enumerate(index_args) if a == "--constraint"]
    uv_vars = {v: os.environ[v] for v in (*UV_INDEX_VARS, *RESOLVER_VARS) if os.environ.get(v)}
    h = xxhash.xxh3_128(json.dumps([FORMAT, python, index_args, uv_vars]).encode())
    for path in _with_includes(files):
        h.update(b"\0" + path.encode() + b"\0" + _read_bytes(path))
    return h.hexdigest()


def _with_includes(paths: list[str]) -> list[str]:
    """``paths`` and every file their ``-r``/``-c`` lines include, recursively, each once."""
    seen: list[str] = []
    todo = list(paths)
    while todo:
        path = todo.pop(0)
        if path in seen:
            continue
        seen.append(path)
        for line in _read_bytes(path).decode("utf-8", "replace").splitlines():
            m = _INCLUDE.match(line)
            if m and "://" not in m.group(1):
                todo.append(os.path.normpath(os.path.join(os.path.dirname(path), m.group(1))))
    return seen


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return b"\0missing"


def _read(record: str, project: str) -> Resolution | None:
    """A stored resolution still true: its interpreter is the same file (not removed, nor
    replaced by an upgrade in place) and its local packages hold the same files. Reading it
    marks it used (for prune)."""
    try:
        with open(record, encoding="utf-8") as fh:
            data = json.load(fh)
        resolution = Resolution(data["lock"], Interpreter(**data["python"]), data["sources"], data["local"], data["options"])
        stamp = data["stamp"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if _stamp(resolution.python.executable) != stamp:
        return None
    if any(source_digest(path, project) != digest for path, digest in resolution.sources.items()):
        return None
    try:
        os.utime(record)
    except OSError:
        pass
    return resolution


def _write(record: str, resolution: Resolution) -> None:
    """Store a resolution atomically; failing to only costs a resolve next time."""
    tmp = f"{record}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(record), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"lock": resolution.lock, "python": asdict(resolution.python), "sources": resolution.sources,
                       "local": resolution.local, "options": resolution.options, "stamp": _stamp(resolution.python.executable)}, fh)
        os.replace(tmp, record)
    except OSError:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _stamp(executable: str) -> list[int] | None:
    """The interpreter file's modification time and size: an upgrade in place changes them."""
    try:
        st = os.stat(executable)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size]
