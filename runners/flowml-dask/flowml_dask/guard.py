"""What a Dask worker runs a step's command under, so that the step dies with the worker.

``python -I -S guard.py WORKER_PID WORKSPACE -- COMMAND...``: the guard leads the step's process
group (the worker starts it in a session of its own) and runs the command in that group. When
the worker goes away (killed, out of memory), Dask runs the step again on another worker; the
first attempt must not run on, orphaned, writing into a workspace nobody will read. So when the
guard's parent dies, a cleaner in a session of its own stops the group (SIGTERM, then SIGKILL
after a grace period, as a local run's Ctrl-C does) and removes the workspace.

Linux tells the guard at once (``PR_SET_PDEATHSIG``); elsewhere it looks at its parent every
second. While the worker lives the guard is transparent: it waits for the command, ignoring
the SIGTERM that stopping the group sends it (the command got one too and is given its grace),
and ends as the command did, with its exit status or its signal.

A file run with ``-I -S`` rather than a module: the step's environment may name another Python
(``PYTHONPATH``, a virtual environment), and the guard needs nothing but the standard library.
"""

from __future__ import annotations

import os
import signal
import sys
import time

GRACE_SECONDS = 5.0
PARENT_GONE = signal.SIGUSR1  # what the kernel sends the guard when its parent dies
PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    parent, workspace, command = int(argv[0]), argv[1], argv[3:]
    if os.getpgrp() != os.getpid():  # started outside a session of its own: stop no one else's group
        os.setpgid(0, 0)
    signal.signal(signal.SIGTERM, lambda *_: None)  # the command has it too; wait for the command
    signal.signal(PARENT_GONE, lambda *_: _parent_gone(parent, workspace))
    if not _signal_on_parent_death():
        import threading

        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # it died before the guard could hear of it
        _parent_gone(parent, workspace)
    try:
        child = os.posix_spawnp(command[0], command, os.environ)  # not subprocess: 20 ms less to import
    except OSError as exc:
        print(f"cannot start {command[0]}: {exc}", file=sys.stderr)
        return 127
    status = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
    if status < 0:  # end as the command did, by its signal
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
    return status


def _signal_on_parent_death() -> bool:
    """Ask Linux for :data:`PARENT_GONE` when the parent dies; False where it cannot."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, PARENT_GONE) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os.kill(os.getpid(), PARENT_GONE)


def _parent_gone(parent: int, workspace: str) -> None:
    """Stop the process group and remove the workspace, from a process outside the group (the
    guard is in it and dies with it)."""
    if os.getppid() == parent or os.fork() != 0:  # a stray signal; or the guard, waiting to be stopped
        return
    try:
        group = os.getpgrp()
        os.setsid()
        for sig, wait in ((signal.SIGTERM, GRACE_SECONDS), (signal.SIGKILL, 0.0)):
            deadline = time.monotonic() + wait
            os.killpg(group, sig)
            while time.monotonic() < deadline:
                time.sleep(0.1)
                os.killpg(group, 0)
    except ProcessLookupError:  # the group is gone
        pass
    finally:
        import shutil

        shutil.rmtree(workspace, ignore_errors=True)
        os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
