"""Cross-process locks on a node's outputs, so two ``flowml run`` at once never write the same
outputs together: the second waits, then finds the first one's cache entry and reuses it."""

from __future__ import annotations

import fcntl
import os
import threading

import xxhash

POLL_SECONDS = 0.1


class NodeLock:
    """An exclusive ``flock`` on ``.flowml/locks/<digest of the node name>``."""

    def __init__(self, folder: str, name: str) -> None:
        self.folder = folder
        self.path = os.path.join(folder, xxhash.xxh3_64_hexdigest(name.encode()) + ".lock")
        self.fd: int | None = None

    def acquire(self, stop: threading.Event) -> bool:
        """Wait for the lock; False when ``stop`` is set first."""
        os.makedirs(self.folder, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.fd = fd
                return True
            except BlockingIOError:
                if stop.wait(POLL_SECONDS):
                    os.close(fd)
                    return False

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


class StoreLock:
    """``.flowml/store.lock``: every run holds it shared for its whole life; gc takes it
    exclusively, and refuses (rather than waits) while a run is going on."""

    def __init__(self, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)
        self.fd = os.open(os.path.join(folder, "store.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_SH)

    def exclusive(self) -> bool:
        """Upgrade to exclusive without waiting; False while another process holds it."""
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def shared(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_SH)

    def close(self) -> None:
        os.close(self.fd)  # releases the lock
