"""Registry records shaped like MLflow's: ``RegisteredModel`` and ``ModelVersion``, plus the
``Lineage`` flowml records for each version.

``to_dict`` gives the JSON of MLflow's ``model_registry.proto`` as its server sends it: tags
as ``[{"key", "value"}]``, a registered model's aliases as ``[{"alias", "version"}]``, a
version number as a string, timestamps as numbers, the status as the enum's name. MLflow's
client ignores fields it does not know, so a version's lineage travels beside them as
``flowml_lineage``. ``from_dict`` reads that JSON back (the REST store).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


class ModelVersionStatus:
    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    FAILED_REGISTRATION = "FAILED_REGISTRATION"
    READY = "READY"


class Stage:
    """MLflow's deprecated model version stages, kept for its clients; ``DELETED`` marks a
    deleted version internally (its number is never given out again), as MLflow's store does."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"
    ALL = (NONE, STAGING, PRODUCTION, ARCHIVED)
    ACTIVE = (STAGING, PRODUCTION)  # the stages archive_existing_versions applies to
    DELETED = "Deleted_Internal"


LINEAGE_WIRE = "flowml_lineage"


@dataclass(slots=True)
class Lineage:
    """Where a version came from: the pipeline step that produced the model, its run, the
    pipeline's (parent) run, the step's cache key, the digests of the step's inputs (path ->
    digest), and the digest of the model directory's content, which makes registering the
    same content twice return the same version."""

    step: str | None = None
    run_id: str | None = None
    pipeline_run_id: str | None = None
    cache_key: str | None = None
    input_digests: dict[str, str] = field(default_factory=dict)
    content_digest: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Lineage":
        data = data or {}
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known and v is not None})

    def to_dict(self) -> dict[str, Any]:
        """The fields that are set (an empty lineage is ``{}``)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}

    def __bool__(self) -> bool:
        return bool(self.to_dict())


@dataclass(slots=True)
class ModelVersion:
    name: str
    version: int
    creation_timestamp: int
    last_updated_timestamp: int
    current_stage: str = Stage.NONE
    source: str = ""
    run_id: str | None = None
    status: str = ModelVersionStatus.READY
    description: str | None = None
    user_id: str | None = None
    status_message: str | None = None
    run_link: str | None = None
    model_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    lineage: Lineage = field(default_factory=Lineage)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "version": str(self.version),
                               "creation_timestamp": self.creation_timestamp,
                               "last_updated_timestamp": self.last_updated_timestamp,
                               "current_stage": self.current_stage, "source": self.source, "status": self.status}
        for key in ("description", "user_id", "run_id", "status_message", "run_link", "model_id"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out["tags"] = tag_list(self.tags)
        out["aliases"] = list(self.aliases)
        if self.lineage:
            out[LINEAGE_WIRE] = self.lineage.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelVersion":
        return cls(d["name"], int(d["version"]), d.get("creation_timestamp", 0), d.get("last_updated_timestamp", 0),
                   d.get("current_stage", Stage.NONE), d.get("source", ""), d.get("run_id") or None,
                   d.get("status", ModelVersionStatus.READY), d.get("description"), d.get("user_id"),
                   d.get("status_message"), d.get("run_link"), d.get("model_id") or None,
                   _pair_dict(d.get("tags")), list(d.get("aliases") or ()), Lineage.from_dict(d.get(LINEAGE_WIRE)))


@dataclass(slots=True)
class RegisteredModel:
    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)  # alias -> version
    latest_versions: list[ModelVersion] = field(default_factory=list)  # the newest of each stage

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "creation_timestamp": self.creation_timestamp,
                               "last_updated_timestamp": self.last_updated_timestamp}
        if self.description is not None:
            out["description"] = self.description
        out["latest_versions"] = [v.to_dict() for v in self.latest_versions]
        out["tags"] = tag_list(self.tags)
        out["aliases"] = [{"alias": a, "version": str(v)} for a, v in self.aliases.items()]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RegisteredModel":
        return cls(d["name"], d.get("creation_timestamp", 0), d.get("last_updated_timestamp", 0), d.get("description"),
                   _pair_dict(d.get("tags")), {a["alias"]: int(a["version"]) for a in d.get("aliases") or ()},
                   [ModelVersion.from_dict(v) for v in d.get("latest_versions") or ()])


def tag_list(values: dict[str, str]) -> list[dict[str, str]]:
    """Tags as MLflow's JSON lists them: ``[{"key", "value"}]``."""
    return [{"key": k, "value": v} for k, v in values.items()]


def _pair_dict(items: list | None) -> dict[str, str]:
    return {item["key"]: item.get("value", "") for item in items or ()}
