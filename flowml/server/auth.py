"""``flowml server --auth``: every request but ``/health`` (and the sign-in page with the UI's
static files) needs a token, and the token's role must cover what the request does: reading
(GET, and the search routes, which POST a query) needs ``read``; anything that writes needs
``write``. API clients send ``Authorization: Bearer <token>``; the UI's pages send the cookie
set by signing in, and a page asked for without one leads to the sign-in page."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from flowml.server.errors import error
from flowml.server.ui.login import COOKIE
from flowml.server.ui.render import error_page, is_page
from flowml.tracking.sql.tokens import ROLES

OPEN_PATHS = ("/health", "/login", "/logout")
OPEN_PREFIXES = ("/static/",)
READ_POSTS = ("/runs/search", "/experiments/search", "/logged-models/search", "/registered-models/get-latest-versions")


def needed_role(request: Request) -> str:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return "read"
    if request.method == "POST" and request.url.path.endswith(READ_POSTS):
        return "read"
    return "write"


def presented_token(request: Request) -> str:
    """The bearer token of the request's Authorization header, else the UI's cookie."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.cookies.get(COOKIE, "")


async def check(request: Request, call_next):
    """Middleware: answer 401 without a valid token (pages: go and sign in), 403 when its role is too low."""
    path = request.url.path
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return await call_next(request)
    token = presented_token(request)
    role = await run_in_threadpool(request.app.state.store.token_role, token) if token else None
    page = is_page(request)
    if role is None:
        if page and request.method == "GET":
            target = path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        reply = error("UNAUTHENTICATED", "a valid bearer token is required (Authorization: Bearer <token>)", 401)
        reply.headers["WWW-Authenticate"] = "Bearer"
        return reply
    needed = needed_role(request)
    if ROLES.index(role) < ROLES.index(needed):
        message = f"this token's role is '{role}'; this request needs '{needed}'"
        return error_page(request, 403, message) if page else error("PERMISSION_DENIED", message, 403)
    request.state.role = role
    return await call_next(request)
