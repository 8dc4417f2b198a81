"""Detached server processes: start one in its own session, know it again later, stop it.

A deployment's server outlives the command that started it, so it is found again by its
pid *and* the pid's start time (``/proc/<pid>/stat``): a pid reused by another program after
a reboot is not taken for the server. It is stopped by its process group, workers included:
SIGTERM first (a graceful stop finishes the requests in flight), SIGKILL after a grace period.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

GRACE_S = 10.0
# Variables of the step that ran the deploy, which the server must not take as its own run.
RUN_VARIABLES = ("FLOWML_RUN_ID", "MLFLOW_RUN_ID", "FLOWML_PARENT_RUN_ID", "FLOWML_CACHE_KEY", "FLOWML_STEP")


def start(argv: list[str], cwd: str, env: dict[str, str], log: str, banner: str) -> dict[str, Any]:
    """Start ``argv`` detached, its output appended to ``log``; returns its handle."""
    env = {k: v for k, v in env.items() if k not in RUN_VARIABLES}
    with open(log, "ab") as out:
        out.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {banner}\n".encode())
        out.flush()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    return {"pid": proc.pid, "started": _start_time(proc.pid)}


def alive(handle: dict[str, Any]) -> bool:
    """Whether the process of ``handle`` is still the one that was started, and not a zombie."""
    pid = handle.get("pid")
    if not pid:
        return False
    _reap(pid)
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z" and stat[1] == handle.get("started")


def stop(handle: dict[str, Any], grace: float = GRACE_S) -> None:
    """Stop the process group of ``handle``: SIGTERM, then SIGKILL after ``grace`` seconds."""
    if not alive(handle):
        return
    pid = handle["pid"]
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive(handle) and time.monotonic() < deadline:
        time.sleep(0.05)
    _signal_group(pid, signal.SIGKILL)  # what ignored SIGTERM, workers included
    deadline = time.monotonic() + 5
    while alive(handle) and time.monotonic() < deadline:
        time.sleep(0.05)


def send(handle: dict[str, Any], sig: int) -> None:
    """Send ``sig`` to the process of ``handle`` (not its workers: the server forwards it)."""
    if alive(handle):
        os.kill(handle["pid"], sig)


def listens_on(handle: dict[str, Any], port: int) -> bool:
    """Whether the process group of ``handle`` holds a listening TCP socket on ``port``.

    With two servers sharing a port (SO_REUSEPORT), ``/ping`` may be answered by either;
    this tells that the new one is listening itself.
    """
    group = handle["pid"]
    inodes: set[str] = set()
    for pid in _group_members(group):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    wanted = f"{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as fh:
                next(fh)
                for line in fh:
                    cols = line.split()
                    if cols[3] == "0A" and cols[1].rsplit(":", 1)[1] == wanted and cols[9] in inodes:
                        return True
        except OSError:
            continue
    return False


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _raw_stat(int(entry))
            if stat is not None and int(stat[2]) == pgid:
                members.append(int(entry))
    return members


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) of ``pid``."""
    fields = _raw_stat(pid)
    return None if fields is None else (fields[0], int(fields[19]))


def _raw_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def _start_time(pid: int) -> int | None:
    stat = _stat(pid)
    return None if stat is None else stat[1]


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child, so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
