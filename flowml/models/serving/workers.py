"""Worker processes and the supervisor that starts them, rolls them over and stops them.

The supervisor (the ``flowml models serve`` process) resolves the model URI, fetches the
model's files once, binds the socket, and starts ``--workers`` processes (spawned, so none
inherits another's state). Each worker loads the model itself before it serves, then runs
uvicorn (httptools, uvloop, no access log) on the shared socket.

Roll-over: on SIGHUP, and every ``--watch`` seconds for an alias, the supervisor resolves the
URI again. When the version changed it fetches the new one and tells each worker over its pipe;
the worker loads it on a background thread while it keeps answering with the old one, then
swaps it in (one attribute assignment), and reports back. A version that fails to load is
reported and the old one keeps serving (a worker that had already swapped it in goes back to
the old one); a worker that dies is replaced.

Each worker answers ``/version`` for the whole server: on every change the supervisor tells
all workers which version each of them serves and which versions failed to load (why, when),
so a deploy can wait until every worker serves the new version, and fail at once when it does
not load, whichever worker its request reaches.
"""

from __future__ import annotations

import gc
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import threading
import time
from typing import Callable

from flowml.models.errors import ModelError
from flowml.models.serving.served import ModelInfo
from flowml.models.serving.watch import Downloads, Resolver

_spawn = multiprocessing.get_context("spawn")
multiprocessing.allow_connection_pickling()  # the listening socket travels to the spawned workers
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
START_TIMEOUT = 300.0  # seconds a worker may take to load the model at start
# Set to 1 by flowml.deployments, so that a new server can start beside a running one (see _bind).
REUSE_PORT_ENV = "FLOWML_REUSE_PORT"


def serve(uri: str, host: str = "127.0.0.1", port: int = 5001, workers: int = 1, watch: float | None = None,
          tracking_uri: str | None = None, echo: Callable[[str], None] = print) -> None:
    """Serve ``uri`` until SIGTERM or SIGINT (see the module's documentation).

    Raises:
        ModelError: a URI that names no model, a model that does not load, ``watch`` on a URI
            that cannot move, or an address that cannot be bound.
    """
    resolver = Resolver(uri, tracking_uri)
    if watch is not None and not resolver.movable:
        raise ModelError(f"--watch needs a URI that can name another version later (models:/<name>@<alias>, "
                         f"models:/<name>/latest); '{uri}' names one model for good")
    downloads = Downloads(tracking_uri)
    try:
        info = resolver.resolve()
        supervisor = Supervisor(resolver, _bind(host, port), workers, downloads, watch, echo)
        supervisor.handle_signals()
        if not supervisor.start(downloads.fetch(info), info):
            return
        bound_host, bound_port = supervisor.sock.getsockname()[:2]
        echo(f"serving {uri}{_version(info)} on http://{bound_host}:{bound_port} with {workers} "
             f"worker{'s' if workers > 1 else ''}" + (f", watching every {watch:g} s" if watch else ""))
        supervisor.run()
    finally:
        downloads.close()


def _version(info: ModelInfo) -> str:
    return f" (version {info.version})" if info.version is not None else ""


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket the workers share. With ``FLOWML_REUSE_PORT=1`` it is bound with
    SO_REUSEPORT, so that a new server can start on the port of a running one (both set it) and
    take over when the old one stops: how ``flowml deployments`` replaces a server without a gap.

    It is bound here, not listening: the workers' event loops start listening once every worker
    has loaded the model (a worker waits for the supervisor's first report, sent then). So no
    connection waits on a server whose model may yet fail to load (beside an old server on the
    same port, the kernel would route new connections to it, and they would be reset), and a
    process listening on the port is one that can answer, ``/version`` for all its workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if os.environ.get(REUSE_PORT_ENV) == "1" and hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ModelError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


class Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, sock: socket.socket, path: str, info: ModelInfo, threads: int) -> None:
        self.conn, child = _spawn.Pipe()
        self.process = _spawn.Process(target=worker_main, args=(sock, path, info, child, threads),
                                      name="flowml-serve-worker")
        self.process.start()
        child.close()
        self.info: ModelInfo | None = None  # the version it serves, once it said so

    def send(self, path: str, info: ModelInfo) -> None:
        """Tell the worker to load and serve the version ``info`` from ``path``."""
        self._post(("load", path, info))

    def tell(self, fleet: dict) -> None:
        """Tell the worker what the whole server serves, for its ``/version`` answers."""
        self._post(("fleet", fleet))

    def _post(self, message: tuple) -> None:
        try:
            self.conn.send(message)
        except OSError:  # it just died: the supervisor replaces it
            pass

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()  # SIGTERM: uvicorn finishes the requests in flight


