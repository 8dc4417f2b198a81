"""Path traversal: the payload shapes of MLflow's artifact CVEs, sent raw over HTTP to every route
that takes a path (the proxy's GET, PUT, DELETE and list, and artifacts/list), all refused, with
nothing read, written or deleted outside the artifacts destination; and the checks themselves
(``flowml.server.security``) on their own.

The shapes come from MLflow's history: plain and nested ``..`` (CVE-2023-1177, CVE-2023-30172's
``get-artifact``), URL-encoded and double-encoded dots and slashes (CVE-2023-6909 and the bypasses
of its fix), Windows separators and drive letters, ``file://`` URIs, ``#`` and ``?`` cutting a
location short (CVE-2024-1483), NUL bytes, symbolic links inside the artifact root, and artifact
locations naming URLs the server would fetch.
"""

from __future__ import annotations

import http.client
import os
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest

from flowml.errors import TrackingError
from flowml.server.security import artifact_path, clean_path, validate_artifact_location, validate_model_source

PROXY = "/api/2.0/mlflow-artifacts/artifacts"
SECRET = "top-secret-content-0451"


# the checks on their own ---------------------------------------------------------------------

@pytest.mark.parametrize("path, clean", [
    (None, ""), ("", ""), (".", ""), ("a", "a"), ("a/b/c.txt", "a/b/c.txt"), ("a/./b", "a/b"), ("dir/", "dir"),
    ("a%20b.txt", "a b.txt"), ("a%252Fb", "a/b"), ("100%.txt", "100%.txt"), ("ünï/cødé", "ünï/cødé"),
    ("..a/b..", "..a/b.."), (".hidden", ".hidden"), ("x/a:b", "x/a:b"),
])
def test_clean_paths(path, clean):
    assert clean_path(path) == clean


@pytest.mark.parametrize("path", [
    "..", "../x", "a/../b", "a/..", "%2e%2e", ".%2e/x", "%2e%2e%2fx", "%252e%252e%252fx", "%25252e%25252e%25252fx",
    "..%2fx", "..%5cx", "a\\b", "/etc/passwd", "%2fetc%2fpasswd", "//x", "a//b", "C:\\x", "c:/x", "C:", "file:///etc",
    "file%3a%2f%2f%2fetc", "a\x00b", "a%00b", "a%0ab", "x#/../y", "x%23y", "..;/x", "a;b", "x?y", "x%3fy",
    "\uff0e\uff0e/x", "\u2025/x", "%c0%ae%c0%ae/x", "%ff", "a\ufffdb", "....//x", "...", " /x", "a/ /b",
    "n" * 256, "a/" * 600, "%" + "25" * 10 + "2e",
])
def test_refused_paths(path):
    with pytest.raises(TrackingError) as refused:
        clean_path(path)
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"


def test_symbolic_links_leading_out_are_refused(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "inner").mkdir(parents=True)
    outside.mkdir()
    (root / "out").symlink_to(outside)
    (root / "dangling").symlink_to(outside / "not-yet")
    (root / "in").symlink_to(root / "inner")
    for path in ("out", "out/x", "out/new/deeper", "dangling", "dangling/x"):
        with pytest.raises(TrackingError, match="leads out"):
            artifact_path(str(root), path)
    assert artifact_path(str(root), "in/file") == ("in/file", str(root.resolve() / "in/file"))
    assert artifact_path(str(root), None) == ("", str(root.resolve()))


@pytest.mark.parametrize("location", [
    "http://169.254.169.254/latest/meta-data", "https://evil.example/x", "ftp://evil.example/x", "s3://bucket/x",
    "gs://bucket/x", "hdfs://nn/x", "file:///etc", "file:///tmp#/../../etc", "file:///tmp%23/../../etc",
    "file:///tmp?/../../etc", "file://evil.example/share", "/etc", "/tmp/x/../../etc", "C:\\Windows", "C:/Windows",
    "\\\\server\\share", "mlflow-artifacts://evil.example/x", "mlflow-artifacts:/../../etc",
    "mlflow-artifacts:/%2e%2e/x", "mlflow-artifacts:/%252e%252e/x", "mlflow-artifacts:/a\x00b", "runs:/abc/model",
    "models:/m-1", "mlflow-artifacts:/x;y", "relative/folder",
])
def test_refused_artifact_locations(location, tmp_path):
    with pytest.raises(TrackingError) as refused:
        validate_artifact_location(location, str(tmp_path))
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"


