"""``${...}`` references in pipeline values, substituted without ever evaluating code.

Three namespaces exist: ``${params.x}``, ``${matrix.x}`` and ``${steps.s.metrics.m}``.
A reference without a dot, such as ``${HOME}``, is left alone for the shell, and
``$${`` writes a literal ``${``. Formatting is YAML-like (``true``, ``0.1``) so that a
value reads the same in a command as in the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator

NAMESPACES = ("params", "matrix", "steps")
_REF = re.compile(r"\$(\$?)\{([^{}]*)\}")
_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
_STEPS_REF = re.compile(rf"^steps\.({_NAME}(?:\[[^\]]*\])?)\.metrics\.(.+)$")
_SIMPLE_REF = re.compile(rf"^(params|matrix)\.({_NAME})$")


@dataclass(frozen=True)
class Ref:
    """One parsed reference: ``namespace`` plus its name (and the step for ``steps``)."""

    namespace: str
    name: str
    step: str | None = None
    text: str = ""


class RefSyntaxError(ValueError):
    """A ``${...}`` whose inside is not a known reference form."""


def parse_ref(inner: str) -> Ref | None:
    """Parse the inside of ``${...}``; None for a shell variable such as ``HOME``.

    Raises:
        RefSyntaxError: for a dotted reference that is not one of the three forms.
    """
    inner = inner.strip()
    if "." not in inner:
        return None
    m = _SIMPLE_REF.match(inner)
    if m:
        return Ref(m.group(1), m.group(2), text=inner)
    m = _STEPS_REF.match(inner)
    if m:
        return Ref("steps", m.group(2), step=m.group(1), text=inner)
    namespace = inner.split(".", 1)[0]
    if namespace not in NAMESPACES:
        from flowml.errors import did_you_mean

        raise RefSyntaxError(
            f"unknown reference '${{{inner}}}': expected params.NAME, matrix.NAME or "
            f"steps.STEP.metrics.NAME{did_you_mean(namespace, NAMESPACES)}"
        )
    form = "steps.STEP.metrics.NAME" if namespace == "steps" else f"{namespace}.NAME"
    raise RefSyntaxError(f"malformed reference '${{{inner}}}': expected {form}")


def refs_in(value: Any) -> Iterator[Ref]:
    """Every reference in a string, or in the strings nested in lists and dicts."""
    if isinstance(value, str):
        for m in _REF.finditer(value):
            if m.group(1):
                continue
            ref = parse_ref(m.group(2))
            if ref is not None:
                yield ref
    elif isinstance(value, list):
        for item in value:
            yield from refs_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from refs_in(item)


def format_value(value: Any) -> str:
    """How a value is written into a string: YAML-like scalars, JSON for lists."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


Resolver = Callable[[Ref], Any]


def substitute(value: Any, resolve: Resolver, *, keep: tuple[str, ...] = ()) -> Any:
    """Replace references in ``value`` using ``resolve``.

    A string that is exactly one reference takes the referenced value's type; any other
    string gets formatted values spliced in. References whose namespace is in ``keep``
    are left as written (``steps`` references wait for their upstream to finish); in that
    first pass, a spliced value's own ``${`` is escaped, so that the final pass writes it
    literally instead of reading it as a reference (values are substituted exactly once).
    """
    if isinstance(value, list):
        return [substitute(v, resolve, keep=keep) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, resolve, keep=keep) for k, v in value.items()}
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = _REF.fullmatch(value)
    if whole and not whole.group(1):
        ref = parse_ref(whole.group(2))
        if ref is not None and ref.namespace not in keep:
            found = resolve(ref)
            return _escape(found) if keep else found

    def splice(m: re.Match) -> str:
        if m.group(1):
            return m.group(0) if keep else "${" + m.group(2) + "}"
        ref = parse_ref(m.group(2))
        if ref is None or ref.namespace in keep:
            return m.group(0)
        text = format_value(resolve(ref))
        return _escape(text) if keep else text

    return _REF.sub(splice, value)


def _escape(value: Any) -> Any:
    """``value`` (a string, or strings inside a list) with ``${`` written as ``$${``."""
    if isinstance(value, str):
        return value.replace("${", "$${")
    if isinstance(value, list):
        return [_escape(v) for v in value]
    return value
