"""The server's routes, one module per group of MLflow's API. Each handler is a plain
function ``(store, params) -> dict`` registered with :func:`mlflow_route`, which reads the
request, runs the handler in a worker thread (the store blocks) and replies with JSON."""

from __future__ import annotations

from typing import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from flowml.server.protocol import Params

Handler = Callable[[object, Params], dict]


def mlflow_route(router: APIRouter, path: str, *methods: str, store: str = "store") -> Callable[[Handler], Handler]:
    """Register ``handler`` at ``path`` (relative to ``/api/2.0/mlflow``) for ``methods``; it is
    given the store held as ``app.state.<store>`` (the tracking store, or ``registry``)."""
    def register(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> JSONResponse:
            params = await Params.of(request)
            return JSONResponse(await run_in_threadpool(handler, getattr(request.app.state, store), params))

        endpoint.__name__ = handler.__name__
        summary = (handler.__doc__ or "").strip().splitlines()[0] if handler.__doc__ else None
        for method in methods or ("POST",):  # one route per method: stable, unique OpenAPI operation ids
            router.add_api_route(path, endpoint, methods=[method], name=handler.__name__, summary=summary)
        return handler

    return register
