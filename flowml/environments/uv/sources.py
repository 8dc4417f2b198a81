"""Requirements that name something on this machine: a package folder (``./mypkg``,
``-e ../lib``), a wheel or sdist file, a ``--find-links`` folder.

uv reads such a path relative to its working folder, and the lock keeps it as written, so a
lock is made absolute here against the requirements file's folder: it then installs from any
folder, and two projects whose ``./mypkg`` are different folders get different environments.
uv's lock line for a folder carries no hash, and uv reuses a folder's build until its
``pyproject.toml`` changes, so the environment's key takes in a digest of each source's files
(:func:`source_digest`) and a sync rebuilds those packages (``--refresh-package``): editing
the package makes a new environment and reruns the steps that use it.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from urllib.parse import unquote, urlsplit

import xxhash

from flowml.environments.uv.tool import run_uv

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# a lock line: optional -e, optional "name[extras] @ ", the location, the rest (markers, " \")
_LINE = re.compile(r"^(?P<editable>(?:-e|--editable)(?:\s+|=))?"
                   r"(?:(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?)\s*@\s*)?(?P<where>\S+)(?P<rest>.*)$")
# index options of a requirements file, which uv uses to resolve and the sync must be given again
_INDEX_OPTION = re.compile(r"^\s*(?P<option>-f|--find-links|-i|--index-url|--extra-index-url)(?:\s*=\s*|\s+)(?P<value>\S+)")
_SKIPPED_DIRS = {"__pycache__", "build", "dist", "node_modules"}
# when a source folder holds the pipeline itself (``-e .``), only these count: the steps' outputs
# and data beside the code must not change the environment
_CODE = (".py", ".pyi", ".pyx", ".pxd", ".c", ".cc", ".cpp", ".h", ".rs")
_PACKAGING = {"pyproject.toml", "setup.py", "setup.cfg", "MANIFEST.in", "Cargo.toml"}


def absolute_lock(lock: str, base: str) -> tuple[str, list[str]]:
    """``lock`` with each local requirement's path made absolute against ``base``, and those paths."""
    lines, paths = [], []
    for line in lock.splitlines():
        m = None if not line or line[0].isspace() or line.startswith("#") else _LINE.match(line)
        path = _local_path(m.group("where"), base) if m else None
        if path is None:
            lines.append(line)
            continue
        paths.append(path)
        where = f"{m.group('name')} @ {_file_url(path)}" if m.group("name") else path
        lines.append(f"{m.group('editable') or ''}{where}{m.group('rest')}")
    return "\n".join(lines) + "\n", paths


def index_options(files: list[str]) -> list[str]:
    """The ``--find-links`` and index option lines of the requirements ``files``, for the
    file a sync reads; a local folder made absolute against the folder of the file naming it."""
    lines = []
    for path in files:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError):
            continue
        for line in text.splitlines():
            if line.strip() == "--no-index":
                lines.append("--no-index")
                continue
            m = _INDEX_OPTION.match(line)
            if not m:
                continue
            option = {"-f": "--find-links", "-i": "--index-url"}.get(m.group("option"), m.group("option"))
            value = m.group("value")
            if option == "--find-links":
                value = _local_path(value, os.path.dirname(path)) or value
            lines.append(f"{option} {value}")
    return lines


def package_names(paths: list[str], options: list[str], python: str, cwd: str, index_args: list[str]) -> list[str]:
    """The names of the packages at ``paths`` (uv reads their metadata, building it if it must,
    from the index ``options`` lines and ``index_args``).

    Raises:
        UvError: uv could not read one.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as fh:
        fh.write("\n".join([*options, *paths]) + "\n")
        fh.flush()
        out = run_uv(["pip", "compile", fh.name, "--no-deps", "--format", "pylock.toml", "--no-header", "--quiet",
                      "--python", python, *index_args], cwd, "reading the local packages")
    return sorted({p["name"] for p in tomllib.loads(out).get("packages", [])})


def source_digest(path: str, project: str) -> str:
    """A digest of what is at ``path``: a file's bytes, or a folder's files and their names.

    A folder's version control, caches and build outputs (dot-folders, ``__pycache__``,
    ``*.egg-info``, ``build``, ``dist``) are left out; when it holds ``project`` (the pipeline's
    folder, as ``-e .`` does), only its code and packaging files count."""
    h = xxhash.xxh3_128()
    if os.path.isfile(path):
        _update(h, path)
        return h.hexdigest()
    if not os.path.isdir(path):
        return "missing"
    code_only = os.path.commonpath([path, project]) == path
    for folder, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not (d.startswith(".") or d in _SKIPPED_DIRS or d.endswith(".egg-info")))
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")) or (code_only and not (name.endswith(_CODE) or name in _PACKAGING)):
                continue
            file = os.path.join(folder, name)
            h.update(os.path.relpath(file, path).encode() + b"\0")
            _update(h, file)
    return h.hexdigest()


def _update(h, path: str) -> None:
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        h.update(b"\0unreadable")
    h.update(b"\0")


def _local_path(where: str, base: str) -> str | None:
    """The absolute path ``where`` names (a path or a ``file:`` URL), or None for anything else."""
    if where.startswith("file:"):
        parts = urlsplit(where)
        if parts.netloc not in ("", "localhost"):
            return None
        where = unquote(parts.path)
    elif not where.startswith((".", "/", "~")):
        return None
    return os.path.normpath(os.path.join(base, os.path.expanduser(where)))


def _file_url(path: str) -> str:
    from pathlib import Path

    return Path(path).as_uri()
