"""MLflow's ``MLproject`` format, run as a one-step pipeline of one of its entry points.

An MLproject names entry points, each a command template with typed parameters, and at
most one environment. ``flowml run DIR -e NAME -P k=v`` makes a pipeline of one step, NAME:
its command is the template with each value shell-quoted, as MLflow fills it (a ``-P`` the
entry point does not declare is appended as ``--k v``); its params are the entry point's,
recorded on its run as MLflow records them; its inputs are the project's files, so editing
one reruns it; its environment is the one declared (:mod:`flowml.projects.envs`).

Unlike MLflow, a value that is not of its parameter's type (``-P alpha=abc`` for a
``float``), a missing required value and a key the format does not have are errors before
anything runs, each at its place in the MLproject file.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import string
import subprocess
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowml.errors import Problem, SpecError, did_you_mean, display_path
from flowml.projects.envs import project_environment
from flowml.spec.yamlsource import SourceMap, load_yaml

if TYPE_CHECKING:  # loading a pipeline costs pydantic, which running a chained project's step does not need
    from flowml.spec.load import LoadedPipeline

TOP_KEYS = ("name", "entry_points", "python_env", "conda_env", "docker_env")
ENTRY_KEYS = ("parameters", "command")
PARAM_KEYS = ("type", "default", "description")
TYPES = ("string", "float", "int", "path", "uri")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")  # a name ${params.NAME} can refer to
_SCRIPTS = {".py": "python", ".sh": "bash"}  # a file run as an entry point, as MLflow runs it
# Files that are a store's or a cache's, not the project's, when the folder is not under git
_NOT_PROJECT = frozenset({"__pycache__", "mlruns", "mlartifacts"})
# A plain folder's code and environment files: what an MLproject's runs read as their code.
_CODE = re.compile(r"(?i)^(mlproject|dockerfile|requirements[^/]*\.txt|.+\.(py|sh|r|jl|ipynb|ya?ml|toml|cfg|ini))$")


@dataclass
class Parameter:
    name: str
    type: str
    default: Any  # None: required
    where: tuple  # its path in the file


@dataclass
class EntryPoint:
    name: str
    command: str
    parameters: dict[str, Parameter]
    where: tuple  # its path in the file; () for a script run as an entry point


def load_mlproject(path: str, entry_point: str, overrides, default_name: str) -> LoadedPipeline:
    """The pipeline that runs ``entry_point`` of the MLproject file ``path`` with ``overrides``
    (``-P key=value``); ``default_name`` names it when the file has no ``name``.

    Raises:
        SpecError: for any fault in the file, in its environment files or in ``overrides``.
    """
    from flowml.spec.load import LoadedPipeline
    from flowml.spec.models import Pipeline

    chosen, data, source = read_entry_point(path, entry_point)
    folder = os.path.dirname(path)
    values = _values(chosen, overrides, folder, source)
    run, params = _command(chosen, values, source)
    step = _step_name(chosen.name)
    env = project_environment(data, folder, source)
    inputs = [_literal(p) for p in dict.fromkeys([*project_files(folder), *_path_inputs(chosen, values, folder)])]
    spec = {"name": _pipeline_name(data.get("name") or default_name), "params": params,
            "steps": {step: {"run": run, "inputs": inputs, "env_vars": env.env_vars if env else {}}}}
    if env is not None:
        spec["environments"] = {env.name: {env.kind: env.config}}
        spec["steps"][step]["env"] = env.name
    pipeline = Pipeline.model_validate(spec)  # every value was checked above
    aliases = {("steps", step): chosen.where, ("steps", step, "run"): chosen.where + ("command",)}
    if env is not None:
        aliases[("environments", env.name)] = env.where
    return LoadedPipeline(pipeline, path, folder, _aliased(source, aliases), params)


def read_entry_point(path: str, name: str) -> tuple[EntryPoint, dict, SourceMap]:
    """The entry point ``name`` of the MLproject file ``path``, with the file's data and
    source map (its lines, for later problems).

    Raises:
        SpecError: for a fault in the file (at its line), or no such entry point (field ``-e NAME``).
    """
    data, source = _read(path)
    return _choose(_entry_points(data, source), name, os.path.dirname(path), source), data, source


def filled_command(point: EntryPoint, values: dict[str, str], source: SourceMap) -> str:
    """The shell command ``point`` runs with ``values``: each inserted shell-quoted, and those
    it does not declare appended as ``--key value``, as MLflow fills it."""
    from flowml.spec.interpolate import substitute

    run, quoted = _command(point, values, source)
    return substitute(run, lambda ref: quoted[ref.name])


def _read(path: str) -> tuple[dict, SourceMap]:
    shown = display_path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(Problem(f"cannot read the MLproject file: {exc}", shown)) from None
    data, source = load_yaml(text, shown)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(Problem("expected a mapping with name, entry_points and an environment", shown, 1, 1))
    problems = [_unknown_key(source, (), key, TOP_KEYS) for key in data if key not in TOP_KEYS]
    if isinstance(data.get("name"), (dict, list)):
        problems.append(source.problem(("name",), "expected the project's name, a string"))
    if problems:
        raise SpecError(problems)
    return data, source


def _entry_points(data: dict, source: SourceMap) -> dict[str, EntryPoint]:
    """Every entry point of the file, each checked for its shape."""
    points = data.get("entry_points") or {}
    if not isinstance(points, dict):
        raise SpecError(source.problem(("entry_points",), "expected a mapping of entry point names to "
                                                          "{parameters, command}"))
    found, problems = {}, []
    for name, body in points.items():
        where = ("entry_points", name)
        if not isinstance(body, dict):
            problems.append(source.problem(where, "expected a mapping with 'command' and optional 'parameters'"))
            continue
        problems += [_unknown_key(source, where, key, ENTRY_KEYS) for key in body if key not in ENTRY_KEYS]
        command = body.get("command")
        if not isinstance(command, str) or not command.strip():
            problems.append(source.problem(where + (("command",) if "command" in body else ()),
                                           "expected 'command', the shell command this entry point runs"))
        parameters, bad = _parameters(body.get("parameters"), where + ("parameters",), source)
        problems += bad
        found[str(name)] = EntryPoint(str(name), command or "", parameters, where)
    if problems:
        raise SpecError(problems)
    return found


def _parameters(spec: Any, where: tuple, source: SourceMap) -> tuple[dict[str, Parameter], list[Problem]]:
    """``{alpha: float}`` or ``{alpha: {type: float, default: 0.1}}`` as parameters."""
    if spec is None:
        return {}, []
    if not isinstance(spec, dict):
        return {}, [source.problem(where, "expected a mapping of parameter names to a type or {type, default}")]
    found, problems = {}, []
    for name, body in spec.items():
        at = where + (name,)
        if not _NAME.match(str(name)):
            problems.append(source.problem(at, f"parameter name '{name}': use letters, digits, '_' and '-', "
                                               "starting with a letter or '_'", key=True))
            continue
        if isinstance(body, str):
            kind, default, type_at = body, None, at
        elif isinstance(body, dict):
            problems += [_unknown_key(source, at, key, PARAM_KEYS) for key in body if key not in PARAM_KEYS]
            kind, default, type_at = body.get("type", "string"), body.get("default"), at + ("type",)
        else:
            problems.append(source.problem(at, f"expected a type ({', '.join(TYPES)}) or {{type, default}}"))
            continue
        if kind not in TYPES:
            problems.append(source.problem(type_at, f"unknown parameter type {kind!r}{did_you_mean(kind, TYPES)} "
                                                    f"(expected one of: {', '.join(TYPES)})"))
            continue
        found[name] = Parameter(name, kind, default, at)
    return found, problems


def _choose(points: dict[str, EntryPoint], name: str, folder: str, source: SourceMap) -> EntryPoint:
    """The entry point ``name``; a ``.py`` or ``.sh`` file of the project runs as one too."""
    if name in points:
        return points[name]
    runner = _SCRIPTS.get(os.path.splitext(name)[1])
    if runner and os.path.isfile(os.path.join(folder, name)):
        return EntryPoint(name, f"{runner} {shlex.quote(name)}", {}, ())
    declared = ", ".join(points) or "none"
    raise SpecError(Problem(f"no entry point '{name}' in {source.file}{did_you_mean(name, points)} (declared: "
                            f"{declared}); a .py or .sh file of the project runs as one too",
                            "command line", field=f"-e {name}"))


def _values(point: EntryPoint, overrides, folder: str, source: SourceMap) -> dict[str, str]:
    """Each parameter's value as text, checked against its type: ``-P`` first, then the
    default; then the ``-P`` values the entry point does not declare, as given."""
    given: dict[str, tuple[str, str]] = {}  # name -> (value, the -P as typed)
    problems = []
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(Problem("expected -P key=value", "command line", field=f"-P {item}"))
        elif key not in point.parameters and not _NAME.match(key):
            problems.append(Problem(f"parameter name '{key}': use letters, digits, '_' and '-'",
                                    "command line", field=f"-P {item}"))
        else:
            given[key] = (value, item)
    values = {}
    for name, param in point.parameters.items():
        if name in given:
            text, item = given[name]
            label, base = f"-P {item}", os.getcwd()  # a path on the command line is the caller's
        elif param.default is not None:
            text, label, base = str(param.default), "default", folder  # a default path is the project's
        else:
            problems.append(source.problem(param.where, key=True, message=f"parameter '{name}' of entry point '{point.name}' has no "
                                                        f"default: give it a value with -P {name}=VALUE"))
            continue
        try:
            values[name] = typed_value(param.type, text, base)
        except ValueError as exc:
            problems.append(source.problem(param.where, f"{label}: {exc}", key=True))
    if problems:
        raise SpecError(problems)
    values.update({key: value for key, (value, _) in given.items() if key not in point.parameters})
    return values


def typed_value(kind: str, text: str, base: str) -> str:
    """``text`` checked as a ``kind``; a path is made absolute (relative to ``base``)."""
    if kind == "float":
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ValueError(f"expected a number (type float), got {text!r}")
    elif kind == "int":
        try:
            int(text)
        except ValueError:
            raise ValueError(f"expected a whole number (type int), got {text!r}") from None
    elif kind == "uri":
        if not urllib.parse.urlparse(text).scheme:
            raise ValueError(f"expected a URI with a scheme, such as s3://bucket/key or file:///data, got {text!r}")
    elif kind == "path":
        if text.startswith("file://"):
            text = urllib.parse.urlparse(text).path
        elif "://" in text:
            raise ValueError(f"expected a local file or folder, got {text!r} (flowml does not download a path "
                             "parameter: declare it as a uri and fetch it in the command)")
        path = os.path.abspath(os.path.join(base, os.path.expanduser(text)))
        if not os.path.exists(path):
            raise ValueError(f"no such file or folder: {path}")
        return path
    return text.strip() if kind in ("float", "int") else text


def _command(point: EntryPoint, values: dict[str, str], source: SourceMap) -> tuple[str, dict[str, str]]:
    """The step's command, with ``${params.NAME}`` where the template has ``{NAME}`` (and
    ``--NAME ${params.NAME}`` appended for each undeclared ``-P``), and the params: each value
    shell-quoted, which is also how MLflow logs them."""
    where = point.where + ("command",)
    parts = []
    try:
        fields = list(string.Formatter().parse(point.command))
    except ValueError as exc:
        raise SpecError(source.problem(where, f"invalid command template: {exc} (write {{{{ and }}}} for literal "
                                              "braces)")) from None
    for literal, name, spec, conversion in fields:
        parts.append(_literal(literal))
        if name is None:
            continue
        if name not in point.parameters:
            raise SpecError(source.problem(where, f"'{{{name}}}' is not a parameter of entry point '{point.name}'"
                                                  f"{did_you_mean(name, point.parameters)} "
                                                  f"(declared: {', '.join(point.parameters) or 'none'})"))
        if spec or conversion:
            raise SpecError(source.problem(where, f"'{{{name}...}}': a value is inserted as it is, without "
                                                  "conversion or format"))
        parts.append(f"${{params.{name}}}")
    parts += [f" --{key} ${{params.{key}}}" for key in values if key not in point.parameters]
    return "".join(parts), {key: shlex.quote(value) for key, value in values.items()}


def _path_inputs(point: EntryPoint, values: dict[str, str], folder: str) -> list[str]:
    """The files and folders that ``path`` parameters name: changing one reruns the step."""
    paths = [values[n] for n, p in point.parameters.items() if p.type == "path"]
    return [os.path.relpath(p, folder) if _inside(p, folder) else p for p in paths]


def project_files(folder: str) -> list[str]:
    """The project's files, relative to ``folder``: in a git work tree the files git tracks
    (what a step writes there is not the project's), else its code and environment files
    (:data:`_CODE`, at any depth, hidden folders and stores of runs aside). Outside git nothing
    tells the project's files from what its runs wrote beside them (MLflow's examples write
    their outputs into the project folder), so data is an input only when a ``path``
    parameter names it; taking every file made each run's outputs the next run's inputs."""
    try:
        proc = subprocess.run(["git", "ls-files", "-z", "--cached"], cwd=folder, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        proc = None
    listed = proc.stdout.decode("utf-8", "surrogateescape").split("\0") if proc and proc.returncode == 0 else []
    tracked = sorted(p for p in set(listed) if p and os.path.lexists(os.path.join(folder, p)))
    if tracked:  # (a folder of untracked files inside a repository is taken as a plain folder)
        return tracked
    found = []
    for here, folders, files in os.walk(folder):
        folders[:] = sorted(f for f in folders if not f.startswith(".") and f not in _NOT_PROJECT)
        found += [os.path.relpath(os.path.join(here, f), folder) for f in files if _CODE.match(f)]
    return sorted(found)


def _inside(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder


def _literal(text: str) -> str:
    """``text`` with every ``${`` kept literal through flowml's own ``${...}`` substitution."""
    return text.replace("${", "$${")


def _step_name(name: str) -> str:
    """An entry point's name as a step name (``train.py`` -> ``train_py``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    return cleaned if re.match(r"^[A-Za-z_]", cleaned) else "_" + cleaned


def _pipeline_name(name: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(name)) or "mlproject"


def _unknown_key(source: SourceMap, where: tuple, key: Any, allowed: tuple[str, ...]) -> Problem:
    return source.problem(where + (key,), f"unknown key '{key}'{did_you_mean(key, allowed)} "
                                          f"(expected one of: {', '.join(allowed)})", key=True)


def _aliased(source: SourceMap, aliases: dict[tuple, tuple]) -> SourceMap:
    """``source`` with the pipeline's paths (``steps.NAME.run``) at the places in the
    MLproject they come from, so later checks report MLproject's lines."""
    out = SourceMap(source.file, dict(source.values), dict(source.keys))
    for path, origin in aliases.items():
        out.values[path] = source.locate(origin)
        out.keys[path] = source.locate(origin, key=True)
    return out
