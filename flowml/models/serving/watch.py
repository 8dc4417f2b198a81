"""Which model version a URI names now, and its files on this machine.

``models:/name@alias`` (and ``models:/name/latest``, ``models:/name/<stage>``) can name another
version tomorrow: the server re-resolves them on SIGHUP and every ``--watch`` seconds, and rolls
over when the answer changes. Other URIs name one model for good; SIGHUP reloads them anyway,
so a model directory rewritten in place can be picked up.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from flowml.models.serving.served import ModelInfo


class Resolver:
    """What version a URI names now; keeps one registry client for the server's life."""

    def __init__(self, uri: str, tracking_uri: str | None = None) -> None:
        from flowml.registry.uris import parse_model_uri

        self.uri = uri
        self.tracking_uri = tracking_uri
        self.parts = parse_model_uri(uri) if uri.startswith("models:/") else None
        self._client = None

    @property
    def movable(self) -> bool:
        """Whether the URI can name a different version later (an alias, ``latest`` or a stage)."""
        return self.parts is not None and self.parts.version is None

    def resolve(self) -> ModelInfo:
        """The version now (through the registry for ``models:/name...`` URIs)."""
        if self.parts is None:
            return ModelInfo(self.uri, None, self.uri)
        if self._client is None:
            from flowml.registry import RegistryClient

            self._client = RegistryClient(tracking_uri=self.tracking_uri)
        version = self._client.resolve(self.uri)
        return ModelInfo(self.uri, str(version.version), f"models:/{self.parts.name}/{version.version}")


class Downloads:
    """Local copies of the versions served, in one temporary folder removed at the end. A model
    already on this machine is used where it is."""

    def __init__(self, tracking_uri: str | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.folder = tempfile.mkdtemp(prefix="flowml-serve-")
        self.count = 0

    def fetch(self, info: ModelInfo) -> str:
        from flowml.models.uri import download_model, is_remote, resolve_location

        remote = is_remote(resolve_location(info.source, self.tracking_uri))
        self.count += 1
        dst = os.path.join(self.folder, str(self.count)) if remote else None
        return download_model(info.source, dst=dst, tracking_uri=self.tracking_uri)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
