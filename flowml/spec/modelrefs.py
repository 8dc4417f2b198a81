"""How registered models, aliases, ``models:/`` URIs and deployments are named: pure rules
with no store behind them.

They live at the bottom of the layers so that loading a pipeline can check the literal
values of its ``register:`` and ``deploy:`` blocks (and point at their lines) before anything
runs; :mod:`flowml.registry` applies the same rules to every call (its ``validation`` and
``uris`` modules re-export them).

URI forms, as MLflow reads them: ``models:/<name>/<version>``, ``models:/<name>@<alias>``,
``models:/<name>/latest`` (the newest version), ``models:/<name>/<stage>`` (the newest
version in that stage), and ``models:/<model_id>``, which names a logged model rather than a
registry entry.
"""

from __future__ import annotations

import posixpath
import re
import urllib.parse
from typing import NamedTuple

from flowml.errors import TrackingError

MAX_NAME = 256
MAX_ALIAS = 255
DEPLOYMENT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"  # a folder and a container name too
FORMS = ("models:/<name>/<version>, models:/<name>@<alias>, models:/<name>/latest, models:/<name>/<stage> "
         "or models:/<model_id>")
_ALIAS = re.compile(r"^[\w\-]+$")
_VERSION_ALIAS = re.compile(r"^[vV]\d+$")  # reserved: it reads as a version number


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


def deployment_name(name: object) -> str:
    """A deployment's name, which also names its folder and container."""
    if not isinstance(name, str) or not re.match(DEPLOYMENT_NAME, name):
        raise TrackingError(f"'{name}' cannot name a deployment: use letters, digits, '_', '.' and '-' "
                            "(at most 63, starting with a letter or digit)")
    return name


class ModelUri(NamedTuple):
    """A registry URI's parts; version, alias and stage all None means the newest version."""

    name: str
    version: int | None = None
    alias: str | None = None
    stage: str | None = None


def parse_model_uri(uri: str) -> ModelUri | None:
    """The parts of a registry URI, or None for ``models:/<model_id>`` (a bare id, without
    ``/`` or ``@``), which callers treat as a logged model id. Anything else is bad input."""
    parsed = urllib.parse.urlparse(uri, allow_fragments=False) if isinstance(uri, str) else None
    if parsed is None or parsed.scheme != "models":
        raise TrackingError(f"'{uri}' is not a model URI: use {FORMS}")
    if parsed.netloc:
        raise TrackingError(f"invalid model URI '{uri}': another registry (models://{parsed.netloc}/...) "
                            f"is not supported; use {FORMS}")
    parts = parsed.path[1:].split("/") if parsed.path.startswith("/") else []
    if not parts or len(parts) > 2 or not parts[0].strip() or (len(parts) == 2 and not parts[1].strip()):
        raise TrackingError(f"invalid model URI '{uri}': use {FORMS}")
    if len(parts) == 2:
        name, suffix = parts
        if suffix.isdigit():
            return ModelUri(name, version=int(suffix))
        if suffix.lower() == "latest":
            return ModelUri(name)
        return ModelUri(name, stage=suffix)
    if "@" in parts[0]:
        name, alias = parts[0].rsplit("@", 1)
        if not name.strip() or not alias.strip():
            raise TrackingError(f"invalid model URI '{uri}': expected models:/<name>@<alias>")
        return ModelUri(name, alias=alias)
    return None
