"""MLflow's model registry routes (``model_registry.proto``), with its verbs: GET with
query-string parameters for reads, POST for writes, PATCH for updates, DELETE for deletes.
``mlflow.register_model``, ``log_model(registered_model_name=...)`` and ``MlflowClient``'s
registry calls go through them; flowml's own client adds a version's lineage to
``model-versions/create`` as ``flowml_lineage``.

A version's source is checked as MLflow's server checks it (:func:`validate_model_source`):
the server records no URL it would fetch nor a local path outside its artifacts. The
lineage's ``content_digest`` is the writer's word: registering is idempotent by it, so any
client allowed to write to the registry is trusted for it (the server does not rehash
uploaded models)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from flowml.errors import TrackingError
from flowml.registry import validation as check
from flowml.registry.entities import LINEAGE_WIRE
from flowml.registry.search import DEFAULT_MODELS, DEFAULT_VERSIONS
from flowml.server.protocol import Params
from flowml.server.routes import mlflow_route
from flowml.server.security import local_folder, validate_model_source

router = APIRouter()


def _route(path: str, *methods: str):
    return mlflow_route(router, path, *methods, store="registry")


def _version(p: Params) -> int:
    value = p.values.get("version")
    if value is None:
        raise TrackingError("missing value for required parameter 'version'")
    return check.version(value)


def _flag(p: Params, name: str) -> bool:
    """A boolean field; GET query strings carry it as ``true``/``false``."""
    value = p.values.get(name, False)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise TrackingError(f"invalid value {value!r} for parameter '{name}': expected true or false")
    return value


def _page(items: list, key: str, token: str | None) -> dict:
    reply: dict = {key: [i.to_dict() for i in items]}
    if token:
        reply["next_page_token"] = token
    return reply


# registered models ---------------------------------------------------------------------

@_route("/registered-models/create", "POST")
def create_registered_model(store, p: Params) -> dict:
    """Create a registered model (RESOURCE_ALREADY_EXISTS when the name is taken)."""
    model = store.create_registered_model(p.str("name", True), p.pairs("tags"), p.str("description"))
    return {"registered_model": model.to_dict()}


@_route("/registered-models/get", "GET")
def get_registered_model(store, p: Params) -> dict:
    """A registered model with its tags, aliases and newest version per stage."""
    return {"registered_model": store.get_registered_model(p.str("name", True)).to_dict()}


@_route("/registered-models/rename", "POST")
def rename_registered_model(store, p: Params) -> dict:
    """Rename a registered model; its versions follow."""
    return {"registered_model": store.rename_registered_model(p.str("name", True), p.str("new_name", True)).to_dict()}


@_route("/registered-models/update", "PATCH")
def update_registered_model(store, p: Params) -> dict:
    """Set a registered model's description."""
    return {"registered_model": store.update_registered_model(p.str("name", True), p.str("description")).to_dict()}


@_route("/registered-models/delete", "DELETE")
def delete_registered_model(store, p: Params) -> dict:
    """Delete a registered model with all its versions."""
    store.delete_registered_model(p.str("name", True))
    return {}


@_route("/registered-models/search", "GET")
def search_registered_models(store, p: Params) -> dict:
    """Registered models matching a filter (name, tags), by name unless ordered otherwise."""
    found, token = store.search_registered_models(p.str("filter") or "", p.int("max_results", default=DEFAULT_MODELS),
                                                  p.strings("order_by"), p.str("page_token"))
    return _page(found, "registered_models", token)


@_route("/registered-models/get-latest-versions", "POST")
def get_latest_versions(store, p: Params) -> dict:
    """The newest version of a registered model in each stage asked for (default: all)."""
    return {"model_versions": [v.to_dict() for v in store.get_latest_versions(p.str("name", True),
                                                                             p.strings("stages"))]}


@_route("/registered-models/set-tag", "POST")
def set_registered_model_tag(store, p: Params) -> dict:
    """Set a tag on a registered model."""
    store.set_registered_model_tag(p.str("name", True), p.str("key", True), p.str("value", True))
    return {}


@_route("/registered-models/delete-tag", "DELETE")
def delete_registered_model_tag(store, p: Params) -> dict:
    """Remove a tag from a registered model."""
    store.delete_registered_model_tag(p.str("name", True), p.str("key", True))
    return {}


@_route("/registered-models/alias", "POST")
def set_registered_model_alias(store, p: Params) -> dict:
    """Point an alias at a version (moving it if it pointed elsewhere)."""
    store.set_registered_model_alias(p.str("name", True), p.str("alias", True), _version(p))
    return {}


