"""An MLproject's environment as one of flowml's: ``python_env`` -> ``python`` (uv),
``conda_env`` -> ``conda``, ``docker_env`` -> ``docker``.

As in MLflow, a project that declares none but holds ``python_env.yaml`` (else
``conda.yaml``) uses that file, and one with neither runs in flowml's own interpreter. A
``python_env.yaml`` (``python``, ``build_dependencies``, ``dependencies``) becomes a
requirements file in the project's ``.flowml/`` folder, named for its content, for the
Python version it asks for. The kind must be installed (``conda`` and ``docker`` are
plugins): if it is not, the error names the package to install, at the MLproject's line.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any

from flowml.errors import Problem, SpecError, did_you_mean, display_path
from flowml.spec.yamlsource import SourceMap, load_yaml

KINDS = {"python_env": "python", "conda_env": "conda", "docker_env": "docker"}
DEFAULT_FILES = (("python_env", "python_env.yaml"), ("conda_env", "conda.yaml"))
PYTHON_ENV_KEYS = ("python", "build_dependencies", "dependencies")
DOCKER_KEYS = ("image", "volumes", "environment")
GENERATED = os.path.join(".flowml", "mlproject")
# a requirement line that names another file or a folder, relative to the file it is in
_RELATIVE = re.compile(r"^(-r|-c|-e|--requirement|--constraint|--editable)(?:\s*=\s*|\s+)(\S.*)$")


@dataclass
class ProjectEnv:
    name: str  # the MLproject key: python_env, conda_env or docker_env
    kind: str  # the flowml environment kind
    config: dict[str, Any]
    where: tuple  # its place in the MLproject
    env_vars: dict[str, str] = field(default_factory=dict)


def project_environment(data: dict, folder: str, source: SourceMap) -> ProjectEnv | None:
    """The environment the MLproject ``data`` declares (or implies by its files), or None.

    Raises:
        SpecError: at the MLproject's line (or the environment file's) for what is wrong.
    """
    declared = [key for key in KINDS if key in data]
    if len(declared) > 1:
        raise SpecError(source.problem((declared[1],), f"an MLproject declares one environment, found "
                                                       f"{' and '.join(declared)}", key=True))
    if declared:
        key, value, where = declared[0], data[declared[0]], (declared[0],)
    else:
        key, value = next(((k, f) for k, f in DEFAULT_FILES if os.path.isfile(os.path.join(folder, f))), (None, None))
        if key is None:
            return None
        where = ()
    kind = KINDS[key]
    _require_kind(kind, key, where, source)
    if key == "docker_env":
        config, env_vars = _docker(value, where, source)
        return ProjectEnv(key, kind, config, where, env_vars)
    path = _env_file(value, key, where, folder, source)
    config = _python(path, folder) if key == "python_env" else {"file": os.path.relpath(path, folder)}
    return ProjectEnv(key, kind, config, where)


def _require_kind(kind: str, key: str, where: tuple, source: SourceMap) -> None:
    """The environment kind is installed, else the usual error at ``key``'s line."""
    from flowml.environments import environment_class

    try:
        environment_class(kind, key)
    except SpecError as exc:
        raise SpecError(source.problem(where, exc.problems[0].message)) from None


def _env_file(value: Any, key: str, where: tuple, folder: str, source: SourceMap) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SpecError(source.problem(where, f"expected the path of the {key} file, relative to the MLproject"))
    path = os.path.join(folder, value)
    if not os.path.isfile(path):
        raise SpecError(source.problem(where, f"{key} file '{value}' not found in {display_path(folder)}"))
    return path


def _python(path: str, folder: str) -> dict[str, Any]:
    """``python_env.yaml`` as the config of a ``python`` environment."""
    shown = display_path(path)
    with open(path, encoding="utf-8") as fh:
        data, source = load_yaml(fh.read(), shown)
    if not isinstance(data, dict):
        raise SpecError(Problem("expected a mapping with python, build_dependencies and dependencies", shown, 1, 1))
    problems = [source.problem((k,), f"unknown key '{k}'{did_you_mean(k, PYTHON_ENV_KEYS)} "
                                     f"(expected one of: {', '.join(PYTHON_ENV_KEYS)})", key=True)
                for k in data if k not in PYTHON_ENV_KEYS]
    version = data.get("python")
    if version is not None and not isinstance(version, str):
        problems.append(source.problem(("python",), f"expected a quoted version such as \"3.11\" (unquoted, YAML "
                                                    f"reads it as {version!r})"))
    lines = []
    for key in ("build_dependencies", "dependencies"):
        listed = data.get(key) or []
        if not isinstance(listed, list) or not all(isinstance(x, str) for x in listed):
            problems.append(source.problem((key,), "expected a list of requirements, e.g. [numpy, -r requirements.txt]"))
            continue
        lines += [_absolute(line, os.path.dirname(path)) for line in listed]
    if problems:
        raise SpecError(problems)
    return {"requirements": _write_requirements(lines, folder) if lines else None, "version": version}


def _absolute(line: str, base: str) -> str:
    """A requirement line with a relative file or folder made absolute, since the written
    requirements file lives elsewhere than python_env.yaml."""
    text = line.strip()
    m = _RELATIVE.match(text)
    if m and "://" not in m.group(2) and not os.path.isabs(m.group(2)):
        return f"{m.group(1)} {os.path.join(base, m.group(2))}"
    if text.startswith(("./", "../")):
        return os.path.join(base, text)
    return text


def _write_requirements(lines: list[str], folder: str) -> str:
    """``lines`` as a requirements file named for its content, written once."""
    text = "".join(line + "\n" for line in lines)
    path = os.path.join(folder, GENERATED, f"requirements-{hashlib.sha256(text.encode()).hexdigest()[:16]}.txt")
    if not os.path.isfile(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    return path


def _docker(value: Any, where: tuple, source: SourceMap) -> tuple[dict[str, Any], dict[str, str]]:
    """``docker_env`` as a ``docker`` environment's config and the step's variables."""
    if not isinstance(value, dict) or not isinstance(value.get("image"), str) or not value["image"].strip():
        raise SpecError(source.problem(where, "expected a mapping with 'image', the container image to run in"))
    problems = [source.problem(where + (k,), f"unknown key '{k}'{did_you_mean(k, DOCKER_KEYS)} "
                                             f"(expected one of: {', '.join(DOCKER_KEYS)})", key=True)
                for k in value if k not in DOCKER_KEYS]
    if value.get("volumes"):
        problems.append(source.problem(where + ("volumes",), "volumes are not supported by flowml's docker "
                                                             "environment yet (the project folder is mounted)"))
    env_vars = {}
    for i, item in enumerate(value.get("environment") or []):
        if isinstance(item, list) and len(item) == 2 and all(isinstance(x, (str, int, float)) for x in item):
            env_vars[str(item[0])] = str(item[1])
        else:
            problems.append(source.problem(where + ("environment", i), "expected [NAME, value]; passing a variable "
                                                                       "through from the host is not supported yet"))
    if problems:
        raise SpecError(problems)
    return {"image": value["image"]}, env_vars
