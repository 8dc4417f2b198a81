"""Reading MLflow requests: GET parameters come in the query string, POST ones in a JSON
body; both are read through :class:`Params`, which answers a missing or mistyped field with
MLflow's INVALID_PARAMETER_VALUE and a message naming it."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from flowml.errors import TrackingError


class Params:
    """The fields of one request, from its query string (GET) or its JSON body (others)."""

    def __init__(self, values: dict[str, Any], lists: dict[str, list[str]] | None = None) -> None:
        self.values = values
        self.lists = lists or {}

    @classmethod
    async def of(cls, request: Request) -> "Params":
        """The request's fields; those in the path (``/logged-models/{model_id}``) win."""
        path = dict(request.path_params)
        if request.method in ("GET", "DELETE") and not request.headers.get("content-length", "0").strip("0"):
            query = request.query_params
            return cls({**dict(query), **path}, {k: query.getlist(k) for k in query.keys()})
        raw = await read_capped(request, request.app.state.config.max_body_bytes)
        if not raw.strip():
            return cls(path)
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise TrackingError(f"malformed JSON body: {str(exc)[:200]}") from None
        if not isinstance(body, dict):
            raise TrackingError("the request body must be a JSON object")
        return cls({**body, **path})

    def _get(self, name: str, required: bool) -> Any:
        value = self.values.get(name)
        if value is None and required:
            raise TrackingError(f"missing value for required parameter '{name}'")
        return value

    def str(self, name: str, required: bool = False, *aliases: str) -> str | None:
        value = self._get(name, False)
        for alias in aliases:
            value = value if value is not None else self.values.get(alias)
        if value is None:
            if required:
                raise TrackingError(f"missing value for required parameter '{name}'")
            return None
        if not isinstance(value, str):
            raise TrackingError(f"invalid value {value!r} for parameter '{name}': expected a string")
        return value

    def int(self, name: str, required: bool = False, default: int | None = None) -> int | None:
        value = self._get(name, required)
        if value is None:
            return default
        if isinstance(value, bool):
            raise TrackingError(f"invalid value {value!r} for parameter '{name}': expected an integer")
        try:
            number = int(value)
        except (TypeError, ValueError, OverflowError):
            raise TrackingError(f"invalid value {value!r} for parameter '{name}': expected an integer") from None
        if isinstance(value, float) and not value.is_integer():
            raise TrackingError(f"invalid value {value!r} for parameter '{name}': expected an integer")
        return number

    def number(self, name: str, required: bool = False) -> float | None:
        """A float; MLflow's JSON sends NaN and infinities as the strings "NaN", "Infinity"."""
        value = self._get(name, required)
        if value is None:
            return None
        if isinstance(value, bool):
            raise TrackingError(f"invalid value {value!r} for parameter '{name}': expected a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise TrackingError(f"invalid value {value!r} for parameter '{name}': expected a number") from None

    def strings(self, name: str) -> list[str]:
        """A list of strings (``order_by``, ``experiment_ids``)."""
        values = self.list(name)
        if not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values):
            raise TrackingError(f"invalid value for parameter '{name}': expected a list of strings")
        return [str(v) for v in values]

    def list(self, name: str) -> list:
        """A repeated GET parameter, or a JSON array."""
        if name in self.lists:
            return self.lists[name]
        value = self.values.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise TrackingError(f"invalid value for parameter '{name}': expected a list")
        return value

    def pairs(self, name: str) -> dict[str, Any]:
        """A list of ``{"key": ..., "value": ...}`` objects as a dict (tags, params)."""
        out: dict[str, Any] = {}
        for item in self.list(name):
            if not isinstance(item, dict) or not isinstance(item.get("key"), str):
                raise TrackingError(f"invalid entry {item!r} in '{name}': expected {{\"key\": ..., \"value\": ...}}")
            out[item["key"]] = "" if item.get("value") is None else item["value"]
        return out


class BodyTooLarge(TrackingError):
    """A JSON body over the server's limit (HTTP 413)."""


async def read_capped(request: Request, limit: int) -> bytes:
    """The body, read as it arrives and refused past ``limit`` bytes: a chunked request has no
    Content-Length for the middleware to check, so the count is kept here."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"request body over the limit of {limit} bytes", "REQUEST_TOO_LARGE")
        chunks.append(chunk)
    return b"".join(chunks)
