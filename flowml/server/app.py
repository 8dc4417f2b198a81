"""Builds the server's FastAPI application: MLflow's routes (tracking, logged models, model
registry) under ``/api/2.0/mlflow`` (and ``/ajax-api/2.0/mlflow``, as MLflow's UI calls
them), the server-info route MLflow 3's client asks for, the web UI (``flowml.server.ui``),
a Host-header allow-list against DNS rebinding, and a cap on request bodies."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.middleware.trustedhost import TrustedHostMiddleware

from flowml.server import errors
from flowml.server.config import ServerConfig
from flowml.version import __version__

API_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
ARTIFACTS_SCHEME = "mlflow-artifacts:"  # experiments created here keep artifacts behind the proxy


def create_app(config: ServerConfig, store=None) -> FastAPI:
    """The application for ``config``; ``store`` (an open SQL store) mostly for tests."""
    from flowml.server.routes.logged_models import router as logged_models
    from flowml.server.routes.artifacts import router as artifacts, runs_router as run_artifacts
    from flowml.registry.sql import SqlRegistryStore
    from flowml.server.routes.flowml import router as flowml_routes
    from flowml.server.routes.registry import router as registry
    from flowml.server.routes.tracking import router as tracking
    from flowml.server.csrf import refuse_cross_site_writes
    from flowml.server.ui import install as install_ui
    from flowml.tracking.sql.store import SqlStore

    app = FastAPI(title="flowml tracking server", version=__version__, docs_url=None, redoc_url=None,
                  description="MLflow's tracking REST API, its artifact proxy, and flowml's cache index.")
    app.state.config = config
    app.state.store = store or SqlStore(config.backend_store_uri, ARTIFACTS_SCHEME)
    app.state.store.local_writers = False  # runs come from remote clients: only heartbeats tell if they live
    app.state.registry = SqlRegistryStore(app.state.store.engine)  # the registry lives in the same database
    errors.install(app)
    app.include_router(flowml_routes, prefix="/api/2.0/flowml", tags=["flowml"])
    for prefix in API_PREFIXES:
        app.include_router(tracking, prefix=prefix, tags=["tracking"])
        app.include_router(run_artifacts, prefix=prefix, tags=["artifacts"])
        app.include_router(artifacts, prefix=prefix + "-artifacts", tags=["artifacts"])  # the proxy
        app.include_router(logged_models, prefix=prefix, tags=["logged models"])
        app.include_router(registry, prefix=prefix, tags=["model registry"])

    install_ui(app)

    @app.get("/api/3.0/mlflow/server-info", tags=["server"])
    def server_info() -> dict:
        """What MLflow 3's client asks before it uploads artifacts."""
        return {"store_type": "SqlStore", "workspaces_enabled": False, "trace_archival_enabled": False,
                "multipart_uploads_enabled": False, "multipart_downloads_enabled": False}

    @app.get("/health", tags=["server"])
    def health() -> dict:
        return {"status": "OK"}

    @app.get("/version", tags=["server"])
    def version() -> str:
        return __version__

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > config.max_body_bytes and not _is_upload(request):
            return errors.error("INVALID_PARAMETER_VALUE",
                                f"request body of {length} bytes is over the limit of {config.max_body_bytes}", 413)
        return await call_next(request)

    if config.auth:
        from flowml.server.auth import check

        app.middleware("http")(check)
    app.middleware("http")(refuse_cross_site_writes)  # before auth: a forged write is refused unread
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=sorted(config.host_allow_list()))  # runs first
    return app


def _is_upload(request: Request) -> bool:
    """Artifact uploads stream to disk, so their size is not capped like JSON bodies."""
    return request.method == "PUT" and "/mlflow-artifacts/artifacts/" in request.url.path


def openapi_text() -> str:
    """The server's OpenAPI document as committed in ``schemas/openapi.json`` (a test checks
    that it does not drift from the routes)."""
    import json

    from flowml.tracking.sql.store import SqlStore

    app = create_app(ServerConfig("sqlite://", "/nonexistent"), store=SqlStore("sqlite://", ARTIFACTS_SCHEME))
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"
