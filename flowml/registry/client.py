"""``RegistryClient``: the model registry's Python API, named as MLflow's ``MlflowClient``
names it, plus :meth:`RegistryClient.register` (what a pipeline's ``register:`` step and
``log_model(registered_model_name=...)`` call) and :meth:`RegistryClient.resolve` (what
loading ``models:/wine@production`` calls).

A thin layer over a registry store (:func:`flowml.registry.stores.get_registry_store`),
found from the tracking URI exactly as :class:`flowml.tracking.client.FlowmlClient` finds
its store.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Sequence

from flowml.errors import TrackingError
from flowml.registry import search as grammars
from flowml.registry import validation as check
from flowml.registry.entities import Lineage, ModelVersion, RegisteredModel
from flowml.registry.stores import get_registry_store
from flowml.registry.uris import resolve
from flowml.tracking.client import PagedList, current_user
from flowml.tracking.stores import resolve_uri

EXISTS = "RESOURCE_ALREADY_EXISTS"


def directory_digest(path: str) -> str:
    """The digest of a model directory's (or file's) content, as the cache computes it for a
    step's outputs, so a register step can pass on the digest its cache already knows."""
    from flowml.cache.hashing import StatMemo, content_of

    path = os.path.abspath(path)
    content = content_of(os.path.dirname(path), os.path.basename(path), StatMemo())
    if content is None:
        raise TrackingError(f"no model at {path}", "RESOURCE_DOES_NOT_EXIST")
    return content.digest


class RegistryClient:
    """``root``: the project whose ``.flowml/`` holds the default store (default: found from
    the working folder)."""

    def __init__(self, tracking_uri: str | None = None, root: str | None = None) -> None:
        if tracking_uri is None:  # as FlowmlClient: the URI set_tracking_uri chose, if it was called
            tracking_uri = getattr(sys.modules.get("flowml.tracking.fluent"), "_uri", None)
        self.tracking_uri = resolve_uri(tracking_uri, root)
        self.store = get_registry_store(self.tracking_uri, root)

    # registered models -----------------------------------------------------------------

    def create_registered_model(self, name: str, tags: dict[str, Any] | None = None,
                                description: str | None = None) -> RegisteredModel:
        return self.store.create_registered_model(name, tags, description)

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self.store.get_registered_model(name)

    def search_registered_models(self, filter_string: str = "", max_results: int = grammars.DEFAULT_MODELS,
                                 order_by: Sequence[str] | None = None, page_token: str | None = None) -> PagedList:
        """One page of registered models (``name LIKE 'wine%'``, ``tags.team = 'fraud'``), by name."""
        return PagedList(*self.store.search_registered_models(filter_string, max_results, order_by, page_token))

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        return self.store.rename_registered_model(name, new_name)

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        return self.store.update_registered_model(name, description)

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model with all its versions."""
        self.store.delete_registered_model(name)

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[ModelVersion]:
        return self.store.get_latest_versions(name, stages)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        self.store.set_registered_model_tag(name, key, value)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self.store.delete_registered_model_tag(name, key)

    # versions --------------------------------------------------------------------------

    def register(self, source: str, name: str, *, run_id: str | None = None, model_id: str | None = None,
                 tags: dict[str, Any] | None = None, description: str | None = None,
                 lineage: dict | Lineage | None = None, content_digest: str | None = None,
                 alias: str | None = None) -> ModelVersion:
        """Register the model at ``source`` as a version of ``name``, creating ``name`` if it is
        new, and point ``alias`` at the version (moving it) when given.

        Idempotent by content: when the content digest (``content_digest``, the lineage's, or
        for a local directory the digest of its files) is that of a live version of ``name``,
        that version is returned and no new one is made. ``lineage`` is a :class:`Lineage` or
        a dict of its fields (``step``, ``run_id``, ``pipeline_run_id``, ``cache_key``,
        ``input_digests``, ``content_digest``). A local path is stored as an absolute path.
        """
        check.model_name(name)
        if alias is not None:
            check.new_alias(alias)
        lineage = check.lineage(lineage)
        if _is_local(source):
            source = os.path.abspath(source)
            lineage.content_digest = content_digest or lineage.content_digest or directory_digest(source)
        elif content_digest:
            lineage.content_digest = content_digest
        try:
            self.store.create_registered_model(name)
        except TrackingError as exc:
            if exc.error_code != EXISTS:
                raise
        version = self.store.create_model_version(name, source, run_id, tags, None, description, model_id, lineage,
                                                  current_user())
        if alias is not None and alias not in version.aliases:
            self.store.set_registered_model_alias(name, alias, version.version)
            version = self.store.get_model_version(name, version.version)
        return version

    def create_model_version(self, name: str, source: str, run_id: str | None = None,
                             tags: dict[str, Any] | None = None, run_link: str | None = None,
                             description: str | None = None, model_id: str | None = None) -> ModelVersion:
        """MLflow's call: a new version of an existing registered model, always a new number."""
        return self.store.create_model_version(name, source, run_id, tags, run_link, description, model_id,
                                               None, current_user())

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        return self.store.get_model_version(name, version)

    def search_model_versions(self, filter_string: str = "", max_results: int = grammars.DEFAULT_VERSIONS,
                              order_by: Sequence[str] | None = None, page_token: str | None = None) -> PagedList:
        """One page of versions (``name = 'wine'``, ``run_id = '...'``, ``tags.x = 'y'``),
        the most recently changed first."""
        return PagedList(*self.store.search_model_versions(filter_string, max_results, order_by, page_token))

    def update_model_version(self, name: str, version: int | str, description: str | None) -> ModelVersion:
        return self.store.update_model_version(name, version, description)

    def delete_model_version(self, name: str, version: int | str) -> None:
        self.store.delete_model_version(name, version)

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: Any) -> None:
        self.store.set_model_version_tag(name, version, key, value)

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        self.store.delete_model_version_tag(name, version, key)

    def transition_model_version_stage(self, name: str, version: int | str, stage: str,
                                       archive_existing_versions: bool = False) -> ModelVersion:
        return self.store.transition_model_version_stage(name, version, stage, archive_existing_versions)

    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        return self.store.get_model_version_download_uri(name, version)

    # aliases and URIs ------------------------------------------------------------------

    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        self.store.set_registered_model_alias(name, alias, version)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self.store.delete_registered_model_alias(name, alias)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self.store.get_model_version_by_alias(name, alias)

    def resolve(self, model_uri: str) -> ModelVersion:
        """The version a ``models:/`` URI names: ``models:/wine/3``, ``models:/wine@production``,
        ``models:/wine/latest``, ``models:/wine/Production`` (a stage)."""
        return resolve(self.store, model_uri)


def _is_local(source: str) -> bool:
    """A plain path rather than a URI (``runs:/``, ``models:/``, ``s3://``, ``mlflow-artifacts:/``)."""
    return isinstance(source, str) and ":" not in source.split("/", 1)[0]
