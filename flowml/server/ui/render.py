"""Turning a template and its values into a page: one Jinja2 environment (autoescaped, so
everything a user wrote is text), the filters pages share, and the headers every page gets.

No page has inline script or style: the Content-Security-Policy allows only this server's
own files, so even a value that slipped past escaping could not run. Values a page's script
needs travel in ``<script type="application/json">`` blocks (``tojson`` escapes ``<``, ``>``,
``&`` and quotes, so a value cannot close the block).
"""

from __future__ import annotations

import datetime as dt
import math
import os
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from flowml.version import __version__

PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY", "Cache-Control": "no-store"}


def format_time(ms: int | None) -> str:
    """A store timestamp (ms since the epoch) as local date and time."""
    if ms is None:
        return ""
    try:
        return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):  # any writer may send any int64: show it as it is
        return str(ms)


def format_duration(seconds: float | None) -> str:
    """``0.4s``, ``12.3s``, ``4m 05s``, ``2h 03m``: short enough for a table cell."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def run_duration(info) -> float | None:
    """Seconds from a run's start to its end (None while it runs)."""
    if info.end_time is None or info.start_time is None:
        return None
    return (info.end_time - info.start_time) / 1000


def format_number(value) -> str:
    """A metric for a table: up to 6 significant digits, integers without a point."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}"
    return str(value)


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(os.path.join(os.path.dirname(__file__), "templates")),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(time=format_time, duration=format_duration, number=format_number,
                       short=lambda run_id: (run_id or "")[:8], urlpath=lambda text: quote(str(text), safe="/"),
                       segment=lambda text: quote(str(text), safe=""),  # one path segment: an id from a tag or a file
                       query=lambda params: urlencode(params, doseq=True))
    env.globals.update(version=__version__, run_duration=run_duration)
    return env


ENV = _environment()


SYSTEM_TAGS = ("mlflow.", "flowml.")  # what MLflow and flowml record themselves; pages show them apart


def user_tags(tags: dict[str, str]) -> dict[str, str]:
    """The tags a user set (without MLflow's and flowml's own)."""
    return {k: v for k, v in tags.items() if not k.startswith(SYSTEM_TAGS)}


API_PATHS = ("/api/", "/ajax-api/", "/ui-api/", "/health", "/version", "/static/")


def is_page(request: Request) -> bool:
    """Whether ``request`` asked for a page (answered in HTML) rather than for the API."""
    return not request.url.path.startswith(API_PATHS)


def page(request: Request, template: str, status_code: int = 200, **values) -> HTMLResponse:
    """``template`` rendered with ``values`` (and the request, for the layout's links)."""
    auth = request.app.state.config.auth
    can_write = not auth or getattr(request.state, "role", None) in ("write", "admin")
    html = ENV.get_template(template).render(request=request, signed_in=auth, can_write=can_write, **values)
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    """A failure on a page, as a page (the API keeps MLflow's JSON errors)."""
    titles = {400: "Bad request", 401: "Sign in needed", 403: "Not allowed", 404: "Not found", 503: "Store unavailable"}
    return page(request, "error.html", status_code, title=titles.get(status_code, "Error"), message=message)
