"""``models:/`` URIs: which registered model version one names, and finding it in a store.

The forms, as MLflow reads them: ``models:/<name>/<version>``, ``models:/<name>@<alias>``,
``models:/<name>/latest`` (the newest version), ``models:/<name>/<stage>`` (the newest
version in that stage), and ``models:/<model_id>``, which names a logged model rather than a
registry entry.
"""

from __future__ import annotations

import urllib.parse
from typing import NamedTuple

from flowml.errors import TrackingError

NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
FORMS = ("models:/<name>/<version>, models:/<name>@<alias>, models:/<name>/latest, models:/<name>/<stage> "
         "or models:/<model_id>")


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


def resolve(store, uri: str):
    """The :class:`~flowml.registry.entities.ModelVersion` that ``uri`` names in ``store`` (a
    registry store); TrackingError when there is none, or when ``uri`` names a logged model."""
    from flowml.registry import validation as check

    parts = parse_model_uri(uri)
    if parts is None:
        raise TrackingError(f"'{uri}' names a logged model (models:/<model_id>), not a registered model version")
    if parts.version is not None:
        return store.get_model_version(parts.name, parts.version)
    if parts.alias is not None:
        return store.get_model_version_by_alias(parts.name, parts.alias)
    stages = [check.stage(parts.stage)] if parts.stage else None
    found = store.get_latest_versions(parts.name, stages)
    if not found:
        where = f" in stage {stages[0]}" if stages else ""
        raise TrackingError(f"registered model '{parts.name}' has no version{where} ({uri})", NOT_FOUND)
    return max(found, key=lambda v: v.version)
