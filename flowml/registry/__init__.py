"""The model registry: registered models, numbered versions, aliases, tags, stages and lineage.

``RegistryClient`` is the API (:mod:`flowml.registry.client`); the registry lives in the
tracking store's database, or behind its server (:mod:`flowml.registry.stores`).
"""

from flowml.registry.client import RegistryClient, directory_digest
from flowml.registry.entities import Lineage, ModelVersion, ModelVersionStatus, RegisteredModel, Stage
from flowml.registry.stores import get_registry_store
from flowml.registry.uris import ModelUri, parse_model_uri

__all__ = ["Lineage", "ModelUri", "ModelVersion", "ModelVersionStatus", "RegisteredModel", "RegistryClient", "Stage",
           "directory_digest", "get_registry_store", "parse_model_uri"]