def test_accepted_artifact_locations(tmp_path):
    destination = tmp_path / "art"
    (destination / "inside").mkdir(parents=True)
    (destination / "link-out").symlink_to(tmp_path)
    for ok in ("mlflow-artifacts:/5", "mlflow-artifacts:/team/a", None, ""):
        assert validate_artifact_location(ok) == ok
    for ok in (str(destination / "inside"), f"file://{destination}/inside", f"file://localhost{destination}/new"):
        assert validate_artifact_location(ok, str(destination)) == ok
    for ok in ("runs:/0123abcd/model", "models:/m-0123", "models:/wine/2", "mlflow-artifacts:/1/models/m-1/artifacts",
               str(destination / "inside" / "model"), str(tmp_path / "run" / "model")):
        assert validate_model_source(ok, lambda: [str(destination), str(tmp_path / "run")]) == ok
    for bad in ("runs://host/x/model", "models://host/m-1", "runs:/x/../../etc", "s3://b/m", "/etc",
                f"file://{tmp_path}/run%2f..%2f..%2fetc", "http://evil.example/m"):
        with pytest.raises(TrackingError):
            validate_model_source(bad, lambda: [str(destination), str(tmp_path / "run")])
    with pytest.raises(TrackingError, match="local paths are not accepted"):  # no destination to check against
        validate_artifact_location(str(destination / "inside"))
    with pytest.raises(TrackingError, match="outside"):  # a link inside leading out
        validate_artifact_location(str(destination / "link-out"), str(destination))
    with pytest.raises(TrackingError, match="outside"):  # inside once decoded, outside as written
        validate_artifact_location(str(tmp_path / "ar%74/inside"), str(destination))


# over HTTP -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run(server) -> dict:
    exp = httpx.post(f"{server.url}/api/2.0/mlflow/experiments/create", json={"name": "traversal"}).json()
    return httpx.post(f"{server.url}/api/2.0/mlflow/runs/create",
                      json={"experiment_id": exp["experiment_id"]}).json()["run"]["info"]


@pytest.fixture(scope="module")
def victim(server, run) -> Path:
    """A folder beside the destination with a secret in it, and links to it from inside the
    destination and from inside a run's artifacts."""
    outside = server.artifacts.parent / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "secret.txt").write_text(SECRET)
    run_root = server.artifacts / run["artifact_uri"].split(":", 1)[1].lstrip("/")
    for root in (server.artifacts, run_root):
        root.mkdir(parents=True, exist_ok=True)
        (root / "escape").symlink_to(outside)
        (root / "secret-link").symlink_to(outside / "secret.txt")
        (root / "dangling").symlink_to(outside / "written-through-a-link.txt")
        (root / "legit").mkdir()
        (root / "legit/file.txt").write_text("legit")
    return outside


