"""Which registry version a deployment's model URI names, in the project's tracking store.

The deployments record it (``flowml deployments status`` says what is served), the local
target waits for a reloaded server to report it, and the pipeline's ``deploy:`` step puts it
into its cache key, so the step reruns exactly when the alias it deploys has moved.
"""

from __future__ import annotations


def tracking_uri_of(root: str) -> str:
    """The tracking store of the project at ``root`` (``FLOWML_TRACKING_URI`` first)."""
    from flowml.tracking.stores import resolve_uri

    return resolve_uri(None, root)


def current_version(model_uri: str, root: str, tracking_uri: str | None = None) -> str | None:
    """The version ``model_uri`` names now (``"3"``), or None for a URI outside the registry
    (a folder, ``runs:/``, ``models:/<model_id>``).

    Raises:
        TrackingError: when the registry has no such model, version or alias.
    """
    if not model_uri.startswith("models:/"):
        return None
    from flowml.registry import RegistryClient
    from flowml.registry.uris import parse_model_uri

    if parse_model_uri(model_uri) is None:
        return None
    return str(RegistryClient(tracking_uri or tracking_uri_of(root), root).resolve(model_uri).version)


def movable(model_uri: str) -> bool:
    """Whether ``model_uri`` may name another version later (an alias, ``latest``, a stage)."""
    if not model_uri.startswith("models:/"):
        return False
    from flowml.registry.uris import parse_model_uri

    parts = parse_model_uri(model_uri)
    return parts is not None and parts.version is None
