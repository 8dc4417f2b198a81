"""Load pipeline.yaml: parse, validate against the models, check references, apply ``-P``.

Every fault becomes a :class:`~flowml.errors.SpecError` naming ``file:line:column``,
the field path and what was expected, with a did-you-mean for misspelt names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from flowml.errors import Problem, SpecError, did_you_mean, display_path, pipeline_file
from flowml.spec.conditions import ConditionError, parse_condition
from flowml.spec.interpolate import RefSyntaxError, refs_in
from flowml.spec.models import Pipeline, Step
from flowml.spec.yamlsource import SourceMap, load_yaml

# Fields whose values may hold ${steps...} references (resolved once upstream steps finish).
RUNTIME_FIELDS = ("run", "env_vars", "when")
REF_FIELDS = ("run", "inputs", "outputs", "env_vars", "matrix", "when", "metrics", "project")


@dataclass
class LoadedPipeline:
    """A validated pipeline with where it came from."""

    spec: Pipeline
    path: str  # the pipeline file, absolute
    root: str  # the folder steps run in and paths are relative to
    source: SourceMap
    params: dict[str, Any]  # defaults with -P overrides applied


def load_pipeline(path: str, overrides: list[str] | tuple[str, ...] = (), text: bytes | None = None) -> LoadedPipeline:
    """Read and check ``path`` (a pipeline file or a folder holding pipeline.yaml).

    Args:
        text: the file's bytes when the caller has already read them.

    Raises:
        SpecError: for any fault in the file or in ``overrides``.
    """
    path = pipeline_file(path)
    shown = display_path(path)
    try:
        if text is None:
            with open(path, "rb") as fh:
                text = fh.read()
        text = text.decode("utf-8")
    except FileNotFoundError:
        raise SpecError(Problem("no such pipeline file", shown)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(Problem(f"cannot read the pipeline file: {exc}", shown)) from None
    data, source = load_yaml(text, shown)
    if not isinstance(data, dict):
        raise SpecError(Problem("expected a mapping with name, params, environments and steps", shown, 1, 1))
    try:
        spec = Pipeline.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_problems(exc, data, source)) from None
    _check_references(spec, source)
    params = apply_overrides(spec.params, overrides)
    return LoadedPipeline(spec, path, os.path.dirname(path), source, params)


def _problems(exc: ValidationError, data: Any, source: SourceMap) -> list[Problem]:
    """Turn pydantic's errors into one problem per field, at the field's position.

    Union members and validators add parts to an error's location that are not in the
    file; they are dropped by walking the data. When a union reports both a shallow error
    (``expected a boolean``) and a deeper one inside the value, the deeper one is kept.
    """
    errors = []
    for err in exc.errors(include_url=False):
        raw = tuple(err["loc"])
        tail = raw[-1:] if err["type"] in ("missing", "extra_forbidden") else ()
        errors.append((_data_path(data, raw[: len(raw) - len(tail)]) + tail, err))
    problems, seen = [], set()
    for loc, err in errors:
        deeper = any(other[: len(loc)] == loc and len(other) > len(loc) for other, _ in errors)
        if loc in seen or (deeper and err["type"] not in ("missing", "extra_forbidden")):
            continue
        seen.add(loc)
        problems.append(_problem(err, loc, source))
    return problems


def _data_path(data: Any, loc: tuple) -> tuple:
    """The parts of ``loc`` that name keys or indexes present in ``data``."""
    path = []
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            continue
        path.append(part)
    return tuple(path)


def _problem(err: dict, loc: tuple, source: SourceMap) -> Problem:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        allowed = _fields_at(loc[:-1])
        hint = f" (expected one of: {', '.join(allowed)})" if allowed else ""
        return source.problem(loc, f"unknown key '{loc[-1]}'{did_you_mean(loc[-1], allowed)}{hint}", key=True)
    if kind == "missing":
        return source.problem(loc[:-1], f"missing required key '{loc[-1]}'")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    elif msg.startswith("Input should be "):
        msg = "expected " + msg[len("Input should be "):] + f", got {_brief(err.get('input'))}"
    elif msg.startswith("String should match pattern"):
        msg = ("expected a name of letters, digits, '_' and '-' starting with a letter or '_', "
               f"got {_brief(err.get('input'))}")
    return source.problem(loc, msg, key=kind == "string_pattern_mismatch" and loc[-1] == err.get("input"))


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _fields_at(loc: tuple) -> list[str]:
    """The keys allowed at ``loc``, found by walking the models' annotations."""
    node: Any = Pipeline
    for part in loc:
        node = _unwrap(node)
        if isinstance(node, type) and issubclass(node, BaseModel):
            fields = {f.alias or n: f for n, f in node.model_fields.items()}
            if part not in fields:
                return []
            node = fields[part].annotation
        elif get_origin(node) is dict:
            node = get_args(node)[1]
        elif get_origin(node) is list:
            node = get_args(node)[0]
        else:
            return []
    node = _unwrap(node)
    if isinstance(node, type) and issubclass(node, BaseModel):
        return [f.alias or n for n, f in node.model_fields.items()]
    return []


