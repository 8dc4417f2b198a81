"""MLflow 3's logged-models routes, which ``mlflow.<flavor>.log_model`` goes through: create
(PENDING), upload through the artifact proxy, finalize (READY)."""

from __future__ import annotations

from fastapi import APIRouter

from flowml.errors import TrackingError
from flowml.server.protocol import Params
from flowml.server.routes import mlflow_route
from flowml.tracking.entities import LoggedModelStatus

router = APIRouter()


def _route(path: str, *methods: str):
    return mlflow_route(router, path, *methods)


@_route("/logged-models", "POST")
def create_logged_model(store, p: Params) -> dict:
    """Create a PENDING logged model in an experiment."""
    model = store.create_logged_model(p.str("experiment_id", True), p.str("name"), p.str("source_run_id"),
                                      p.pairs("tags"), p.pairs("params"), p.str("model_type"))
    return {"model": model.to_dict()}


@_route("/logged-models/search", "POST")
def search_logged_models(store, p: Params) -> dict:
    """Logged models of some experiments, newest first."""
    models, token = store.search_logged_models(p.strings("experiment_ids"), p.str("filter") or "",
                                               p.int("max_results", default=100), p.str("page_token"))
    reply: dict = {"models": [m.to_dict() for m in models]}
    if token:
        reply["next_page_token"] = token
    return reply


@_route("/logged-models/{model_id}", "GET")
def get_logged_model(store, p: Params) -> dict:
    """A logged model by id."""
    return {"model": store.get_logged_model(p.str("model_id", True)).to_dict()}


@_route("/logged-models/{model_id}", "PATCH")
def finalize_logged_model(store, p: Params) -> dict:
    """Mark a logged model READY (its files are uploaded) or FAILED."""
    status = LoggedModelStatus.parse(p.values.get("status"))
    if status is None:
        raise TrackingError(f"invalid status {p.values.get('status')!r} for a logged model")
    return {"model": store.finalize_logged_model(p.str("model_id", True), status).to_dict()}


@_route("/logged-models/{model_id}", "DELETE")
def delete_logged_model(store, p: Params) -> dict:
    """Soft-delete a logged model."""
    store.delete_logged_model(p.str("model_id", True))
    return {}


@_route("/logged-models/{model_id}/tags", "PATCH")
def set_logged_model_tags(store, p: Params) -> dict:
    """Set tags on a logged model."""
    store.set_logged_model_tags(p.str("model_id", True), p.pairs("tags"))
    return {}


@_route("/logged-models/{model_id}/tags/{tag_key:path}", "DELETE")
def delete_logged_model_tag(store, p: Params) -> dict:
    """Remove a tag from a logged model."""
    store.delete_logged_model_tag(p.str("model_id", True), p.str("tag_key", True))
    return {}


@_route("/logged-models/{model_id}/params", "POST")
def log_logged_model_params(store, p: Params) -> dict:
    """Add params to a logged model."""
    store.log_logged_model_params(p.str("model_id", True), p.pairs("params"))
    return {}