def corpus(outside: Path) -> list[tuple[str, str]]:
    """``(name, raw path after /artifacts/)``, exactly as sent on the wire."""
    absolute = str(outside)
    return [
        ("dotdot", "../outside/secret.txt"),
        ("dotdot-after-folders", "legit/a/../../../outside/secret.txt"),
        ("dotdot-alone", ".."),
        ("encoded-slash", "..%2Foutside%2Fsecret.txt"),
        ("encoded-dots", "%2e%2e/outside/secret.txt"),
        ("encoded-dots-and-slash", "%2e%2e%2foutside%2fsecret.txt"),
        ("mixed-dot", ".%2e/outside/secret.txt"),
        ("double-encoded", "%252e%252e%252foutside%252fsecret.txt"),
        ("triple-encoded", "%25252e%25252e%25252foutside%25252fsecret.txt"),
        ("backslash", "..\\outside\\secret.txt"),
        ("encoded-backslash", "..%5Coutside%5Csecret.txt"),
        ("absolute", "/" + absolute.lstrip("/") + "/secret.txt"),  # //tmp/... on the wire
        ("encoded-absolute", quote(absolute + "/secret.txt", safe="")),
        ("file-uri", f"file://{absolute}/secret.txt"),
        ("encoded-file-uri", quote(f"file://{absolute}/secret.txt", safe="")),
        ("drive-backslash", "C:%5CWindows%5Cwin.ini"),
        ("drive-slash", "C:/Windows/win.ini"),
        ("nul", "legit/file.txt%00.png"),
        ("nul-dotdot", "..%00/outside/secret.txt"),
        ("newline", "legit/a%0d%0aSet-Cookie:%20x=y"),
        ("fragment", "legit#/../../outside/secret.txt"),
        ("encoded-fragment", "legit%23/../../outside/secret.txt"),
        ("semicolon", "..;/outside/secret.txt"),
        ("encoded-semicolon", "..%3B/outside/secret.txt"),
        ("encoded-query", "legit%3F/../../outside/secret.txt"),
        ("fullwidth-dots", quote("\uff0e\uff0e/outside/secret.txt")),
        ("two-dot-leader", quote("\u2025/outside/secret.txt")),
        ("overlong-utf8-dots", "%c0%ae%c0%ae/outside/secret.txt"),
        ("dots-evasion", "....//outside/secret.txt"),
        ("empty-segments", "legit//..//..//outside/secret.txt"),
        ("symlink-folder", "escape/secret.txt"),
        ("symlink-folder-new-file", "escape/pwned.txt"),
        ("symlink-file", "secret-link"),
        ("dangling-symlink", "dangling"),
        ("overlong-path", "a/" * 600 + "x"),
        ("overlong-name", "n" * 300),
        ("too-many-encodings", "%" + "25" * 12 + "2e"),
    ]


