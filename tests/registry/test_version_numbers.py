"""Version numbers under concurrency: processes (``python -c``) and threads registering at
once, started together from a go file, get distinct consecutive numbers; registering the same
content at once makes one version. On SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from flowml.registry.entities import Lineage

PROCESSES, EACH = 3, 8

WRITER = """
import os, sys, time
from flowml.registry import RegistryClient

uri, name, tag, count, digest, go = sys.argv[1:]
client = RegistryClient(uri, root=os.getcwd())
while not os.path.exists(go):
    time.sleep(0.005)
for i in range(int(count)):
    content = digest or f"{tag}-{i}"  # the same digest everywhere, or one of its own per version
    print(client.register(f"s3://bucket/{tag}/{i}", name, content_digest=content).version, flush=True)
"""


def _writers(store_uri: str, name: str, tmp_path, digest: str = "") -> tuple[list[subprocess.Popen], object]:
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, store_uri, name, str(tag), str(EACH), digest, str(go)],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for tag in range(PROCESSES)]
    time.sleep(1.0)  # let them import and open the store, then start them together
    go.touch()
    return procs, go


def _numbers(procs: list[subprocess.Popen]) -> list[int]:
    numbers = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        numbers.extend(int(n) for n in out.split())
    return numbers


def test_processes_creating_a_model_and_versions_at_once_get_consecutive_numbers(store_uri, tmp_path, new_name,
                                                                                 registry):
    name = new_name()  # not created yet: the writers race to create it too
    numbers = _numbers(_writers(store_uri, name, tmp_path)[0])
    assert sorted(numbers) == list(range(1, PROCESSES * EACH + 1))
    versions = registry.search_model_versions(f"name = '{name}'")[0]
    assert sorted(v.version for v in versions) == list(range(1, PROCESSES * EACH + 1))


def test_the_same_content_registered_at_once_is_one_version(store_uri, tmp_path, new_name, registry):
    name = new_name()
    numbers = _numbers(_writers(store_uri, name, tmp_path, digest="same-content")[0])
    assert set(numbers) == {1}
    assert [v.version for v in registry.search_model_versions(f"name = '{name}'")[0]] == [1]


def test_threads_sharing_one_store(registry, name):
    numbers: list[int] = []
    errors: list[Exception] = []
    start = threading.Barrier(4)

    def register(tag: int) -> None:
        start.wait()
        try:
            for i in range(EACH):
                numbers.append(registry.create_model_version(name, f"/m/{tag}/{i}",
                                                             lineage=Lineage(content_digest=f"{tag}-{i}")).version)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(tag,)) for tag in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sorted(numbers) == list(range(1, 4 * EACH + 1))