@_route("/registered-models/alias", "DELETE")
def delete_registered_model_alias(store, p: Params) -> dict:
    """Remove an alias."""
    store.delete_registered_model_alias(p.str("name", True), p.str("alias", True))
    return {}


@_route("/registered-models/alias", "GET")
def get_model_version_by_alias(store, p: Params) -> dict:
    """The version an alias points at."""
    return {"model_version": store.get_model_version_by_alias(p.str("name", True), p.str("alias", True)).to_dict()}


# model versions ------------------------------------------------------------------------

def create_model_version(store, p: Params, tracking, destination: str) -> dict:
    """Create a version of a registered model from a source (a path, runs:/, models:/<model_id>, ...)."""
    run_id, model_id = p.str("run_id") or None, p.str("model_id") or None
    source = validate_model_source(p.str("source", True), lambda: _local_roots(tracking, destination, run_id, model_id))
    version = store.create_model_version(p.str("name", True), source, run_id, p.pairs("tags"), p.str("run_link"),
                                         p.str("description"), model_id, check.lineage(p.values.get(LINEAGE_WIRE)))
    return {"model_version": version.to_dict()}


def _local_roots(tracking, destination: str, run_id: str | None, model_id: str | None) -> list[str]:
    """Where a local source may lie: the artifacts destination, and the local artifact folder
    of the run and of the logged model the request names (as MLflow's server allows)."""
    check.ids(run_id=run_id, model_id=model_id)
    locations = [tracking.get_run(run_id).info.artifact_uri if run_id else None,
                 tracking.get_logged_model(model_id).artifact_location if model_id else None]
    return [destination, *filter(None, map(local_folder, locations))]


# As mlflow_route's endpoints, but also given the tracking store and the artifacts destination
# that a source is checked against (no docstring: FastAPI would publish it in the OpenAPI document).
@router.post("/model-versions/create", name="create_model_version", summary=create_model_version.__doc__)
async def create_model_version_endpoint(request: Request) -> JSONResponse:
    params, state = await Params.of(request), request.app.state
    return JSONResponse(await run_in_threadpool(create_model_version, state.registry, params, state.store,
                                                state.config.artifacts_destination))


@_route("/model-versions/get", "GET")
def get_model_version(store, p: Params) -> dict:
    """A version of a registered model."""
    return {"model_version": store.get_model_version(p.str("name", True), _version(p)).to_dict()}


@_route("/model-versions/update", "PATCH")
def update_model_version(store, p: Params) -> dict:
    """Set a version's description."""
    version = store.update_model_version(p.str("name", True), _version(p), p.str("description"))
    return {"model_version": version.to_dict()}


@_route("/model-versions/delete", "DELETE")
def delete_model_version(store, p: Params) -> dict:
    """Delete a version (its number is not reused)."""
    store.delete_model_version(p.str("name", True), _version(p))
    return {}


@_route("/model-versions/search", "GET")
def search_model_versions(store, p: Params) -> dict:
    """Versions matching a filter (name, run_id, source_path, version_number, tags)."""
    found, token = store.search_model_versions(p.str("filter") or "", p.int("max_results", default=DEFAULT_VERSIONS),
                                               p.strings("order_by"), p.str("page_token"))
    return _page(found, "model_versions", token)


@_route("/model-versions/transition-stage", "POST")
def transition_model_version_stage(store, p: Params) -> dict:
    """Move a version to a stage (MLflow's deprecated stages), optionally archiving the others there."""
    version = store.transition_model_version_stage(p.str("name", True), _version(p), p.str("stage", True),
                                                   _flag(p, "archive_existing_versions"))
    return {"model_version": version.to_dict()}


@_route("/model-versions/set-tag", "POST")
def set_model_version_tag(store, p: Params) -> dict:
    """Set a tag on a version."""
    store.set_model_version_tag(p.str("name", True), _version(p), p.str("key", True), p.str("value", True))
    return {}


@_route("/model-versions/delete-tag", "DELETE")
def delete_model_version_tag(store, p: Params) -> dict:
    """Remove a tag from a version."""
    store.delete_model_version_tag(p.str("name", True), _version(p), p.str("key", True))
    return {}


@_route("/model-versions/get-download-uri", "GET")
def get_model_version_download_uri(store, p: Params) -> dict:
    """Where a version's files are."""
    return {"artifact_uri": store.get_model_version_download_uri(p.str("name", True), _version(p))}
