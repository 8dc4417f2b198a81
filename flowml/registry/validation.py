"""Checks on registry names, aliases, stages, versions, tags and lineage, with MLflow's rules,
so that flowml refuses first, naming what is wrong, the names MLflow's client or server would
refuse (the naming rules themselves are :mod:`flowml.spec.modelrefs`'s, which pipeline loading
applies too). A source is only checked for its shape here (no ``..`` parts, no NUL): which schemes
and folders a server accepts is :func:`flowml.server.security.validate_model_source`'s rule."""

from __future__ import annotations

import re
import urllib.parse

from flowml.errors import TrackingError
from flowml.registry.entities import Lineage, Stage
from flowml.spec.modelrefs import MAX_ALIAS, MAX_NAME, alias, model_name, new_alias  # noqa: F401 (re-exported)
from flowml.tracking import validation as tracking_checks

MAX_TAG_VALUE = 100_000  # MLflow's limit for registry tags (runs have 8,000)
MAX_SOURCE = 4000
_CANONICAL_STAGES = {s.lower(): s for s in Stage.ALL}
LINEAGE_FIELDS = tuple(Lineage.__dataclass_fields__)


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
