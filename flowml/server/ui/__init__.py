"""The web UI: pages rendered on the server (Jinja2, everything escaped), a little of our own
JavaScript for the charts and the table's conveniences, no build step and nothing from a CDN.

Each page lives in the module named for it (``experiments``, ``runs``, ``run``, ``artifacts``,
``charts``, ``compare``, ``pipeline``, ``registry``, ``login``); :func:`install` mounts them all.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

STATIC = os.path.join(os.path.dirname(__file__), "static")


def install(app: FastAPI) -> None:
    """Add the UI's pages, its JSON helpers under ``/ui-api`` and its static files to ``app``."""
    from flowml.server.ui import artifacts, charts, compare, experiments, login, pipeline, registry, run, runs

    for module in (experiments, runs, run, artifacts, charts, compare, pipeline, registry, login):
        app.include_router(module.router, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
