"""``models:/`` URIs: which registered model version one names, and finding it in a store.
The forms and their parsing are :mod:`flowml.spec.modelrefs`'s (pipeline loading checks them
too); this module resolves them.
"""

from __future__ import annotations

from flowml.errors import TrackingError
from flowml.spec.modelrefs import FORMS, ModelUri, parse_model_uri  # noqa: F401 (re-exported)

NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"


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
