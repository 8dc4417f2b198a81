"""`flowml models serve` over real HTTP on 127.0.0.1: every payload shape, every error, several
workers, and roll-over of a moved alias under a stream of requests with no request failing.

Each server is a real `python -m flowml models serve` subprocess in its own process group.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from servers import free_port, stop_group, wait_until_answers

JSON = {"content-type": "application/json"}


@dataclass
class Scoring:
    url: str
    process: subprocess.Popen
    log: Path
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    def post(self, body, content_type: str | None = "application/json", **kw) -> httpx.Response:
        headers = {"content-type": content_type} if content_type else {}
        if isinstance(body, (dict, list)):
            import orjson

            body = orjson.dumps(body)
        return self.client.post(self.url + "/invocations", content=body, headers=headers, **kw)

    def stop(self) -> None:
        self.client.close()
        stop_group(self.process, grace=15)


def start_scoring(folder: Path, *args: str, timeout: float = 60, port: int | None = None) -> Scoring:
    """Start ``flowml models serve ARGS`` on ``port`` (default: a free one) and wait for ``/ping``."""
    port = port or free_port()
    log = folder / f"serve-{port}-{time.monotonic_ns()}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "flowml", "models", "serve", "--port", str(port), *args],
                                cwd=folder, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Scoring(f"http://127.0.0.1:{port}", proc, log)
    if not wait_until_answers(server.url + "/ping", lambda: proc.poll() is None, timeout):
        server.stop()
        raise RuntimeError(f"flowml models serve did not start:\n{log.read_text()}")
    return server


@pytest.fixture(scope="module")
def scoring(iris_model):
    server = start_scoring(iris_model.parent, "-m", str(iris_model), "--workers", "2")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rows(iris):
    X, _ = iris
    return X.sample(12, random_state=3)


def expected(classifier, frame) -> list:
    return classifier.predict(frame).tolist()


# protocol -----------------------------------------------------------------------------------------

def test_ping_health_version(scoring, iris_model):
    for path in ("/ping", "/health"):
        answer = httpx.get(scoring.url + path)
        assert answer.status_code == 200
    version = httpx.get(scoring.url + "/version").json()
    assert version["model_uri"] == str(iris_model) and version["model_version"] is None
    assert version["flowml_version"]
    assert [(w["model_version"], w["model_source"]) for w in version["workers"]] == [(None, str(iris_model))] * 2
    assert len({w["pid"] for w in version["workers"]}) == 2 and version["failed"] == []


def test_every_json_shape(scoring, classifier, rows):
    names = list(rows.columns)
    want = expected(classifier, rows)
    shapes = {
        "dataframe_split": {"dataframe_split": rows.to_dict(orient="split")},
        "dataframe_split reordered": {"dataframe_split": {"columns": names[::-1],
                                                          "data": rows[names[::-1]].to_numpy().tolist()}},
        "dataframe_records": {"dataframe_records": rows.to_dict(orient="records")},
        "instances (rows)": {"instances": rows.to_dict(orient="records")},
        "instances (lists)": {"instances": rows.to_numpy().tolist()},
        "inputs (lists)": {"inputs": rows.to_numpy().tolist()},
        "inputs (columns)": {"inputs": rows.to_dict(orient="list")},
        "with params": {"dataframe_split": rows.to_dict(orient="split"), "params": {}},
        "ints for doubles": {"dataframe_split": {"columns": names, "data": rows.round().astype(int).to_numpy().tolist()}},
    }
    for label, payload in shapes.items():
        answer = scoring.post(payload)
        assert answer.status_code == 200, (label, answer.text)
        want_here = expected(classifier, rows.round()) if label == "ints for doubles" else want
        assert answer.json() == {"predictions": want_here}, label
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["x-flowml-model-version"]


def test_csv_and_parquet(scoring, classifier, rows):
    want = {"predictions": expected(classifier, rows)}
    answer = scoring.post(rows.to_csv(index=False).encode(), "text/csv")
    assert (answer.status_code, answer.json()) == (200, want)
    answer = scoring.post(rows.to_csv(index=False).encode(), "text/csv; charset=utf-8")
    assert (answer.status_code, answer.json()) == (200, want)
    buffer = io.BytesIO()
    rows.to_parquet(buffer)
    for kind in ("application/vnd.apache.parquet", "application/x-parquet"):
        answer = scoring.post(buffer.getvalue(), kind)
        assert (answer.status_code, answer.json()) == (200, want), kind


def test_a_batch_of_ten_thousand_rows(scoring, classifier, iris):
    X, _ = iris
    big = X.sample(10_000, replace=True, random_state=0)
    answer = scoring.post({"dataframe_split": big.to_dict(orient="split")})
    assert answer.status_code == 200 and answer.json()["predictions"] == expected(classifier, big)


# errors --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("label, body, content_type, status, code, words", [
    ("bad JSON", b'{"inputs": [[1.0, 2', "application/json", 400, "BAD_REQUEST", "not valid JSON"),
    ("empty JSON body", b"", "application/json", 400, "BAD_REQUEST", "not valid JSON"),
    ("empty CSV body", b"", "text/csv", 400, "BAD_REQUEST", "CSV body is empty"),
    ("empty Parquet body", b"", "application/x-parquet", 400, "BAD_REQUEST", "Parquet body is empty"),
    ("a list", b"[[1.0, 2.0]]", "application/json", 400, "BAD_REQUEST", "got a list"),
    ("no format key", b'{"data": [[1.0]]}', "application/json", 400, "BAD_REQUEST", "exactly one of"),
    ("unknown content type", b"x", "text/plain", 415, "BAD_REQUEST", "not supported"),
    ("no content type", b"x", None, 415, "BAD_REQUEST", "no Content-Type"),
    ("latin-1", b"{}", "application/json; charset=latin-1", 415, "BAD_REQUEST", "charset"),
    ("missing column", b'{"dataframe_records": [{"sepal length (cm)": 5.1, "sepal width (cm)": 3.5}]}',
     "application/json", 400, "BAD_REQUEST", "missing input columns: 'petal length (cm)'"),
    ("wrong type", b'{"dataframe_split": {"columns": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", '
                   b'"petal width (cm)"], "data": [["tall", 3.5, 1.4, 0.2]]}}',
     "application/json", 400, "BAD_REQUEST", "column 'sepal length (cm)': expected double"),
    ("wrong width", b'{"inputs": [[5.1, 3.5]]}', "application/json", 400, "BAD_REQUEST", "the array has 2"),
    ("bad CSV", b'a,b\n1,2,3,4\n"x', "text/csv", 400, "BAD_REQUEST", "CSV body cannot be read"),
    ("bad params", b'{"inputs": [[1.0]], "params": 3}', "application/json", 400, "INVALID_PARAMETER_VALUE",
     "params must be"),
])
def test_errors_have_mlflows_shape(scoring, label, body, content_type, status, code, words):
    answer = scoring.post(body, content_type)
    assert answer.status_code == status, (label, answer.text)
    error = answer.json()
    assert set(error) == {"error_code", "message"} and error["error_code"] == code, label
    assert words in error["message"], (label, error["message"])
    assert "Traceback" not in answer.text


def test_wrong_methods_and_paths(scoring):
    assert httpx.get(scoring.url + "/invocations").status_code == 405
    assert httpx.post(scoring.url + "/ping").status_code == 405
    missing = httpx.get(scoring.url + "/nope")
    assert missing.status_code == 404 and missing.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_the_server_survives_bad_input(scoring, classifier, rows):
    for _ in range(3):
        scoring.post(b"\xff\xfe garbage", "text/csv")
    answer = scoring.post({"inputs": rows.to_numpy().tolist()})
    assert answer.json() == {"predictions": expected(classifier, rows)}


# workers ------------------------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def _worker_pids(server: Scoring) -> list[int]:
    """The supervisor's worker processes (multiprocessing's resource tracker aside)."""
    pids = []
    for child in _children(server.process.pid):
        with open(f"/proc/{child}/cmdline", "rb") as fh:
            if b"resource_tracker" not in fh.read():
                pids.append(child)
    return pids


def test_several_workers_answer_concurrently(scoring, classifier, rows):
    assert len(_worker_pids(scoring)) == 2
    want = {"predictions": expected(classifier, rows)}
    failures = []

    def client():
        with httpx.Client(timeout=30) as c:
            for _ in range(25):
                answer = c.post(scoring.url + "/invocations", headers=JSON,
                                content=b'{"dataframe_split": ' + rows.to_json(orient="split").encode() + b"}")
                if answer.status_code != 200 or answer.json() != want:
                    failures.append(answer.text)

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_a_dead_worker_is_replaced(iris_model, classifier, rows):
    server = start_scoring(iris_model.parent, "-m", str(iris_model), "--workers", "1")
    try:
        (worker,) = _worker_pids(server)
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = server.post({"inputs": rows.to_numpy().tolist()})
                if answer.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, server.log.read_text()
            time.sleep(0.1)
        assert answer.json() == {"predictions": expected(classifier, rows)}
        assert _worker_pids(server) != [worker]
    finally:
        server.stop()


def test_bad_model_uri_is_a_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "flowml", "models", "serve", "-m", str(tmp_path / "nothing"),
                           "--port", str(free_port())], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "no model at" in proc.stderr and "Traceback" not in proc.stderr


def test_watch_needs_a_movable_uri(iris_model):
    proc = subprocess.run([sys.executable, "-m", "flowml", "models", "serve", "-m", str(iris_model), "--watch", "1",
                           "--port", str(free_port())], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--watch needs" in proc.stderr


# roll-over ------------------------------------------------------------------------------------------

@pytest.fixture
def registry(tmp_path, iris, classifier):
    """A SQLite registry with versions 1 and 2 of 'iris' (2 predicts the classes reversed), and
    the alias 'production' on version 1."""
    import flowml.sklearn
    from sklearn.linear_model import LogisticRegression

    from flowml.registry import RegistryClient

    X, y = iris
    flowml.sklearn.save_model(classifier, str(tmp_path / "v1"), input_example=X[:5])
    flowml.sklearn.save_model(LogisticRegression(max_iter=500).fit(X, 2 - y), str(tmp_path / "v2"),
                              input_example=X[:5])
    uri = f"sqlite:///{tmp_path / 'registry.db'}"
    client = RegistryClient(tracking_uri=uri, root=str(tmp_path))
    client.register(str(tmp_path / "v1"), "iris", alias="production")
    client.register(str(tmp_path / "v2"), "iris")
    return client, uri


class Stream:
    """A client thread sending requests back to back; records each answer's version and body."""

    def __init__(self, server: Scoring, body: bytes) -> None:
        self.server, self.body = server, body
        self.answers: list[tuple[str, list]] = []
        self.failures: list[str] = []
        self.running = True
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while self.running:
                try:
                    answer = client.post(self.server.url + "/invocations", content=self.body, headers=JSON)
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                if answer.status_code != 200:
                    self.failures.append(answer.text)
                else:
                    self.answers.append((answer.headers["x-flowml-model-version"], answer.json()["predictions"]))

    def wait_for(self, version: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.answers or self.answers[-1][0] != version:
            assert time.monotonic() < deadline, f"still {self.answers[-1:]} after {timeout} s"
            time.sleep(0.05)

    def stop(self) -> None:
        self.running = False
        self.thread.join(timeout=30)


@pytest.mark.parametrize("trigger", ["watch", "sighup"])
def test_alias_roll_over_under_load_drops_nothing(tmp_path, registry, iris, trigger):
    client, uri = registry
    X, y = iris
    rows = X.iloc[[0, 50, 100]]  # one of each class: version 2 answers 2 - y
    args = ["-m", "models:/iris@production", "--tracking-uri", uri, "--workers", "2"]
    server = start_scoring(tmp_path, *args, *(["--watch", "0.2"] if trigger == "watch" else []))
    streams = []
    try:
        assert httpx.get(server.url + "/version").json()["model_version"] == "1"
        body = b'{"dataframe_split": ' + rows.to_json(orient="split").encode() + b"}"
        streams = [Stream(server, body) for _ in range(2)]
        for stream in streams:
            stream.wait_for("1")
        client.set_registered_model_alias("iris", "production", 2)
        if trigger == "sighup":
            os.kill(server.process.pid, signal.SIGHUP)
        for stream in streams:
            stream.wait_for("2")
        time.sleep(0.3)  # both workers: keep streaming past the switch
        for stream in streams:
            stream.stop()
        answers = [a for s in streams for a in s.answers]
        assert [f for s in streams for f in s.failures] == []
        assert {tuple(p) for v, p in answers if v == "1"} == {(0, 1, 2)}
        assert {tuple(p) for v, p in answers if v == "2"} == {(2, 1, 0)}
        last = [s.answers[-1][0] for s in streams]
        assert last == ["2", "2"]
        assert "now serving models:/iris@production (version 2)" in _wait_log(server, "now serving")
        version = _wait_version(server, lambda v: v["workers"][-1]["model_version"] == "2")
        assert version["model_version"] == "2"  # either worker speaks for both
        assert [w["model_version"] for w in version["workers"]] == ["2", "2"] and version["failed"] == []
    finally:
        for stream in streams:
            stream.stop()
        server.stop()


def _wait_log(server: Scoring, words: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while words not in server.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    return server.log.read_text()


def test_a_version_that_fails_to_load_leaves_the_old_one_serving(tmp_path, registry, iris):
    client, uri = registry
    X, _ = iris
    broken = tmp_path / "v3"
    broken.mkdir()
    (broken / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: no_such_module\n")
    client.register(str(broken), "iris")
    server = start_scoring(tmp_path, "-m", "models:/iris@production", "--tracking-uri", uri, "--watch", "0.2")
    try:
        client.set_registered_model_alias("iris", "production", 3)
        log = _wait_log(server, "did not load")
        assert "version 3" in log and "still serving (version 1)" in log
        answer = server.post({"inputs": X[:1].to_numpy().tolist()})
        assert answer.status_code == 200 and answer.headers["x-flowml-model-version"] == "1"
        version = _wait_version(server, lambda v: v["failed"])
        assert [w["model_version"] for w in version["workers"]] == ["1"]
        [failed] = version["failed"]
        assert failed["model_version"] == "3" and "no_such_module" in failed["error"] and failed["at"] > 0
    finally:
        server.stop()


def _wait_version(server: Scoring, done, timeout: float = 10) -> dict:
    """``/version`` once ``done`` holds for it (the supervisor's report reaches the workers just
    after its log line)."""
    deadline = time.monotonic() + timeout
    while not done(version := httpx.get(server.url + "/version").json()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return version


def test_reuse_port_lets_a_second_server_start_beside_the_first(iris_model, monkeypatch):
    """FLOWML_REUSE_PORT=1 (what flowml deployments sets): a new server binds the port of a
    running one, and answers alone once the old one stops."""
    monkeypatch.setenv("FLOWML_REUSE_PORT", "1")
    port = free_port()
    first = start_scoring(iris_model.parent, "-m", str(iris_model), port=port)
    second = None
    try:
        second = start_scoring(iris_model.parent, "-m", str(iris_model), port=port)
        assert "serving" in _wait_log(second, "serving"), second.log.read_text()  # its own workers are up
        first.stop()
        assert second.post({"inputs": [[5.1, 3.5, 1.4, 0.2]]}).status_code == 200
    finally:
        first.stop()
        if second is not None:
            second.stop()
