"""Signing in to a server started with ``--auth``: the page asks for a token once and keeps
it in a cookie that scripts cannot read (HttpOnly) and other sites cannot send (SameSite=Strict,
which is also what keeps the UI's writes safe from cross-site requests)."""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from flowml.server.protocol import read_capped
from flowml.server.ui.render import page

router = APIRouter()

COOKIE = "flowml_token"
MAX_FORM_BYTES = 4096


@router.get("/login")
def login_form(request: Request, next: str = "/"):
    return page(request, "login.html", title="Sign in", next=safe_next(next), failed=False)


@router.post("/login")
async def login(request: Request):
    body = await read_capped(request, MAX_FORM_BYTES)  # before any token is checked: never read more
    form = parse_qs(body.decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    target = safe_next((form.get("next") or ["/"])[0])
    role = await run_in_threadpool(request.app.state.store.token_role, token) if token else None
    if role is None:  # the form again, with the reason (200: a 401 would be a console error in the browser)
        return page(request, "login.html", title="Sign in", next=target, failed=True)
    reply = RedirectResponse(target, status_code=303)
    reply.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/",
                     secure=request.url.scheme == "https")
    return reply


@router.post("/logout")
def logout():
    reply = RedirectResponse("/login", status_code=303)
    reply.delete_cookie(COOKIE, path="/")
    return reply


def safe_next(target: str) -> str:
    """Where to go after signing in: a path on this server, never another site (``//evil``,
    ``/\\evil`` and ``https://evil`` all become ``/``)."""
    if not target.startswith("/") or target.startswith(("//", "/\\")) or any(c in target for c in "\r\n\\"):
        return "/"
    return target