def _unwrap(tp: Any) -> Any:
    """The model class inside ``X | None`` or ``Annotated[X, ...]``, else ``tp``."""
    for arg in get_args(tp) if get_origin(tp) is not dict and get_origin(tp) is not list else ():
        inner = _unwrap(arg)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return tp


def _check_references(spec: Pipeline, source: SourceMap) -> None:
    """Every ${...}, ``env`` and ``needs`` name points at something that exists."""
    problems: list[Problem] = []
    for name, step in spec.steps.items():
        base = ("steps", name)
        for field in REF_FIELDS:
            problems += _check_field_refs(spec, name, step, field, base + (field,), source)
        if step.when is not None:
            try:
                parse_condition(step.when)
            except (ConditionError, RefSyntaxError) as exc:
                problems.append(source.problem(base + ("when",), str(exc)))
        if step.env is not None and step.env not in spec.environments:
            known = list(spec.environments)
            problems.append(source.problem(base + ("env",), f"unknown environment '{step.env}'"
                                           f"{did_you_mean(step.env, known)}"
                                           + (f" (declared: {', '.join(known)})" if known else " (none declared)")))
        for i, need in enumerate(step.needs):
            if need not in spec.steps or need == name:
                what = "a step cannot need itself" if need == name else f"unknown step '{need}'{did_you_mean(need, spec.steps)}"
                problems.append(source.problem(base + ("needs", i), what))
    if problems:
        raise SpecError(problems)


def _check_field_refs(spec: Pipeline, name: str, step: Step, field: str, path: tuple, source: SourceMap) -> list[Problem]:
    value = getattr(step, field)
    value = value.model_dump() if isinstance(value, BaseModel) else value  # a project: step's mapping
    problems = []
    try:
        refs = list(refs_in(value))
    except RefSyntaxError as exc:
        return [source.problem(path, str(exc))]
    for ref in refs:
        if ref.namespace == "params" and ref.name not in spec.params:
            problems.append(source.problem(path, f"unknown param '{ref.name}' in '${{{ref.text}}}'"
                                           f"{did_you_mean(ref.name, spec.params)}"))
        elif ref.namespace == "matrix" and (field == "matrix" or ref.name not in (step.matrix or {})):
            keys = list(step.matrix or {})
            why = "a matrix value cannot refer to the matrix" if field == "matrix" else (
                f"unknown matrix key '{ref.name}'{did_you_mean(ref.name, keys)}" if keys else
                f"'${{{ref.text}}}' but step '{name}' has no matrix")
            problems.append(source.problem(path, why))
        elif ref.namespace == "steps":
            problems += _check_step_ref(spec, name, field, ref, path, source)
    return problems


def _check_step_ref(spec: Pipeline, name: str, field: str, ref, path: tuple, source: SourceMap) -> list[Problem]:
    target = ref.step.split("[", 1)[0]
    if field not in RUNTIME_FIELDS:
        return [source.problem(path, f"'${{{ref.text}}}' can only be used in run, env_vars or when")]
    if target not in spec.steps:
        return [source.problem(path, f"unknown step '{target}' in '${{{ref.text}}}'{did_you_mean(target, spec.steps)}")]
    if target == name:
        return [source.problem(path, f"step '{name}' cannot refer to its own metrics")]
    if spec.steps[target].metrics is None:
        return [source.problem(path, f"step '{target}' declares no metrics file, so '${{{ref.text}}}' has no value")]
    return []


def apply_overrides(defaults: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Defaults with ``-P key=value`` applied, each value typed like the key's default.

    Raises:
        SpecError: naming the bad ``-P`` and what type it should have.
    """
    params = dict(defaults)
    problems = []
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        where = Problem("", "command line", field=f"-P {item}")
        if not sep:
            where.message = "expected -P key=value"
        elif key not in defaults:
            known = ", ".join(defaults) or "none"
            where.message = f"unknown param '{key}'{did_you_mean(key, defaults)} (declared: {known})"
        else:
            try:
                params[key] = coerce(text, defaults[key])
                continue
            except ValueError as exc:
                where.message = str(exc)
        problems.append(where)
    if problems:
        raise SpecError(problems)
    return params


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def coerce(text: str, default: Any) -> Any:
    """Parse ``text`` as the type of ``default`` (bool, int, float, str or list)."""
    if isinstance(default, bool):
        low = text.strip().lower()
        if low in _TRUE | _FALSE:
            return low in _TRUE
        raise ValueError(f"expected true or false (the default is {str(default).lower()}), got {text!r}")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected an integer (the default is {default}), got {text!r}") from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expected a number (the default is {default}), got {text!r}") from None
    if isinstance(default, list):
        import yaml

        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = None
        if not isinstance(value, list):
            raise ValueError(f"expected a list such as [1, 2] (the default is {default}), got {text!r}")
        return value
    return text
