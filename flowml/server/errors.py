"""Errors as MLflow's client expects them: ``{"error_code": ..., "message": ...}`` with
MLflow's HTTP status for each code, and never a traceback in a reply."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from flowml.errors import StoreError, TrackingError

STATUS = {
    "INVALID_PARAMETER_VALUE": 400, "RESOURCE_ALREADY_EXISTS": 400, "INVALID_STATE": 400, "BAD_REQUEST": 400,
    "RESOURCE_DOES_NOT_EXIST": 404, "ENDPOINT_NOT_FOUND": 404, "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403,
    "REQUEST_LIMIT_EXCEEDED": 429, "REQUEST_TOO_LARGE": 413, "TEMPORARILY_UNAVAILABLE": 503, "INTERNAL_ERROR": 500,
}
_HTTP_CODES = {404: "ENDPOINT_NOT_FOUND", 405: "ENDPOINT_NOT_FOUND", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
               413: "INVALID_PARAMETER_VALUE"}
log = logging.getLogger("flowml.server")


def error(code: str, message: str, status: int | None = None) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status or STATUS.get(code, 400))


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into MLflow's error shape (on the UI's
    pages: into an error page)."""

    @app.exception_handler(TrackingError)
    async def tracking_error(request: Request, exc: TrackingError) -> JSONResponse:
        return _reply(request, exc.error_code, str(exc))

    @app.exception_handler(StoreError)
    async def store_error(request: Request, exc: StoreError) -> JSONResponse:
        log.error("store error: %s", exc)
        return _reply(request, "TEMPORARILY_UNAVAILABLE", str(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _reply(request, "INVALID_PARAMETER_VALUE", f"invalid request: {where + ': ' if where else ''}{first.get('msg', 'malformed')}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "BAD_REQUEST")
        return _reply(request, code, str(exc.detail), exc.status_code)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _reply(request, "INTERNAL_ERROR", f"internal error ({type(exc).__name__}); see the server's log")


def _reply(request: Request, code: str, message: str, status: int | None = None):
    from flowml.server.ui.render import error_page, is_page

    if is_page(request):
        return error_page(request, status or STATUS.get(code, 400), message)
    return error(code, message, status)
