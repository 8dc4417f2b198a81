"""The artifact proxy over real HTTP: a ``flowml server`` subprocess (``server``, from conftest) and
httpx, raw sockets for what clients normally cannot send, and flowml's HttpArtifactRepository."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest

from flowml.artifacts import repository
from flowml.artifacts.http import HttpArtifactRepository
from flowml.errors import TrackingError

PROXY = "/api/2.0/mlflow-artifacts/artifacts"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def put(http, path: str, data: bytes = b"x") -> httpx.Response:
    return http.put(f"{PROXY}/{quote(path)}", content=data)


def listing(http, path: str | None = None, prefix: str = "/api/2.0/mlflow-artifacts") -> dict:
    reply = http.get(f"{prefix}/artifacts", params={} if path is None else {"path": path})
    assert reply.status_code == 200, reply.text
    return reply.json()


def names(http, path: str) -> list[tuple[str, bool, int | None]]:
    return [(f["path"], f["is_dir"], f.get("file_size")) for f in listing(http, path).get("files", [])]


def vm_hwm_kb(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


# round trips ----------------------------------------------------------------------------

def test_upload_download_list_delete(http, server):
    assert put(http, "rt/file.txt", b"hello").json() == {}
    reply = http.get(f"{PROXY}/rt/file.txt")
    assert reply.status_code == 200 and reply.content == b"hello"
    assert reply.headers["content-length"] == "5"
    assert (server.artifacts / "rt/file.txt").read_bytes() == b"hello"
    assert listing(http, "rt") == {"files": [{"path": "file.txt", "is_dir": False, "file_size": 5}]}
    assert put(http, "rt/file.txt", b"replaced").status_code == 200
    assert http.get(f"{PROXY}/rt/file.txt").content == b"replaced"
    assert http.delete(f"{PROXY}/rt/file.txt").json() == {}
    assert http.get(f"{PROXY}/rt/file.txt").status_code == 404
    assert listing(http, "rt") == {}  # MLflow's reply for an empty folder: no "files" at all
    assert http.delete(f"{PROXY}/rt/file.txt").json() == {}  # deleting what is gone is fine, as in MLflow


def test_nested_folders(http):
    for path in ("nest/a/b/c/d.txt", "nest/a/b/e.txt", "nest/a/f.txt"):
        assert put(http, path, path.encode()).status_code == 200
    assert names(http, "nest") == [("a", True, None)]
    assert names(http, "nest/a") == [("b", True, None), ("f.txt", False, len("nest/a/f.txt"))]
    assert names(http, "nest/a/b") == [("c", True, None), ("e.txt", False, len("nest/a/b/e.txt"))]
    assert names(http, "nest/a/b/c") == [("d.txt", False, len("nest/a/b/c/d.txt"))]
    assert names(http, "nest/a/b/") == names(http, "nest/a/b")
    assert http.get(f"{PROXY}/nest/a/b/c/d.txt").content == b"nest/a/b/c/d.txt"
    assert http.delete(f"{PROXY}/nest/a/b").status_code == 200
    assert names(http, "nest/a") == [("f.txt", False, len("nest/a/f.txt"))]


def test_the_root_and_missing_paths(http):
    assert put(http, "top.txt", b"t").status_code == 200
    assert ("top.txt", False, 1) in [(f["path"], f["is_dir"], f.get("file_size")) for f in listing(http)["files"]]
    assert listing(http, "no/such/folder") == {}
    assert listing(http, "top.txt") == {}  # a file lists as nothing, as MLflow's local repository does
    missing = http.get(f"{PROXY}/no/such/file.bin")
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    for method in ("GET", "PUT", "DELETE"):
        reply = http.request(method, f"{PROXY}/")
        assert reply.status_code == 400, (method, reply.text)
        assert reply.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_folders_and_files_do_not_replace_each_other(http, server):
    assert put(http, "kinds/dir/inner.txt").status_code == 200
    on_folder = put(http, "kinds/dir", b"would hide a folder")
    assert on_folder.status_code == 400 and "folder" in on_folder.json()["message"]
    under_file = put(http, "kinds/dir/inner.txt/deeper.txt")
    assert under_file.status_code == 400 and under_file.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert put(http, "kinds/new-folder/").status_code == 400  # a trailing slash names a folder
    assert not (server.artifacts / "kinds/new-folder").exists()
    folder = http.get(f"{PROXY}/kinds/dir")
    assert folder.status_code == 400 and "folder" in folder.json()["message"]


def test_empty_files_odd_names_and_the_ajax_prefix(http):
    assert put(http, "odd/empty.bin", b"").status_code == 200
    reply = http.get(f"{PROXY}/odd/empty.bin")
    assert reply.status_code == 200 and reply.content == b""
    name = "dir with space/ünïcødé 100%.txt"
    assert put(http, f"odd/{name}", "é".encode()).status_code == 200
    reply = http.get(f"{PROXY}/odd/{quote(name)}")
    assert reply.content == "é".encode()
    assert "filename*=UTF-8''" + quote("ünïcødé 100%.txt", safe="") in reply.headers["content-disposition"]
    assert names(http, "odd/dir with space") == [("ünïcødé 100%.txt", False, 2)]
    ajax = "/ajax-api/2.0/mlflow-artifacts"
    assert http.put(f"{ajax}/artifacts/odd/ajax.txt", content=b"ajax").status_code == 200
    assert http.get(f"{ajax}/artifacts/odd/ajax.txt").content == b"ajax"
    assert ("ajax.txt", False, 4) in [(f["path"], f["is_dir"], f.get("file_size"))
                                      for f in listing(http, "odd", ajax)["files"]]


@pytest.mark.parametrize("name, body", [("page.html", b"<html><script>alert(1)</script></html>"),
                                        ("image.svg", b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"),
                                        ("script.js", b"alert(1)"), ("data.json", b"{}")])
def test_downloads_are_never_rendered(http, name, body):
    put(http, f"headers/{name}", body)
    reply = http.get(f"{PROXY}/headers/{name}")
    assert reply.content == body
    assert reply.headers["content-type"] == "application/octet-stream"
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert reply.headers["content-disposition"].startswith(f'attachment; filename="{name}"')


# a run's artifacts (service.proto's artifacts/list) ----------------------------------------

def test_run_artifacts_list(http, server):
    exp = http.post("/api/2.0/mlflow/experiments/create", json={"name": "proxy-list"}).json()["experiment_id"]
    run = http.post("/api/2.0/mlflow/runs/create", json={"experiment_id": exp}).json()["run"]["info"]
    root = run["artifact_uri"]
    assert root == f"mlflow-artifacts:/{exp}/{run['run_id']}/artifacts"
    base = root.split(":", 1)[1].lstrip("/")
    put(http, f"{base}/model/MLmodel", b"flavors: {}")
    put(http, f"{base}/metrics.json", b"{}")
    for prefix in ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow"):
        reply = http.get(f"{prefix}/artifacts/list", params={"run_id": run["run_id"]}).json()
        assert reply == {"root_uri": root, "files": [{"path": "metrics.json", "is_dir": False, "file_size": 2},
                                                     {"path": "model", "is_dir": True}]}
    inner = http.get("/api/2.0/mlflow/artifacts/list", params={"run_uuid": run["run_id"], "path": "model"}).json()
    assert inner["files"] == [{"path": "model/MLmodel", "is_dir": False, "file_size": 11}]
    empty = http.get("/api/2.0/mlflow/artifacts/list", params={"run_id": run["run_id"], "path": "nothing"}).json()
    assert empty == {"root_uri": root}
    assert http.get("/api/2.0/mlflow/artifacts/list").status_code == 400
    unknown = http.get("/api/2.0/mlflow/artifacts/list", params={"run_id": "f" * 32})
    assert unknown.status_code == 404 and unknown.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    bad = http.get("/api/2.0/mlflow/artifacts/list", params={"run_id": run["run_id"], "path": "../../.."})
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"


# interrupted uploads ----------------------------------------------------------------------

def _start_upload(url: str, path: str, total: int, sent: bytes) -> socket.socket:
    host, port = urlsplit(url).hostname, urlsplit(url).port
    sock = socket.create_connection((host, port))
    sock.sendall(f"PUT {PROXY}/{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {total}\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n".encode() + sent)
    return sock


def _wait_until(predicate, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_a_cut_off_upload_leaves_nothing(http, server):
    assert put(http, "cut/kept.bin", b"old content").status_code == 200
    for target in ("cut/new.bin", "cut/kept.bin"):
        sock = _start_upload(server.url, target, 10 * MB, b"y" * MB)
        folder = server.artifacts / "cut"
        assert _wait_until(lambda: any(".upload-" in p.name for p in folder.iterdir()))  # it was receiving
        sock.close()
        assert _wait_until(lambda: not any(".upload-" in p.name for p in folder.iterdir())), list(folder.iterdir())
    assert sorted(p.name for p in (server.artifacts / "cut").iterdir()) == ["kept.bin"]
    assert http.get(f"{PROXY}/cut/kept.bin").content == b"old content"
    assert http.get(f"{PROXY}/cut/new.bin").status_code == 404


def test_a_killed_server_leaves_no_partial_artifact(tmp_path, server_factory):
    own = server_factory(tmp_path / "killed")
    try:
        with httpx.Client(base_url=own.url) as client:
            assert client.put(f"{PROXY}/k/kept.bin", content=b"old").status_code == 200
        sock = _start_upload(own.url, "k/kept.bin", 10 * MB, b"z" * (2 * MB))
        folder = own.artifacts / "k"
        assert _wait_until(lambda: any(".upload-" in p.name for p in folder.iterdir()))
        os.killpg(own.process.pid, signal.SIGKILL)
        own.process.wait(timeout=10)
        sock.close()
        assert (folder / "kept.bin").read_bytes() == b"old"  # the artifact is the old one, whole
    finally:
        own.stop()
    again = server_factory(tmp_path / "killed")
    try:
        with httpx.Client(base_url=again.url) as client:
            files = client.get(f"{PROXY}", params={"path": "k"}).json()["files"]
            assert files == [{"path": "kept.bin", "is_dir": False, "file_size": 3}]  # the leftover is not listed
    finally:
        again.stop()


# a big file: streamed both ways ---------------------------------------------------------------

CLIENT = """
import json, os, sys, time
from flowml.artifacts import repository
uri, tracking, source, target = sys.argv[1:5]
repo = repository(uri, tracking)
start = time.perf_counter(); repo.log_artifact(source, "big"); up = time.perf_counter() - start
start = time.perf_counter(); path = repo.download_artifacts("big/" + os.path.basename(source), target)
down = time.perf_counter() - start
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"up": up, "down": down, "path": path, "hwm_kb": hwm}))
"""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(MB):
            digest.update(block)
    return digest.hexdigest()


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads peak memory from /proc")
def test_a_200_mb_file_is_streamed_not_held_in_memory(http, server, tmp_path):
    size = 200 * MB
    source = tmp_path / "big.bin"
    block = os.urandom(MB)
    with open(source, "wb") as fh:
        for i in range(size // MB):
            fh.write(i.to_bytes(8, "little") + block[8:])
    before = vm_hwm_kb(server.process.pid)

    # raw HTTP first (httpx streaming from a generator, and to a file)
    def chunks():
        with open(source, "rb") as fh:
            while data := fh.read(MB):
                yield data

    start = time.perf_counter()
    reply = http.put(f"{PROXY}/big/raw.bin", content=chunks(), headers={"Content-Length": str(size)})
    raw_up = time.perf_counter() - start
    assert reply.status_code == 200, reply.text
    start = time.perf_counter()
    digest = hashlib.sha256()
    with http.stream("GET", f"{PROXY}/big/raw.bin") as stream:
        assert stream.headers["content-length"] == str(size)
        for data in stream.iter_raw(MB):
            digest.update(data)
    raw_down = time.perf_counter() - start
    assert digest.hexdigest() == _sha256(source)

    # flowml's client, in a process of its own so that its memory is measured too
    uri = "mlflow-artifacts:/big/client"
    out = subprocess.run([sys.executable, "-c", CLIENT, uri, server.url, str(source), str(tmp_path / "down")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert _sha256(Path(result["path"])) == _sha256(source)
    assert (server.artifacts / "big/client/big/big.bin").stat().st_size == size

    after = vm_hwm_kb(server.process.pid)
    mb_s = lambda seconds: size / MB / seconds  # noqa: E731
    print(f"\n200 MB over HTTP on 127.0.0.1: raw httpx upload {mb_s(raw_up):.0f} MB/s, download "
          f"{mb_s(raw_down):.0f} MB/s; HttpArtifactRepository upload {mb_s(result['up']):.0f} MB/s, download "
          f"{mb_s(result['down']):.0f} MB/s; server peak RSS {before // 1024} -> {after // 1024} MB, "
          f"client peak RSS {result['hwm_kb'] // 1024} MB")
    assert after < 150 * 1024, f"server peak RSS {after // 1024} MB for a {size // MB} MB file"
    assert after - before < 50 * 1024
    assert result["hwm_kb"] < 150 * 1024


# flowml's client ----------------------------------------------------------------------------

def test_http_artifact_repository_round_trip(server, tmp_path):
    exp = httpx.post(f"{server.url}/api/2.0/mlflow/experiments/create", json={"name": "repo-rt"}).json()
    run = httpx.post(f"{server.url}/api/2.0/mlflow/runs/create",
                     json={"experiment_id": exp["experiment_id"]}).json()["run"]["info"]
    repo = repository(run["artifact_uri"], server.url)
    assert isinstance(repo, HttpArtifactRepository)

    single = tmp_path / "one.txt"
    single.write_text("one")
    folder = tmp_path / "tree"
    (folder / "sub/deeper").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub/b.txt").write_text("bb")
    (folder / "sub/deeper/c.bin").write_bytes(b"\0" * 1000)
    repo.log_artifact(str(single))
    repo.log_artifact(str(single), "docs/more")
    repo.log_artifacts(str(folder), "tree")
    repo.write_bytes("notes/readme.md", b"# notes")

    listed = {(i.path, i.is_dir, i.file_size) for i in repo.list_artifacts()}
    assert listed == {("one.txt", False, 3), ("docs", True, None), ("tree", True, None), ("notes", True, None)}
    assert [(i.path, i.is_dir) for i in repo.list_artifacts("tree/sub")] == [("tree/sub/b.txt", False),
                                                                             ("tree/sub/deeper", True)]
    listed_by_server = httpx.get(f"{server.url}/api/2.0/mlflow/artifacts/list",
                                 params={"run_id": run["run_id"], "path": "tree/sub"}).json()["files"]
    assert [f["path"] for f in listed_by_server] == ["tree/sub/b.txt", "tree/sub/deeper"]

    copy = repo.download_artifacts("tree", str(tmp_path / "dl"))
    assert copy == str(tmp_path / "dl" / "tree")
    assert (Path(copy) / "sub/deeper/c.bin").read_bytes() == b"\0" * 1000
    assert (Path(copy) / "sub/b.txt").read_text() == "bb"
    one = repo.download_artifacts("docs/more/one.txt", str(tmp_path / "dl1"))
    assert Path(one).read_text() == "one"
    everything = repo.download_artifacts("", str(tmp_path / "all"))
    assert (Path(everything) / "notes/readme.md").read_bytes() == b"# notes"
    assert not any(".download-" in p.name for p in (tmp_path / "all").rglob("*"))

    with pytest.raises(TrackingError) as missing:
        repo.download_artifacts("no/such.txt", str(tmp_path / "x"))
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(TrackingError, match="invalid artifact path"):
        repo.write_bytes("../escape.txt", b"x")
    repo.delete_artifacts("tree/sub")
    assert [i.path for i in repo.list_artifacts("tree")] == ["tree/a.txt"]

    # the same run's files through the http(s) form of the URI, as MLflow resolves it
    http_uri = f"{server.url}{PROXY}/{run['artifact_uri'].split(':', 1)[1].lstrip('/')}"
    assert [i.path for i in repository(http_uri).list_artifacts("notes")] == ["notes/readme.md"]


def test_repository_picks_the_proxy_by_uri(monkeypatch):
    monkeypatch.delenv("FLOWML_TRACKING_URI", raising=False)
    with pytest.raises(TrackingError, match="tracking URI"):
        repository("mlflow-artifacts:/1/abc/artifacts")
    monkeypatch.setenv("FLOWML_TRACKING_URI", "http://tracking:5000/")
    repo = repository("mlflow-artifacts:/1/abc/artifacts")
    assert (repo.base, repo.root) == ("http://tracking:5000", "1/abc/artifacts")
    repo = repository("mlflow-artifacts://other:6000/2/x/artifacts", "http://tracking:5000")
    assert (repo.base, repo.root) == ("http://other:6000", "2/x/artifacts")
    repo = repository("https://host/prefix/api/2.0/mlflow-artifacts/artifacts/3/y/artifacts")
    assert (repo.base, repo.root) == ("https://host/prefix", "3/y/artifacts")
    with pytest.raises(TrackingError, match="not supported"):
        repository("s3://bucket/1/abc/artifacts")
    with pytest.raises(TrackingError, match="not supported"):
        repository("https://example.com/some/file")
