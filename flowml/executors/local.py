"""The local executor: each step is a subprocess in its own process group.

A process group (a new session) lets a timeout or Ctrl-C stop the step and everything it
started, not only the shell in front: SIGTERM first, SIGKILL after a grace period.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

from flowml.executors import Executor, ProcessResult, Task

GRACE_SECONDS = 5.0


class LocalExecutor(Executor):
    def __init__(self, grace: float = GRACE_SECONDS) -> None:
        self.grace = grace
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._killing = False

    def run(self, task: Task) -> ProcessResult:
        start = time.perf_counter()
        with open(task.stdout, "ab") as out, open(task.stderr, "ab") as err:
            with self._lock:
                if self._killing:
                    return ProcessResult(None, 0.0, killed=True)
                try:
                    proc = subprocess.Popen(task.argv, cwd=task.cwd, env=task.env, stdin=subprocess.DEVNULL,
                                            stdout=out, stderr=err, start_new_session=True,
                                            pass_fds=task.pass_fds)
                except OSError as exc:
                    return ProcessResult(None, time.perf_counter() - start, error=f"cannot start: {exc}")
                self._procs.add(proc)
            try:
                proc.wait(timeout=task.timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
                self._stop(proc)
            finally:
                with self._lock:
                    self._procs.discard(proc)
        return ProcessResult(proc.returncode, time.perf_counter() - start, timed_out=timed_out,
                             killed=self._killing and not timed_out)

    def kill_all(self) -> None:
        with self._lock:
            self._killing = True
            procs = list(self._procs)
        threads = [threading.Thread(target=self._stop, args=(p,)) for p in procs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _stop(self, proc: subprocess.Popen) -> None:
        """SIGTERM the process group, then SIGKILL it if it outlives the grace period."""
        for sig, wait in ((signal.SIGTERM, self.grace), (signal.SIGKILL, None)):
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(timeout=wait)
                if sig == signal.SIGTERM:
                    _killpg_quietly(proc.pid)
                return
            except subprocess.TimeoutExpired:
                continue


def _killpg_quietly(pgid: int) -> None:
    """Children that ignored SIGTERM while the leader exited still go."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
