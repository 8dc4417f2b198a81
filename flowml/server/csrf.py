"""Refusing writes that a web page on another site makes a browser send.

A server on 127.0.0.1 without ``--auth`` trusts whoever reaches it, and a browser on the same
machine reaches it for any site the user visits: a hostile page can POST a form (``text/plain``
bodies that parse as JSON) without reading the reply. MLflow's server had CVEs of this kind.
Browsers say where a request comes from: ``Sec-Fetch-Site`` (current browsers) and ``Origin``
(sent with every POST, PUT, PATCH and DELETE). A write whose origin is not this server itself is
refused; clients that are not browsers (MLflow's, flowml's, curl) send neither header and pass.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request

from flowml.server.errors import error

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def cross_site(request: Request) -> bool:
    """Whether a browser sent ``request`` on behalf of a page from another origin."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return origin == "null" or urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower()


async def refuse_cross_site_writes(request: Request, call_next):
    """Middleware: a write from another site's page gets 403, before it reaches a route."""
    if request.method not in SAFE_METHODS and cross_site(request):
        return error("PERMISSION_DENIED", "cross-site requests may not change this server's data", 403)
    return await call_next(request)
