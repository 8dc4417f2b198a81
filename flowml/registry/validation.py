"""Checks on registry names, aliases, stages, versions, tags and lineage, with MLflow's rules,
so that flowml refuses first, naming what is wrong, the names MLflow's client or server would
refuse. A source is only checked for its shape here (no ``..`` parts, no NUL): which schemes
and folders a server accepts is :func:`flowml.server.security.validate_model_source`'s rule."""

from __future__ import annotations

import posixpath
import re
import urllib.parse

from flowml.errors import TrackingError
from flowml.registry.entities import Lineage, Stage
from flowml.tracking import validation as tracking_checks

MAX_NAME = 256
MAX_ALIAS = 255
MAX_TAG_VALUE = 100_000  # MLflow's limit for registry tags (runs have 8,000)
MAX_SOURCE = 4000
_ALIAS = re.compile(r"^[\w\-]+$")
_VERSION_ALIAS = re.compile(r"^[vV]\d+$")  # reserved: it reads as a version number
_CANONICAL_STAGES = {s.lower(): s for s in Stage.ALL}
LINEAGE_FIELDS = tuple(Lineage.__dataclass_fields__)


def model_name(name: object, what: str = "registered model name") -> str:
    """A registered model's name: non-blank, no ``/`` or ``:`` (they separate the parts of a
    ``models:/`` URI), not a path with ``.``/``..`` parts, at most 256 characters."""
    if not isinstance(name, str) or not name.strip():
        raise TrackingError(f"{what} must be a non-empty string, got {name!r}")
    if "/" in name or ":" in name:
        raise TrackingError(f"invalid {what} '{name}': it cannot contain '/' or ':'")
    if name in (".", "..") or posixpath.normpath(name) != name:
        raise TrackingError(f"invalid {what} '{name}': it cannot be '.' or '..'")
    if len(name) > MAX_NAME:
        raise TrackingError(f"{what} '{name[:40]}...' is {len(name)} characters long; the limit is {MAX_NAME}")
    return name


def alias(name: object) -> str:
    """An alias name: letters, digits, ``_`` and ``-``, at most 255 characters."""
    if not isinstance(name, str) or not name:
        raise TrackingError(f"an alias must be a non-empty string, got {name!r}")
    if not _ALIAS.match(name):
        raise TrackingError(f"invalid alias '{name}': use only letters, digits, _ and -")
    if len(name) > MAX_ALIAS:
        raise TrackingError(f"alias '{name[:40]}...' is {len(name)} characters long; the limit is {MAX_ALIAS}")
    return name


def new_alias(name: object) -> str:
    """An alias that may be set: also not ``latest`` (any case) nor ``v<digits>``, which
    ``models:/`` URIs read as the newest version and as a version number."""
    alias(name)
    if name.lower() == "latest":
        raise TrackingError("the alias 'latest' (in any case) is reserved for the newest version")
    if _VERSION_ALIAS.match(name):
        raise TrackingError(f"the alias '{name}' is reserved: v<number> reads as a version number")
    return name


def version(value: object) -> int:
    """A version number given as an int or a string of digits."""
    if isinstance(value, bool):
        raise TrackingError(f"a model version must be a whole number, got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value)
    else:
        raise TrackingError(f"a model version must be a whole number, got {value!r}")
    if not 1 <= number < 2 ** 31:
        raise TrackingError(f"model version {number} is out of range (versions count from 1)")
    return number


def stage(value: object) -> str:
    """MLflow's spelling of a stage given in any case (``production`` -> ``Production``)."""
    canonical = _CANONICAL_STAGES.get(value.lower()) if isinstance(value, str) else None
    if canonical is None:
        raise TrackingError(f"invalid stage {value!r}: use one of {', '.join(Stage.ALL)}")
    return canonical


def tag(key: object, value: object) -> tuple[str, str]:
    """A registry tag: a key as run tags have them, a value of at most 100,000 characters."""
    tracking_checks.check_key("tag", key)
    if value is None:
        raise TrackingError(f"tag '{key}' needs a value")
    text = str(value)
    if len(text) > MAX_TAG_VALUE:
        raise TrackingError(f"tag '{key}' value is {len(text)} characters long; the limit is {MAX_TAG_VALUE}")
    return key, text


def tags(values: dict | None) -> dict[str, str]:
    return dict(tag(k, v) for k, v in (values or {}).items())


def source(uri: object) -> str:
    """A version's source: a non-empty URI or path without ``..`` parts or NUL (even
    percent-encoded). Any scheme passes: a local store records what its own user gives it."""
    if not isinstance(uri, str) or not uri.strip():
        raise TrackingError(f"a model version source must be a non-empty string, got {uri!r}")
    if len(uri) > MAX_SOURCE:
        raise TrackingError(f"model version source is {len(uri)} characters long; the limit is {MAX_SOURCE}")
    decoded, previous = uri, None
    while decoded != previous:
        previous, decoded = decoded, urllib.parse.unquote(decoded)
    if "\x00" in decoded or ".." in re.split(r"[/\\]", decoded):
        raise TrackingError(f"invalid model version source '{uri}': it cannot contain '..' parts or NUL")
    return uri


_ID_LIMITS = {"run_id": 32, "model_id": 64, "pipeline_run_id": 32, "cache_key": 64, "content_digest": 64}


def ids(**values: object) -> None:
    """Run ids, model ids, cache keys and digests: strings that fit their columns."""
    for what, value in values.items():
        limit = _ID_LIMITS[what]
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            raise TrackingError(f"{what} must be a string of at most {limit} characters, got {value!r}")


def lineage(value: object) -> Lineage:
    """A version's lineage from a :class:`Lineage` or a dict of its fields (unknown fields and
    mistyped values are bad input); always a new object, safe to fill in."""
    if value is None:
        return Lineage()
    if isinstance(value, Lineage):
        value = value.to_dict()
    if not isinstance(value, dict):
        raise TrackingError(f"lineage must be an object with the fields {', '.join(LINEAGE_FIELDS)}, "
                            f"got {type(value).__name__}")
    unknown = sorted(set(value) - set(LINEAGE_FIELDS))
    if unknown:
        raise TrackingError(f"unknown lineage field(s) {', '.join(map(str, unknown))}; known: {', '.join(LINEAGE_FIELDS)}")
    digests = value.get("input_digests") or {}
    if not isinstance(digests, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in digests.items()):
        raise TrackingError(f"lineage input_digests must map paths to digests (strings), got {digests!r}")
    step = value.get("step")
    if step is not None and not isinstance(step, str):
        raise TrackingError(f"lineage step must be a string, got {step!r}")
    ids(run_id=value.get("run_id"), pipeline_run_id=value.get("pipeline_run_id"), cache_key=value.get("cache_key"),
        content_digest=value.get("content_digest"))
    return Lineage.from_dict({**value, "input_digests": dict(digests)})
