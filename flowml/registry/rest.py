"""The model registry behind a tracking server (``FLOWML_TRACKING_URI=http://...``): MLflow's
registry routes, spoken through the tracking :class:`~flowml.tracking.rest.RestStore` of the
same server (its connections, retries, token and error mapping).

:class:`RestRegistryStore` has the public methods of
:class:`flowml.registry.sql.SqlRegistryStore`, with the same signatures, return types and
errors. It checks its input as the SQL store does, so bad input fails before the network.
Lineage travels as the ``flowml_lineage`` field of ``model-versions/create``, which a flowml
server stores and an MLflow server ignores.
"""

from __future__ import annotations

from typing import Sequence

from flowml.registry import search as grammars
from flowml.registry import validation as check
from flowml.registry.entities import LINEAGE_WIRE, Lineage, ModelVersion, RegisteredModel, tag_list


class RestRegistryStore:
    """Registered models and versions on the server ``tracking`` (a RestStore) talks to."""

    def __init__(self, tracking) -> None:
        self.tracking = tracking
        self.url = tracking.url

    def __repr__(self) -> str:
        return f"RestRegistryStore({self.url!r})"

    def _call(self, method: str, path: str, **fields) -> dict:
        """``fields`` as the query string of a GET, else as the JSON body; None fields are left out."""
        fields = {k: v for k, v in fields.items() if v is not None}
        if method == "GET":
            return self.tracking.request("GET", path, params=fields)
        return self.tracking.request(method, path, body=fields)

    # registered models -----------------------------------------------------------------

    def create_registered_model(self, name: str, tags: dict[str, str] | None = None,
                                description: str | None = None) -> RegisteredModel:
        reply = self._call("POST", "/registered-models/create", name=check.model_name(name),
                           tags=tag_list(check.tags(tags)), description=description)
        return RegisteredModel.from_dict(reply["registered_model"])

    def get_registered_model(self, name: str) -> RegisteredModel:
        reply = self._call("GET", "/registered-models/get", name=check.model_name(name))
        return RegisteredModel.from_dict(reply["registered_model"])

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        reply = self._call("POST", "/registered-models/rename", name=check.model_name(name),
                           new_name=check.model_name(new_name, "new name"))
        return RegisteredModel.from_dict(reply["registered_model"])

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        reply = self._call("PATCH", "/registered-models/update", name=check.model_name(name),
                           description=description)
        return RegisteredModel.from_dict(reply["registered_model"])

    def delete_registered_model(self, name: str) -> None:
        self._call("DELETE", "/registered-models/delete", name=check.model_name(name))

    def search_registered_models(self, filter_string: str = "", max_results: int = grammars.DEFAULT_MODELS,
                                 order_by: Sequence[str] | None = None,
                                 page_token: str | None = None) -> tuple[list[RegisteredModel], str | None]:
        reply = self._call("GET", "/registered-models/search", filter=filter_string or None,
                           max_results=int(max_results), order_by=list(order_by or []) or None,
                           page_token=page_token or None)
        return ([RegisteredModel.from_dict(m) for m in reply.get("registered_models", [])],
                reply.get("next_page_token") or None)

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[ModelVersion]:
        reply = self._call("POST", "/registered-models/get-latest-versions", name=check.model_name(name),
                           stages=[check.stage(s) for s in stages] if stages else None)
        return [ModelVersion.from_dict(v) for v in reply.get("model_versions", [])]

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        key, value = check.tag(key, value)
        self._call("POST", "/registered-models/set-tag", name=check.model_name(name), key=key, value=value)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self._call("DELETE", "/registered-models/delete-tag", name=check.model_name(name), key=key)

    # versions --------------------------------------------------------------------------

    def create_model_version(self, name: str, source: str, run_id: str | None = None,
                             tags: dict[str, str] | None = None, run_link: str | None = None,
                             description: str | None = None, model_id: str | None = None,
                             lineage: Lineage | None = None, user_id: str | None = None) -> ModelVersion:
        """See :meth:`SqlRegistryStore.create_model_version`. ``user_id`` is the server's to
        decide, so it is not sent (MLflow's request has no such field)."""
        lineage = check.lineage(lineage)
        check.ids(run_id=run_id, model_id=model_id)
        fields = {"name": check.model_name(name), "source": check.source(source), "run_id": run_id,
                  "tags": tag_list(check.tags(tags)), "run_link": run_link, "description": description,
                  "model_id": model_id}
        if lineage:
            fields[LINEAGE_WIRE] = lineage.to_dict()
        return ModelVersion.from_dict(self._call("POST", "/model-versions/create", **fields)["model_version"])

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        reply = self._call("GET", "/model-versions/get", name=check.model_name(name), version=_wire(version))
        return ModelVersion.from_dict(reply["model_version"])

    def update_model_version(self, name: str, version: int | str, description: str | None) -> ModelVersion:
        reply = self._call("PATCH", "/model-versions/update", name=check.model_name(name), version=_wire(version),
                           description=description)
        return ModelVersion.from_dict(reply["model_version"])

    def transition_model_version_stage(self, name: str, version: int | str, stage: str,
                                       archive_existing_versions: bool = False) -> ModelVersion:
        reply = self._call("POST", "/model-versions/transition-stage", name=check.model_name(name),
                           version=_wire(version), stage=check.stage(stage),
                           archive_existing_versions=bool(archive_existing_versions))
        return ModelVersion.from_dict(reply["model_version"])

    def delete_model_version(self, name: str, version: int | str) -> None:
        self._call("DELETE", "/model-versions/delete", name=check.model_name(name), version=_wire(version))

    def search_model_versions(self, filter_string: str = "", max_results: int = grammars.DEFAULT_VERSIONS,
                              order_by: Sequence[str] | None = None,
                              page_token: str | None = None) -> tuple[list[ModelVersion], str | None]:
        reply = self._call("GET", "/model-versions/search", filter=filter_string or None,
                           max_results=int(max_results), order_by=list(order_by or []) or None,
                           page_token=page_token or None)
        return ([ModelVersion.from_dict(v) for v in reply.get("model_versions", [])],
                reply.get("next_page_token") or None)

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: str) -> None:
        key, value = check.tag(key, value)
        self._call("POST", "/model-versions/set-tag", name=check.model_name(name), version=_wire(version),
                   key=key, value=value)

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        self._call("DELETE", "/model-versions/delete-tag", name=check.model_name(name), version=_wire(version),
                   key=key)

    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        reply = self._call("GET", "/model-versions/get-download-uri", name=check.model_name(name),
                           version=_wire(version))
        return reply["artifact_uri"]

    # aliases ---------------------------------------------------------------------------

    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        self._call("POST", "/registered-models/alias", name=check.model_name(name), alias=check.new_alias(alias),
                   version=_wire(version))

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self._call("DELETE", "/registered-models/alias", name=check.model_name(name), alias=check.alias(alias))

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        reply = self._call("GET", "/registered-models/alias", name=check.model_name(name), alias=check.alias(alias))
        return ModelVersion.from_dict(reply["model_version"])


def _wire(version: int | str) -> str:
    """A checked version number as MLflow's requests carry it: a string."""
    return str(check.version(version))
