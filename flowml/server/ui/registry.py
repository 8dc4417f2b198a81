"""The model registry's pages: the registered models (searchable by name), one model with its
aliases and versions, and one version with its lineage back to the pipeline that made it.

The pages only read. Their forms (set, move or remove an alias; edit a description) are sent
by ``static/registry.js`` to MLflow's REST routes under ``/ajax-api/2.0/mlflow/``, so that the
page writes exactly as every other client does and the server's checks and roles apply to it;
with ``--auth`` and a read token the forms are not drawn (and the server would refuse them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request

from flowml.server.ui.render import page
from flowml.server.ui.selection import find_run

router = APIRouter()

PAGE_SIZE = 100


@router.get("/models")
def models(request: Request, q: str = "", start: str = ""):
    registry = request.app.state.registry
    found, token = registry.search_registered_models(f"name ILIKE '%{like_text(q)}%'" if q else "",
                                                     max_results=PAGE_SIZE, page_token=start or None)
    more = "/models?" + urlencode({k: v for k, v in {"q": q, "start": token}.items() if v}) if token else None
    return page(request, "models.html", title="Models", section="models", crumbs=[("Models", None)],
                models=found, q=q, more=more, newest=newest_version)


@router.get("/models/{name}")
def model(request: Request, name: str, start: str = ""):
    registry = request.app.state.registry
    found = registry.get_registered_model(name)
    versions, token = registry.search_model_versions(f"name = '{quoted(name)}'", max_results=PAGE_SIZE,
                                                     order_by=["version_number DESC"], page_token=start or None)
    more = f"/models/{quote(name, safe='')}?" + urlencode({"start": token}) if token else None
    return page(request, "model.html", title=name, section="models", crumbs=[("Models", "/models"), (name, None)],
                model=found, versions=versions, more=more, newest=newest_version(found))


@router.get("/models/{name}/versions/{version}")
def model_version(request: Request, name: str, version: str):
    registry = request.app.state.registry
    found = registry.get_model_version(name, version)
    return page(request, "model_version.html", title=f"{name} v{found.version}", section="models",
                crumbs=[("Models", "/models"), (name, f"/models/{quote(name, safe='')}"), (f"Version {found.version}", None)],
                mv=found, lineage=trace(request.app.state.store, found))


@dataclass
class Trace:
    """Where a version came from, with the runs looked up (None where a run is gone): the
    pipeline run, the step run that registered it, and the step run that produced the model
    directory, with that step's cache key and its inputs' digests."""

    pipeline_run_id: str | None = None
    pipeline_run: object = None
    step: str | None = None
    step_run_id: str | None = None
    step_run: object = None
    step_cache_key: str | None = None
    producer: str | None = None
    producer_run_id: str | None = None
    producer_run: object = None
    producer_cache_key: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    content_digest: str | None = None

    def __bool__(self) -> bool:
        return bool(self.pipeline_run_id or self.step_run_id or self.producer_run_id or self.content_digest)


def trace(store, version) -> Trace:
    """The lineage ``version`` records (see :mod:`flowml.registry.register`), with its runs."""
    lineage = version.lineage
    producer_run_id = version.tags.get("flowml.model_run_id")
    producer_run = find_run(store, producer_run_id)
    return Trace(lineage.pipeline_run_id, find_run(store, lineage.pipeline_run_id), lineage.step,
                 lineage.run_id or version.run_id, find_run(store, lineage.run_id or version.run_id), lineage.cache_key,
                 version.tags.get("flowml.model_step"), producer_run_id, producer_run,
                 producer_run.data.tags.get("flowml.cache_key") if producer_run else None,
                 dict(sorted(lineage.input_digests.items())), lineage.content_digest)


def newest_version(model) -> int | None:
    """The highest version number among a model's newest per stage, i.e. its newest version."""
    return max((v.version for v in model.latest_versions), default=None)


def quoted(text: str) -> str:
    """``text`` inside a single-quoted string of the search grammar."""
    return text.replace("'", "''")


def like_text(text: str) -> str:
    """``text`` matched literally inside a LIKE pattern (its ``%``, ``_`` and ``\\`` escaped)."""
    return quoted(text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"))