class Supervisor:
    """Starts the workers, rolls them over to new versions, replaces dead ones, stops them."""

    def __init__(self, resolver: Resolver, sock: socket.socket, count: int, downloads: Downloads,
                 watch: float | None, echo: Callable[[str], None]) -> None:
        self.resolver, self.uri, self.sock, self.count = resolver, resolver.uri, sock, count
        self.downloads, self.watch, self.echo = downloads, watch, echo
        self.threads = str(max(1, (os.cpu_count() or 1) // count))
        self.workers: list[Worker] = []
        self.path = ""  # the files of self.info: what a replacement worker loads
        self.info: ModelInfo | None = None  # what every worker serves
        self.paths: dict[ModelInfo, str] = {}  # the files of each version sent to the workers
        # versions that did not load, with why and when (as /version reports them): not retried until SIGHUP
        self.failed: dict[ModelInfo, dict] = {}
        self.stopping = False
        self.reload = False

    def handle_signals(self) -> None:
        """SIGTERM and SIGINT stop the server (its workers first), SIGHUP re-resolves the URI."""
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hangup)

    def start(self, path: str, info: ModelInfo) -> bool:
        """Start the workers and wait until each has loaded the model; False if told to stop meanwhile."""
        self.path, self.info = path, info
        self.workers = [Worker(self.sock, path, info, self.threads) for _ in range(self.count)]
        deadline = time.monotonic() + START_TIMEOUT
        waiting = list(self.workers)
        while waiting:
            ready = multiprocessing.connection.wait([w.conn for w in waiting], timeout=0.2)
            if self.stopping:
                self.stop()
                return False
            if not ready and time.monotonic() > deadline:
                self.stop()
                raise ModelError(f"the model {self.uri} did not load within {START_TIMEOUT:g} s")
            for worker in [w for w in waiting if w.conn in ready]:
                status, detail = _receive(worker)
                if status != "ready":
                    self.stop()
                    why = detail[1] if status == "failed" else "a worker exited while loading it"
                    raise ModelError(f"cannot serve {self.uri}: {why}")
                worker.info = info
                waiting.remove(worker)
        self._broadcast()
        return True

    def run(self) -> None:
        """Supervise until SIGTERM or SIGINT; SIGHUP re-resolves the URI."""
        next_check = time.monotonic() + self.watch if self.watch else None
        try:
            while not self.stopping:
                self._tend(0.2)
                now = time.monotonic()
                if self.reload or (next_check is not None and now >= next_check):
                    forced, self.reload = self.reload, False
                    self.check(forced)
                    next_check = now + self.watch if self.watch else None
        finally:
            self.stop()

    def check(self, forced: bool = False) -> None:
        """Resolve the URI again and send a changed version to the workers. ``forced`` (SIGHUP)
        retries a version that failed, and reloads a URI outside the registry even if unchanged."""
        from flowml.errors import FlowmlError

        try:
            info = self.resolver.resolve()
            reload = forced and self.resolver.parts is None
            if (info == self.info and not reload) or (info in self.failed and not forced):
                return
            self.failed.pop(info, None)
            path = self.downloads.fetch(info)
        except FlowmlError as exc:
            self.echo(f"warning: cannot re-resolve {self.uri}, still serving{_version(self.info)}: {exc}")
            return
        self.echo(f"loading {info.source}{_version(info)} in {len(self.workers)} worker(s)")
        self.paths[info] = path
        for worker in self.workers:
            worker.send(path, info)

    def _tend(self, timeout: float) -> None:
        """Read the workers' reports and replace the dead ones."""
        handles = [w.conn for w in self.workers] + [w.process.sentinel for w in self.workers]
        ready = multiprocessing.connection.wait(handles, timeout=timeout)
        for worker in list(self.workers):
            if worker.conn in ready:
                status, detail = _receive(worker)
                self._report(worker, status, detail)
            if worker.process.sentinel in ready and not self.stopping:
                self._replace(worker)

    def _replace(self, worker: Worker) -> None:
        """Start another worker on the version every worker serves, unless the dead one never
        became ready (a model that no longer loads would be restarted for ever)."""
        worker.process.join()
        index = self.workers.index(worker)
        if worker.info is None:
            del self.workers[index]
            self.echo(f"error: worker {worker.process.pid} exited before it was ready; {len(self.workers)} left")
            self.stopping = self.stopping or not self.workers
            return
        self.echo(f"warning: worker {worker.process.pid} exited ({worker.process.exitcode}); starting another")
        self.workers[index] = Worker(self.sock, self.path, self.info, self.threads)
        self._broadcast()

    def _report(self, worker: Worker, status: str, detail) -> None:
        if status == "ready":
            worker.info = detail
            if detail in self.failed and detail != self.info:  # another worker could not load it
                worker.send(self.path, self.info)
            elif all(w.info == detail for w in self.workers) and detail != self.info:
                self.info, self.path = detail, self.paths.get(detail, self.path)
                self.echo(f"now serving {self.uri}{_version(detail)}")
        elif status == "failed":
            info, message = detail
            if info in self.failed:
                return
            self.failed[info] = {"model_version": info.version, "model_source": info.source, "error": message,
                                 "at": time.time()}
            self.echo(f"warning: {info.source}{_version(info)} did not load, still serving"
                      f"{_version(self.info)}: {message}")
            if info != self.info:  # one version for the whole server: a worker that took it in goes back
                for other in self.workers:
                    if other.info == info:
                        other.send(self.path, self.info)
        else:
            return
        self._broadcast()

    def fleet(self) -> dict:
        """What ``/version`` reports for the whole server: the version each worker serves (none
        yet for one still loading) and the versions that failed to load."""
        return {"workers": [{"pid": w.process.pid, "model_version": w.info.version if w.info else None,
                             "model_source": w.info.source if w.info else None} for w in self.workers],
                "failed": list(self.failed.values())}

    def _broadcast(self) -> None:
        fleet = self.fleet()
        for worker in self.workers:
            worker.tell(fleet)

    def _on_stop(self, signum, frame) -> None:
        self.stopping = True

    def _on_hangup(self, signum, frame) -> None:
        self.reload = True

    def stop(self) -> None:
        """SIGTERM every worker, then wait (SIGKILL what is left after 10 s)."""
        self.stopping = True
        for worker in self.workers:
            worker.stop()
        deadline = time.monotonic() + 10
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
        self.sock.close()


def _receive(worker: Worker) -> tuple[str, object]:
    """A worker's report: ("ready", info), ("failed", (info, message)), or ("exited", None)."""
    try:
        return worker.conn.recv()
    except (EOFError, OSError):
        return "exited", None


# the worker process --------------------------------------------------------------------------

def worker_main(sock: socket.socket, path: str, info: ModelInfo, conn, threads: str) -> None:
    """A worker: load the model, wait for the supervisor's first report on the whole server
    (sent once every worker is ready), then serve on ``sock`` while listening for new versions.

    What loading leaves in memory (the libraries, the model) is frozen out of the cyclic garbage
    collector: otherwise every full collection walks those millions of objects, and decoding a
    10,000-row request (tens of thousands of new lists) triggers several of them: 18 ms a
    request instead of 5.
    """
    for variable in _THREAD_VARIABLES:  # before numpy is imported: the workers share the cores
        os.environ.setdefault(variable, threads)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the supervisor acts on SIGHUP, not each worker
    import uvicorn

    from flowml.models.serving.app import ScoringApp
    from flowml.models.serving.served import load

    try:
        app = ScoringApp(load(path, info))
    except Exception as exc:  # reported to the supervisor, which says it to the user
        conn.send(("failed", (info, f"{type(exc).__name__}: {exc}")))
        return
    gc.collect()
    gc.freeze()
    conn.send(("ready", info))
    while not app.fleet:
        if not _obey(conn, app):
            return
    threading.Thread(target=_listen, args=(conn, app), name="flowml-model-loader", daemon=True).start()
    config = uvicorn.Config(app, lifespan="off", ws="none", log_level="warning", access_log=False, backlog=2048,
                            server_header=False, date_header=False)
    uvicorn.Server(config).run(sockets=[sock])


def _listen(conn, app) -> None:
    """Obey the supervisor until it is gone, then stop serving."""
    while _obey(conn, app):
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def _obey(conn, app) -> bool:
    """Act on the supervisor's next message: load a version, swap it in and say so, or take its
    report on the whole server into ``/version``. False once the supervisor is gone."""
    from flowml.models.serving.served import load

    try:
        message = conn.recv()
    except (EOFError, OSError):
        return False
    if message[0] == "fleet":
        app.describe(message[1])
        return True
    _, path, info = message
    try:
        served = load(path, info)
    except Exception as exc:
        conn.send(("failed", (info, f"{type(exc).__name__}: {exc}")))
        return True
    gc.freeze()
    app.swap(served)
    conn.send(("ready", info))
    return True
