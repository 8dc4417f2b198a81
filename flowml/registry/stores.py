"""Which registry store a process talks to: the registry lives beside the tracking data, so
it follows the tracking URI (see :mod:`flowml.tracking.stores`). An SQL tracking store's
database holds the registry too (:class:`~flowml.registry.sql.SqlRegistryStore` on the same
engine); a tracking server serves it (:class:`~flowml.registry.rest.RestRegistryStore`)."""

from __future__ import annotations

import threading
import weakref

from flowml.tracking.stores import get_store

_registries: "weakref.WeakKeyDictionary[object, object]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def get_registry_store(uri: str | None = None, root: str | None = None):
    """The registry store for the tracking URI ``uri`` of the project at ``root`` (resolved
    as :func:`flowml.tracking.stores.get_store` does), one per tracking store."""
    tracking = get_store(uri, root)
    with _lock:
        registry = _registries.get(tracking)
        if registry is None:
            registry = _registries[tracking] = _open(tracking)
        return registry


def _open(tracking):
    if getattr(tracking, "engine", None) is not None:
        from flowml.registry.sql import SqlRegistryStore

        return SqlRegistryStore(tracking.engine)
    from flowml.registry.rest import RestRegistryStore

    return RestRegistryStore(tracking)