def send(url: str, method: str, target: str, body: bytes | None = None) -> tuple[int, bytes]:
    """One request with ``target`` sent byte for byte (httpx would normalize the dots away)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders(body)
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def _tree(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): (None if p.is_dir() or p.is_symlink() else p.read_bytes())
            for p in sorted(folder.rglob("*"))}


def test_the_corpus_is_refused_everywhere(server, victim, run):
    run_id = run["run_id"]
    assert len(corpus(victim)) >= 20
    outside_before, inside_before = _tree(victim), _tree(server.artifacts)
    neighbours = sorted(p.name for p in server.artifacts.parent.iterdir())
    accepted = []
    for name, raw in corpus(victim):
        attempts = [("GET", f"{PROXY}/{raw}", None), ("PUT", f"{PROXY}/{raw}", b"pwned"),
                    ("DELETE", f"{PROXY}/{raw}", None), ("GET", f"{PROXY}?path={raw}", None),
                    ("GET", f"/ajax-api/2.0/mlflow-artifacts/artifacts/{raw}", None),
                    ("GET", f"/api/2.0/mlflow/artifacts/list?run_id={run_id}&path={raw}", None)]
        for method, target, body in attempts:
            status, reply = send(server.url, method, target, body)
            if status not in (400, 404) or SECRET.encode() in reply or b"error_code" not in reply:
                accepted.append((name, method, target[:120], status, reply[:200]))
    assert not accepted, "\n".join(map(str, accepted))
    assert _tree(victim) == outside_before  # nothing read into a reply (checked above), written or deleted
    assert _tree(server.artifacts) == inside_before
    assert sorted(p.name for p in server.artifacts.parent.iterdir()) == neighbours
    assert os.path.islink(server.artifacts / "dangling") and not (victim / "written-through-a-link.txt").exists()


def test_legitimate_neighbours_still_work(server, victim):
    """The control group: the same server serves what is inside, links out are not even listed."""
    status, body = send(server.url, "GET", f"{PROXY}/legit/file.txt")
    assert (status, body) == (200, b"legit")
    status, body = send(server.url, "GET", f"{PROXY}/legit%252Ffile.txt")  # encoding is not an attack by itself
    assert (status, body) == (200, b"legit")
    listed = httpx.get(f"{server.url}{PROXY}").json()["files"]
    names = {f["path"] for f in listed}
    assert "legit" in names and not names & {"escape", "secret-link", "dangling"}


@pytest.mark.parametrize("location", [
    "http://169.254.169.254/latest/meta-data", "https://evil.example/artifacts", "ftp://evil.example/x",
    "file:///etc", "file:///tmp#/../../etc", "file:///tmp?/../../etc", "/etc", "C:\\Windows",
    "mlflow-artifacts://evil.example/x", "mlflow-artifacts:/../../etc", "mlflow-artifacts:/%252e%252e/etc",
    "s3://bucket/x",
])
def test_experiments_with_foreign_artifact_locations_are_refused(server, location):
    reply = httpx.post(f"{server.url}/api/2.0/mlflow/experiments/create",
                       json={"name": f"loc-{abs(hash(location))}", "artifact_location": location})
    assert reply.status_code == 400 and reply.json()["error_code"] == "INVALID_PARAMETER_VALUE", reply.text
    assert httpx.get(f"{server.url}/api/2.0/mlflow/experiments/get-by-name",
                     params={"experiment_name": f"loc-{abs(hash(location))}"}).status_code == 404


def test_an_experiment_behind_the_proxy_is_accepted(server):
    reply = httpx.post(f"{server.url}/api/2.0/mlflow/experiments/create",
                       json={"name": "custom-place", "artifact_location": "mlflow-artifacts:/custom/place"})
    assert reply.status_code == 200, reply.text
    run = httpx.post(f"{server.url}/api/2.0/mlflow/runs/create",
                     json={"experiment_id": reply.json()["experiment_id"]}).json()["run"]["info"]
    assert run["artifact_uri"] == f"mlflow-artifacts:/custom/place/{run['run_id']}/artifacts"


@pytest.mark.parametrize("source", [
    "/etc", "file:///home", "s3://bucket/model", "http://evil.example/model", "https://169.254.169.254/x",
    "runs://evil.example/abc/model", "mlflow-artifacts://evil.example/x", "runs:/abc/%2e%2e/%2e%2e/etc",
    "mlflow-artifacts:/%252e%252e/etc", "file://evil.example/share/model", "models:/m-does-not-exist",
])
def test_model_version_sources_the_server_refuses(server, source):
    api = f"{server.url}/api/2.0/mlflow"
    httpx.post(f"{api}/registered-models/create", json={"name": "sources"})
    reply = httpx.post(f"{api}/model-versions/create", json={"name": "sources", "source": source})
    assert reply.status_code in (400, 404) and reply.json()["error_code"] in (
        "INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"), reply.text
    listed = httpx.get(f"{api}/model-versions/search", params={"filter": "name = 'sources'"}).json()
    assert all(v["source"] != source for v in listed.get("model_versions", []))


def test_model_version_sources_the_server_accepts(server, run, tmp_path):
    api = f"{server.url}/api/2.0/mlflow"
    httpx.post(f"{api}/registered-models/create", json={"name": "good-sources"})
    inside = server.artifacts / "legit"
    for source, extra in [(f"runs:/{run['run_id']}/model", {}), ("mlflow-artifacts:/1/x/artifacts/model", {}),
                          (str(inside), {}), (f"file://{inside}", {})]:
        reply = httpx.post(f"{api}/model-versions/create", json={"name": "good-sources", "source": source, **extra})
        assert reply.status_code == 200, (source, reply.text)
    outside = httpx.post(f"{api}/model-versions/create", json={"name": "good-sources", "source": str(tmp_path)})
    assert outside.status_code == 400 and "outside the server's artifacts destination" in outside.json()["message"]
