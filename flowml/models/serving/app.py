"""The scoring server's ASGI app: MLflow's ``/ping``, ``/health``, ``/version`` and ``/invocations``.

A raw ASGI callable, not a framework app: a single-row request is a few hundred microseconds of
work, and a framework's routing, validation and middleware would cost more than the model. The
model that answers is one attribute, :attr:`ScoringApp.served`; a request reads it once, so
swapping in a new version (:meth:`ScoringApp.swap`) is atomic and never fails or stalls a
request in flight. Every answer to ``/invocations`` names the version that made it in the
``X-Flowml-Model-Version`` header. ``/version`` adds what the supervisor says of the whole
server (:meth:`ScoringApp.describe`): the version each worker serves, the versions that failed.

Predictions run on the event loop's thread: the work is CPU-bound and holds the GIL, so a
thread hand-off would only add latency; parallelism comes from worker processes.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

from flowml.models.errors import ModelInputError
from flowml.models.serving import replies
from flowml.models.serving.payload import PayloadError, media_type, parse
from flowml.models.serving.served import Served

log = logging.getLogger("flowml.serving")

_JSON = b"application/json"
_PING = b"\n"


class ScoringApp:
    """ASGI 3 app serving one model at a time."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.fleet: dict[str, Any] = {}
        self.version_body = served.version_body

    def swap(self, served: Served) -> None:
        """Answer later requests with ``served``; requests already running finish on the old one."""
        self.served = served
        self._describe()

    def describe(self, fleet: dict[str, Any]) -> None:
        """Report ``fleet`` (what every worker of the server serves, what failed) in ``/version``."""
        self.fleet = fleet
        self._describe()

    def _describe(self) -> None:
        self.version_body = orjson.dumps({**orjson.loads(self.served.version_body), **self.fleet})

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/invocations":
            if method != "POST":
                return await _reply(send, 405, replies.error("BAD_REQUEST", "use POST for /invocations"))
            served = self.served
            status, body = invoke(served, await _body(receive), _header(scope, b"content-type"))
            return await _reply(send, status, body, served.version_header)
        if method not in ("GET", "HEAD"):
            return await _reply(send, 405, replies.error("BAD_REQUEST", f"use GET for {path}"))
        if path in ("/ping", "/health"):
            return await _reply(send, 200, _PING)
        if path == "/version":
            return await _reply(send, 200, self.version_body)
        await _reply(send, 404, replies.error("ENDPOINT_NOT_FOUND", f"no endpoint {path}: the scoring server "
                                              "has /invocations, /ping, /health and /version"))


def invoke(served: Served, body: bytes, content_type: str | None) -> tuple[int, bytes]:
    """Status and JSON body for one ``/invocations`` request: predictions, or MLflow's error shape."""
    try:
        kind = media_type(content_type)
        if served.fast is not None:
            fast = served.fast(body, kind)
            if fast is not None:
                return 200, replies.predictions(fast)
        payload = parse(body, kind, served.schema)
        result = served.model.predict(payload.data, params=payload.params)
        return 200, replies.predictions(result)
    except PayloadError as exc:
        return exc.status, replies.error(exc.error_code, str(exc))
    except ModelInputError as exc:
        return 400, replies.error(exc.error_code, str(exc))
    except Exception as exc:  # the model failed on this input: MLflow answers 400 too, never a 500 traceback
        log.error("prediction failed", exc_info=sys.exc_info())
        return 400, replies.error("BAD_REQUEST", "the model failed on this input (check that it fits the "
                                  f"model's signature): {type(exc).__name__}: {exc}")


async def _body(receive) -> bytes:
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body"):
        return body
    chunks = [body]
    while message.get("more_body"):
        message = await receive()
        chunks.append(message.get("body", b""))
    return b"".join(chunks)


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _reply(send, status: int, body: bytes, version: bytes | None = None) -> None:
    headers: list[Any] = [(b"content-type", _JSON), (b"content-length", str(len(body)).encode())]
    if version is not None:
        headers.append((b"x-flowml-model-version", version))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
