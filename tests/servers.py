"""What the tests that start servers in subprocesses share: a free port, waiting until a server
answers, stopping a server's whole process group (its workers too), and a real flowml server
on 127.0.0.1 (:func:`start_server`)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import httpx


def free_port() -> int:
    """A port the kernel says is free now on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_answers(url: str, alive: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``url`` until it answers 200 (True), or until ``alive()`` says the server is gone or
    ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        if not alive() or time.monotonic() > deadline:
            return False
        time.sleep(interval)


def stop_group(process: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM the process group of ``process`` (started with ``start_new_session=True``), then
    SIGKILL it if it outlives ``grace`` seconds."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@dataclass
class Server:
    url: str
    store_uri: str
    artifacts: Path
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        stop_group(self.process)


def start_server(folder: Path, store_uri: str | None = None, *args: str, env: dict | None = None,
                 timeout: float = 30) -> Server:
    """Start ``flowml server`` on a free port with its store and artifacts under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    store_uri = store_uri or f"sqlite:///{folder / 'server.db'}"
    artifacts = folder / "artifacts"
    log = folder / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flowml", "server", "--port", str(port), "--backend-store-uri", store_uri,
             "--artifacts-destination", str(artifacts), *args],
            cwd=folder, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **(env or {})})
    server = Server(f"http://127.0.0.1:{port}", store_uri, artifacts, proc, log)
    if not wait_until_answers(server.url + "/health", lambda: proc.poll() is None, timeout):
        server.stop()
        raise RuntimeError(f"flowml server did not start:\n{log.read_text()}")
    return server
