"""Plugins: the classes behind a kind name (an executor, an environment, a deployment target,
an image builder), built in or provided by another package through an entry-point group, so the
core never imports a plugin by name."""

from __future__ import annotations

import importlib


def find_plugin(group: str, kind: str, builtin: dict[str, str] | None = None):
    """The class registered as ``kind``: ``builtin`` maps kinds to ``module:attribute``; any other
    kind comes from the entry points of ``group``. None when no installed package provides it."""
    target = (builtin or {}).get(kind)
    if target is not None:
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)
    from importlib.metadata import entry_points  # only for plugins: it costs ~10 ms to import

    found = [ep for ep in entry_points(group=group) if ep.name == kind]
    return found[0].load() if found else None
