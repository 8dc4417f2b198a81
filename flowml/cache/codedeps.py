"""The code a step runs: a ``python script.py`` or ``python -m pkg.mod`` command's script
and the project's own modules it imports, found statically and transitively.

Imports are read with :mod:`ast` (nothing is executed) and memoized by file digest, so an
unchanged module is neither read nor parsed twice. Only files inside the project count:
the standard library and installed packages belong to the environment's fingerprint.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
from typing import Callable

_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
_PUNCTUATION = set(";&|()")
_PREFIXES = {"exec", "env", "time", "nice", "nohup", "uv", "run"}
_OPTS_WITH_ARG = {"-W", "-X", "-Q"}
_PLAIN_DIR = re.compile(r"^[\w./-]+$")

# ("script", path, cwd, pythonpath) or ("module", dotted.name, cwd, pythonpath);
# cwd is relative to the project, pythonpath as the shell set it for that invocation.
Entry = tuple[str, str, str, str]


def python_entries(command: str | list[str] | None) -> list[Entry]:
    """The scripts and modules that the python invocations in ``command`` start.

    The shell's state that decides what they import is followed: ``cd DIR`` (undone at the
    end of a ``( ... )`` subshell), ``export PYTHONPATH=...`` and a ``PYTHONPATH=...`` prefix.
    """
    if command is None or "python" not in str(command):
        return []
    if isinstance(command, list):
        found = _entry(command)
        return [(*found[:2], ".", found[2])] if found else []
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars="".join(_PUNCTUATION))
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:
        return []
    entries: list[Entry] = []
    shells = [(".", "")]  # (cwd, PYTHONPATH) of the shell and of each open subshell
    words: list[str] = []
    for tok in tokens + [";"]:
        if not set(tok) <= _PUNCTUATION:
            words.append(tok)
            continue
        shells[-1] = _simple_command(words, *shells[-1], entries)
        words = []
        for ch in tok:
            if ch == "(":
                shells.append(shells[-1])
            elif ch == ")" and len(shells) > 1:
                shells.pop()
    return entries


def _simple_command(words: list[str], cwd: str, pythonpath: str, entries: list[Entry]) -> tuple[str, str]:
    """Apply one simple command to the shell state; a python invocation joins ``entries``."""
    if len(words) == 2 and words[0] == "cd":
        if _PLAIN_DIR.match(words[1]) and words[1] != "-":  # `cd -`, `cd $X`: where is unknown
            cwd = os.path.normpath(os.path.join(cwd, words[1]))
    elif words[:1] == ["export"]:
        for word in words[1:]:
            if word.startswith("PYTHONPATH="):
                pythonpath = word.split("=", 1)[1]
    elif found := _entry(words):
        entries.append((found[0], found[1], cwd, found[2] or pythonpath))
    return cwd, pythonpath


def _entry(argv: list[str]) -> tuple[str, str, str] | None:
    """(kind, target, PYTHONPATH prefix) of a python invocation, else None."""
    i, pythonpath = 0, ""
    while i < len(argv) and ("=" in argv[i] and not argv[i].startswith("-") or argv[i] in _PREFIXES):
        if argv[i].startswith("PYTHONPATH="):
            pythonpath = argv[i].split("=", 1)[1]
        i += 1
    if i >= len(argv) or not _PYTHON.match(os.path.basename(argv[i])):
        return None
    i += 1
    while i < len(argv):
        arg = argv[i]
        if arg == "-m" and i + 1 < len(argv):
            return ("module", argv[i + 1], pythonpath)
        if arg.startswith("-m") and len(arg) > 2:
            return ("module", arg[2:], pythonpath)
        if arg == "-c" or arg.startswith("-c") or arg == "-":
            return None
        if arg in _OPTS_WITH_ARG:
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        return ("script", arg, pythonpath)
    return None


def imports_of(source: bytes) -> list[list]:
    """``[module, level, [names]]`` for every import statement in ``source``."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [[alias.name, 0, []] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append([node.module or "", node.level, [a.name for a in node.names]])
    return found


def code_files(root: str, entries: list[Entry], imports: Callable[[str], list[list]],
               pythonpath: str = "") -> list[str]:
    """Project-relative paths of the entry scripts/modules and what they import, transitively.

    Modules are looked up as Python would: the script's folder (or the working folder for
    ``-m``), then ``pythonpath`` (the step's PYTHONPATH, relative to where it runs), then
    the project folder and its ``src/``.

    Args:
        root: the project folder; files outside it are ignored.
        entries: from :func:`python_entries`.
        imports: returns :func:`imports_of` for a project-relative path (memoized by the caller).
        pythonpath: the PYTHONPATH of the step's ``env_vars`` (one set in the command rides on the entry).
    """
    root = os.path.abspath(root)
    todo: list[tuple[str, list[str]]] = []  # (relative path, module search roots)
    for kind, target, cwd, shell_path in entries:
        here = os.path.normpath(os.path.join(root, cwd))
        paths = f"{shell_path}{os.pathsep}{pythonpath}".split(os.pathsep)
        extra = [os.path.normpath(os.path.join(here, p)) for p in paths if p]
        fallback = [root, os.path.join(root, "src")]
        if kind == "script":
            script = os.path.normpath(os.path.join(here, target))
            if os.path.isfile(script) and _inside(root, script):
                todo.append((os.path.relpath(script, root), [os.path.dirname(script), *extra, *fallback]))
        else:
            roots = [here, *extra, *fallback]
            for path in _module_files(target, roots):
                todo.append((os.path.relpath(path, root), roots))
    seen: set[str] = set()
    while todo:
        rel, roots = todo.pop()
        if rel in seen:
            continue
        seen.add(rel)
        here = os.path.dirname(os.path.join(root, rel))
        for module, level, names in imports(rel):
            if level:
                base = here
                for _ in range(level - 1):
                    base = os.path.dirname(base)
                candidates = _relative_files(base, module, names)
            else:
                candidates = [p for n in [module] + [f"{module}.{x}" for x in names if x != "*"]
                              for p in _module_files(n, roots)]
            for path in candidates:
                if _inside(root, path):
                    todo.append((os.path.relpath(path, root), roots))
    return sorted(seen)


def _module_files(dotted: str, roots: list[str]) -> list[str]:
    """Files that importing ``dotted`` would run: its packages' ``__init__`` files and itself."""
    parts = [p for p in dotted.split(".") if p]
    for root in roots:
        found = []
        for depth in range(1, len(parts) + 1):
            base = os.path.join(root, *parts[:depth])
            init = os.path.join(base, "__init__.py")
            if os.path.isfile(init):
                found.append(init)
            elif os.path.isfile(base + ".py") and depth == len(parts):
                found.append(base + ".py")
            elif not os.path.isdir(base):
                break
        if found:
            return found
    return []


def _relative_files(base: str, module: str, names: list[str]) -> list[str]:
    target = os.path.join(base, *module.split(".")) if module else base
    found = []
    for candidate in [target + ".py", os.path.join(target, "__init__.py")]:
        if os.path.isfile(candidate):
            found.append(candidate)
    for name in names:
        for candidate in [os.path.join(target, name + ".py"), os.path.join(target, name, "__init__.py")]:
            if os.path.isfile(candidate):
                found.append(candidate)
    return found


def _inside(root: str, path: str) -> bool:
    path = os.path.abspath(path)
    return path.startswith(root + os.sep) and os.sep + ".venv" + os.sep not in path[len(root):]
