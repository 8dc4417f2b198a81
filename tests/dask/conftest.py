"""A real ``dask scheduler`` and ``dask worker`` processes, each started in its own empty folder
on 127.0.0.1 (one thread each, so that two ready steps land on different workers), and a flowml
server as the tracking store: what the Dask executor's tests run against.

``cluster`` is module-scoped (as is ``server``, from tests/conftest.py); ``running_cluster`` starts a cluster of a test's
own (one whose workers it kills); ``dask_run`` is ``flowml run --json --executor dask`` in a
project against a cluster.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.environments.conftest import build_wheel
from tests.servers import free_port, stop_group


@dataclass
class Cluster:
    address: str
    folders: list[Path]
    processes: list[subprocess.Popen]

    def transitions(self) -> int:
        """How many task state changes the scheduler has seen: it grows with every submission."""
        from distributed import Client

        with Client(self.address, timeout=10, set_as_default=False) as client:
            return client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)

    def executed(self) -> dict[Path, set[str]]:
        """The keys of the flowml steps each worker has run to the end, by the worker's folder."""
        from distributed import Client

        def ran(dask_worker) -> tuple[str, set[str]]:
            return dask_worker.local_directory, {str(key) for key, _, finish, *_ in dask_worker.state.log
                                                 if finish == "memory" and str(key).startswith("flowml-step-")}

        with Client(self.address, timeout=10, set_as_default=False) as client:
            found = client.run(ran).values()
        return {next(f for f in self.folders if where.startswith(str(f))): keys for where, keys in found}


@contextlib.contextmanager
def running_cluster(base: Path, workers: int = 2, env: dict | None = None, worker_args: tuple[str, ...] = ()):
    """A scheduler and ``workers`` single-threaded workers (started with ``worker_args`` too),
    each process in its own empty folder (with ``env`` and, as FLOWML_ENV_DIR, its own folder of
    python environments)."""
    address = f"tcp://127.0.0.1:{free_port()}"
    processes = []

    def start(folder: Path, *args: str) -> None:
        folder.mkdir()
        with open(folder / "process.log", "wb") as log:
            processes.append(subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=folder, stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True,
                                              env={**os.environ, **(env or {}), "FLOWML_ENV_DIR": str(folder / "envs")}))

    folders = [base / f"worker-{i}" for i in range(1, workers + 1)]
    try:
        start(base / "scheduler", "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
              "--no-dashboard")
        for folder in folders:
            start(folder, "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny",
                  "--no-dashboard", "--local-directory", str(folder), *worker_args)
        _wait_for_workers(address, workers)
        yield Cluster(address, folders, processes)
    finally:
        for proc in reversed(processes):
            stop_group(proc)


def _wait_for_workers(address: str, count: int, timeout: float = 60) -> None:
    from distributed import Client

    with Client(address, timeout=timeout, set_as_default=False) as client:
        client.wait_for_workers(count, timeout=timeout)


def dask_run(project, cluster: Cluster, *args: str, env: dict | None = None) -> dict:
    """``flowml run --json --executor dask`` against ``cluster`` (with ``project.env`` unless ``env``)."""
    return project.run_json("--executor", "dask", "--scheduler", cluster.address, *args, env=env or project.env)


@pytest.fixture(scope="module")
def pip_offline(tmp_path_factory) -> dict[str, str]:
    """pip's settings (which uv environments follow) offering one local wheel, flowtiny 1.0."""
    folder = tmp_path_factory.mktemp("wheels")
    build_wheel(folder, "flowtiny", "1.0", "VALUE = 1\n")
    (folder / "pip.conf").write_text("[global]\nno-index = true\n")
    return {"PIP_CONFIG_FILE": str(folder / "pip.conf"), "PIP_FIND_LINKS": str(folder),
            "UV_CACHE_DIR": str(folder / "uv-cache")}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, pip_offline):
    with running_cluster(tmp_path_factory.mktemp("dask"), env=pip_offline) as started:
        yield started


def tiny_env_pipeline(name: str) -> str:
    """A one-step pipeline whose step runs in a python (uv) environment of ``flowtiny`` (the
    version its requirements.txt pins, or the index's newest) and writes flowtiny.VALUE."""
    return f"""\
        name: {name}
        environments:
          tiny: {{python: {{requirements: requirements.txt}}}}
        steps:
          use:
            run: python -c "import flowtiny; open('value.txt', 'w').write(str(flowtiny.VALUE))"
            env: tiny
            inputs: [requirements.txt]
            outputs: [value.txt]
        """
