"""``flowml server --auth``: every request but ``/health`` needs ``Authorization: Bearer
<token>``, and the token's role must cover what the request does: reading (GET, and the
search routes, which POST a query) needs ``read``; anything that writes needs ``write``."""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from flowml.server.errors import error
from flowml.tracking.sql.tokens import ROLES

OPEN_PATHS = ("/health",)
READ_POSTS = ("/runs/search", "/experiments/search", "/logged-models/search", "/registered-models/get-latest-versions")


def needed_role(request: Request) -> str:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return "read"
    if request.method == "POST" and request.url.path.endswith(READ_POSTS):
        return "read"
    return "write"


async def check(request: Request, call_next):
    """Middleware: answer 401 without a valid token, 403 when its role is too low."""
    if request.url.path in OPEN_PATHS:
        return await call_next(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    role = None
    if scheme.lower() == "bearer" and token:
        role = await run_in_threadpool(request.app.state.store.token_role, token.strip())
    if role is None:
        reply = error("UNAUTHENTICATED", "a valid bearer token is required (Authorization: Bearer <token>)", 401)
        reply.headers["WWW-Authenticate"] = "Bearer"
        return reply
    needed = needed_role(request)
    if ROLES.index(role) < ROLES.index(needed):
        return error("PERMISSION_DENIED", f"this token's role is '{role}'; this request needs '{needed}'", 403)
    return await call_next(request)
