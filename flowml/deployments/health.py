"""Is a server up: ``/ping`` polled until it answers, the server dies, or time runs out.

Every target calls a deploy successful only after this, and the deploy step of a pipeline
returns right after it, so ``flowml run`` neither hangs on a server nor reports one that
never came up.
"""

from __future__ import annotations

import socket
import time
from typing import Callable

READY_TIMEOUT_S = 120.0


def ping(url: str, timeout: float = 2.0) -> bool:
    """Whether ``url``/ping answers 200 now."""
    import httpx

    try:
        return httpx.get(url.rstrip("/") + "/ping", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def wait_ready(url: str, alive: Callable[[], bool], timeout: float = READY_TIMEOUT_S) -> str | None:
    """Poll ``url``/ping until it answers 200; the reason it did not, or None.

    ``alive`` says whether the server is still running: a server that died is not waited for.
    """
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        if ping(url, timeout=1.0):
            return None
        if not alive():
            return "the server exited before it answered /ping"
        if time.monotonic() > deadline:
            return f"the server did not answer {url}/ping within {timeout:g} s"
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def url_of(host: str, port: int) -> str:
    """Where this machine reaches a server bound to ``host``:``port`` (a wildcard address
    through the loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
