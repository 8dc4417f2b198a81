"""What the tests that start servers in subprocesses share: a free port, waiting until a server
answers, and stopping a server's whole process group (its workers too)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
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
