"""flowml's client against a flowml server over real HTTP: :class:`RestStore` (``FLOWML_TRACKING_URI=http://...``).

The SQL store's behaviour tests (tests/tracking/test_store.py) run again here against a
RestStore, with the server on SQLite and on PostgreSQL: the same calls must give the same
answers and the same errors. Then what only a remote store has: metric buffering (few
requests, nothing lost at exit, errors at the flush), MLflow's per-request limits, retries
with backoff (a dead port, a restarted server, 503 then success, never a retried 4xx), the
bearer token, and the fluent API end to end in a subprocess.
"""

from __future__ import annotations

import http.server
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from servers import free_port

from flowml.errors import StoreError, TrackingError
from flowml.tracking.entities import CacheRecord, Metric, RunStatus, ViewType, now_ms
from flowml.tracking.rest import BATCH_LIMITS, RestStore


sys.path.append(str(Path(__file__).parents[1] / "tracking"))  # appended: it shadows nothing
import test_store as sql_store_tests  # noqa: E402  (tests/tracking/test_store.py, assertions rewritten by pytest)

NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
INVALID = "INVALID_PARAMETER_VALUE"
INVALID_STATE = "INVALID_STATE"

# The SQL store's tests that hold for any store. Left out: those that reach into SQLAlchemy
# (NaN as NULL, orphans, SQLite's variable limit), open a SqlStore themselves, expect a local
# artifact root, or expect an error from log_metric at the call (buffered here: see
# test_errors_of_buffered_metrics_surface_at_the_next_call_on_the_run).
REUSED = [
    "test_default_experiment_is_id_0", "test_restoring_an_experiment_leaves_runs_deleted_before_it_deleted",
    "test_duplicate_experiment_name", "test_bad_experiment_names", "test_rename_experiment", "test_experiment_tags",
    "test_search_experiments_view_types", "test_search_experiments_by_name",
    "test_delete_and_restore_experiment_hides_and_brings_back_its_runs", "test_create_run",
    "test_run_name_from_tag_or_random", "test_create_run_in_missing_experiment",
    "test_create_run_with_a_bad_tag_writes_nothing", "test_get_missing_run", "test_update_run_info",
    "test_run_name_tag_renames_the_run", "test_client_set_terminated_and_update", "test_child_runs",
    "test_params_are_immutable", "test_failing_log_batch_writes_nothing", "test_client_log_batch_takes_entities",
    "test_tags_set_overwrite_delete", "test_latest_metric_is_greatest_step_then_timestamp_then_value",
    "test_metric_history_is_ordered_by_step", "test_log_batch_with_thousands_of_metrics",
    "test_metric_steps_and_timestamps", "test_bad_keys_are_refused", "test_good_keys_are_kept", "test_value_limits",
    "test_run_name_and_user_limits_hold_on_every_path", "test_non_numeric_metric_values_are_refused",
    "test_client_log_metric_defaults", "test_search_runs_by_experiment", "test_search_runs_pages_cover_every_run_once",
    "test_client_search_runs_paged_list", "test_search_runs_order_filter_and_data", "test_search_runs_bad_filter",
    "test_search_runs_bad_arguments", "test_cache_entries",
]
globals().update({name: getattr(sql_store_tests, name) for name in REUSED if hasattr(sql_store_tests, name)})
fails, unique = sql_store_tests.fails, sql_store_tests.unique


def test_the_reused_store_tests_exist():
    """A renamed test in test_store.py must be renamed here too, not silently dropped."""
    assert [name for name in REUSED if not hasattr(sql_store_tests, name)] == []


# fixtures ------------------------------------------------------------------------------

@pytest.fixture
def store(backend):
    opened = RestStore(backend.url)
    yield opened
    opened.close()


@pytest.fixture
def exp_id(store) -> str:
    return store.create_experiment(unique())


@pytest.fixture
def client(backend, monkeypatch):
    """A FlowmlClient on the server's URL, through get_store as the CLI opens it."""
    from flowml.tracking import stores
    from flowml.tracking.client import FlowmlClient

    monkeypatch.setattr(stores, "_stores", {})
    yield FlowmlClient(backend.url)
    for opened in stores._stores.values():
        opened.close()


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory, server_factory):
    running = server_factory(tmp_path_factory.mktemp("rest-extra"))
    yield running
    running.stop()


def counted(store: RestStore) -> list[str]:
    """The requests ``store`` sends from now on, as "METHOD path"."""
    sent: list[str] = []
    store._client().event_hooks["request"].append(lambda request: sent.append(f"{request.method} {request.url.path}"))
    return sent


# what the SQL store's tests do not cover ----------------------------------------------

def test_get_store_opens_a_rest_store_for_http_uris(backend, monkeypatch):
    from flowml.tracking import stores

    monkeypatch.setattr(stores, "_stores", {})
    opened = stores.get_store(backend.url + "/")
    assert isinstance(opened, RestStore) and opened.url == backend.url
    assert stores.get_store(backend.url, root="/somewhere/else") is opened  # one store (one buffer) per server
    monkeypatch.setenv("FLOWML_TRACKING_URI", backend.url)
    assert stores.get_store() is opened


def test_experiments_through_the_server(store):
    name = unique()
    before = now_ms()
    exp_id = store.create_experiment(name, tags={"team": "fraud", "n": 3})
    exp = store.get_experiment(exp_id)
    assert (exp.experiment_id, exp.name, exp.lifecycle_stage, exp.tags) == (exp_id, name, "active",
                                                                            {"team": "fraud", "n": "3"})
    assert exp.artifact_location == f"mlflow-artifacts:/{exp_id}"  # the server decides, behind its proxy
    assert before <= exp.creation_time <= now_ms()
    assert store.get_experiment_by_name(name) == exp
    assert store.get_experiment_by_name(unique()) is None
    with fails(NOT_FOUND):
        store.get_experiment("987654321")
    store.delete_experiment_tag(exp_id, "n")
    assert store.get_experiment(exp_id).tags == {"team": "fraud"}
    with fails(NOT_FOUND):
        store.delete_experiment_tag(exp_id, "n")
    stem = unique()
    made = [store.create_experiment(f"{stem}-{i}") for i in range(5)]
    seen, token = [], None
    while True:
        page, token = store.search_experiments(ViewType.ALL, 2, f"name LIKE '{stem}-%'", ["name DESC"], token)
        seen += [e.experiment_id for e in page]
        if token is None:
            break
    assert seen == made[::-1]


def test_nan_and_infinities_round_trip(store, exp_id):
    run_id = store.create_run(exp_id).info.run_id
    store.log_batch(run_id, metrics=[Metric("nan", math.nan, 1, 0), Metric("inf", math.inf, 1, 0),
                                     Metric("ninf", -math.inf, 1, 0), Metric("mix", 1.0, 1, 0),
                                     Metric("mix", math.nan, 1, 1), Metric("mix", math.inf, 1, 2)])
    run = store.get_run(run_id)
    assert math.isnan(run.data.metrics["nan"]) and math.isnan(run.data.latest["nan"].value)
    assert run.data.metrics["inf"] == math.inf and run.data.metrics["ninf"] == -math.inf
    assert run.data.metrics["mix"] == math.inf
    history = [m.value for m in store.get_metric_history(run_id, "mix")]
    assert history[0] == 1.0 and math.isnan(history[1]) and history[2] == math.inf
    assert all(type(v) is float for v in history)
    found, _ = store.search_runs([exp_id], "metrics.inf > 0")
    assert [r.info.run_id for r in found] == [run_id] and found[0].data.metrics["ninf"] == -math.inf


def test_params_and_tags_are_sent_at_once_and_their_errors_surface_at_the_call(store, exp_id):
    run_id = store.create_run(exp_id).info.run_id
    sent = counted(store)
    store.log_param(run_id, "alpha", 0.5)
    store.set_tag(run_id, "team", "fraud")
    assert sent == ["POST /api/2.0/mlflow/runs/log-batch"] * 2
    with fails(INVALID, "immutable"):
        store.log_param(run_id, "alpha", 0.6)
    with fails(NOT_FOUND):
        store.log_param("0" * 32, "alpha", 1)
    assert store.get_run(run_id).data.params == {"alpha": "0.5"}


def test_a_big_batch_is_split_within_mlflows_limits(store, exp_id):
    run_id = store.create_run(exp_id).info.run_id
    sent = counted(store)
    bodies = []
    store._client().event_hooks["request"].append(
        lambda request: bodies.append(json.loads(request.read())) if request.method == "POST" else None)
    params = {f"p{i}": i for i in range(250)}
    tags = {f"t{i}": i for i in range(150)}
    metrics = [Metric(f"m{i % 7}", float(i), 1, i) for i in range(2500)]
    store.log_batch(run_id, metrics=metrics, params=params, tags=tags)
    for body in bodies:
        counts = {k: len(body.get(k, [])) for k in ("metrics", "params", "tags")}
        assert all(counts[k] <= BATCH_LIMITS[k] for k in counts) and sum(counts.values()) <= BATCH_LIMITS["total"]
    assert len(sent) == len(bodies) == 3  # 250 params at 100 a request; tags and metrics fill the room left
    assert [len(b.get("params", [])) for b in bodies] == [100, 100, 50]  # params and tags first
    run = store.get_run(run_id)
    assert len(run.data.params) == 250 and len(run.data.tags) == 151 and len(run.data.metrics) == 7
    assert len(store.get_metric_history(run_id, "m3")) == len(range(3, 2500, 7))


def test_child_runs_heartbeat_orphans_and_stats(store, exp_id):
    parent = store.create_run(exp_id, start_time=1000, params={"alpha": 1}, heartbeat=True)
    assert parent.data.params == {"alpha": "1"}
    kids = [store.create_run(exp_id, start_time=2000 + i, tags={"mlflow.parentRunId": parent.info.run_id},
                             heartbeat=True).info.run_id for i in range(2)]
    assert [r.info.run_id for r in store.child_runs(parent.info.run_id)] == kids
    store.heartbeat([parent.info.run_id, *kids])
    store.heartbeat([])
    # Heartbeats just sent: none of these is stale after 10 minutes...
    assert not {parent.info.run_id, *kids} & set(store.mark_orphans())
    time.sleep(0.01)
    # ... and all are after 0 ms (the server sees no client pid: heartbeats decide).
    assert {parent.info.run_id, *kids} <= set(store.mark_orphans(stale_after_ms=0))
    assert store.get_run(kids[0]).info.status == RunStatus.KILLED
    stats = store.experiment_stats()
    assert stats[exp_id] == (3, 2001)
    assert all(isinstance(k, str) and isinstance(v, tuple) for k, v in stats.items())


def test_cache_index_routes(store):
    key = unique("key")
    record = CacheRecord(key, "pipe", "node", '{"m": 1}', '{"o": {"digest": "ab"}}', '{"acc": 0.5}', 1.5, "r" * 32)
    assert store.get_cache_entry(key) is None
    store.put_cache_entry(record)
    assert store.get_cache_entry(key) == record
    bare = CacheRecord(unique("key"), "pipe", "node", "{}", "{}", None, None, None)
    store.put_cache_entry(bare)
    assert store.get_cache_entry(bare.key) == bare
    assert sorted(store.cache_outputs({key, bare.key, "absent"})) == sorted([record.outputs, "{}"])
    assert record.outputs in store.cache_outputs()
    everything = len(store.cache_outputs())
    assert store.drop_cache_entries({key}, dry_run=True) == everything - 1
    assert store.get_cache_entry(bare.key) == bare  # a dry run drops nothing


def test_flowml_routes_answer_bad_input_with_mlflow_errors(sqlite_server):
    api = sqlite_server.url + "/api/2.0/flowml"
    for method, path, body in [("POST", "/cache-entries/put", {"entry": {"key": "k"}}),
                               ("POST", "/cache-entries/put", {}),
                               ("POST", "/cache-entries/drop", {"dry_run": True}),
                               ("POST", "/runs/heartbeat", {"run_ids": [1, 2]}),
                               ("POST", "/runs/create", {"heartbeat": "yes"}),
                               ("POST", "/runs/mark-orphans", {"stale_after_ms": -1}),
                               ("POST", "/runs/log-metrics", {"run_id": "r", "keys": ["a"], "values": [],
                                                              "timestamps": [], "steps": []}),
                               ("POST", "/runs/log-metrics", {"run_id": "r", "keys": ["a"] * 1001,
                                                              "values": [1.0] * 1001, "timestamps": [1] * 1001,
                                                              "steps": [0] * 1001}),
                               ("POST", "/runs/log-metrics", {"run_id": "r", "keys": ["a"], "values": ["abc"],
                                                              "timestamps": [1], "steps": [0]}),
                               ("POST", "/runs/log-metrics", {"run_id": "r", "keys": ["a"], "values": [True],
                                                              "timestamps": [1], "steps": [0]}),
                               ("POST", "/runs/log-metrics", {"run_id": "r", "keys": [["a"]], "values": [1.0],
                                                              "timestamps": [1], "steps": [0]}),
                               ("POST", "/runs/log-metrics", {"run_id": "r", "keys": ["a"], "values": [1.0],
                                                              "timestamps": ["x"], "steps": [0]}),
                               ("GET", "/runs/children", None)]:
        reply = httpx.request(method, api + path, json=body)
        assert reply.status_code == 400 and reply.json()["error_code"] == INVALID, (path, reply.text)


# buffering -----------------------------------------------------------------------------

def test_a_loop_of_5000_log_metric_calls_takes_at_most_10_requests(client):
    exp_id = client.create_experiment(unique())
    run_id = client.create_run(exp_id).info.run_id
    sent = counted(client.store)
    for step in range(5000):
        client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
    client.set_terminated(run_id)
    batches = [s for s in sent if s == "POST /api/2.0/flowml/runs/log-metrics"]
    assert len(sent) <= 10 and len(batches) == 5, sent
    assert sent[-1] == "POST /api/2.0/mlflow/runs/update"  # the end of the run after its metrics
    history = client.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(5000))


def test_buffered_metrics_are_sent_within_a_second(store, exp_id, backend):
    run_id = store.create_run(exp_id).info.run_id
    for step in range(5):
        store.log_metric(run_id, Metric("m", float(step), now_ms(), step))
    other = RestStore(backend.url)  # another process would see them like this one
    try:
        assert other.get_metric_history(run_id, "m") == []
        deadline = time.monotonic() + 5
        while len(other.get_metric_history(run_id, "m")) < 5:
            assert time.monotonic() < deadline, "the buffered metrics were not sent"
            time.sleep(0.1)
        assert time.monotonic() < deadline - 3  # within about FLUSH_AFTER_S, not at some later flush
    finally:
        other.close()


def test_reads_see_buffered_metrics(store, exp_id):
    run_id = store.create_run(exp_id).info.run_id
    store.log_metric(run_id, Metric("m", 1.0, 1, 0))
    assert store.get_run(run_id).data.metrics == {"m": 1.0}
    store.log_metric(run_id, Metric("m", 2.0, 1, 1))
    assert [m.value for m in store.get_metric_history(run_id, "m")] == [1.0, 2.0]
    store.log_metric(run_id, Metric("m", 3.0, 1, 2))
    assert store.search_runs([exp_id], "metrics.m = 3")[0][0].info.run_id == run_id


def test_errors_of_buffered_metrics_surface_at_the_next_call_on_the_run(store, exp_id):
    gone = store.create_run(exp_id).info.run_id
    kept = store.create_run(exp_id).info.run_id
    store.delete_run(gone)
    store.log_metric(gone, Metric("m", 1.0, 1, 0))  # buffered: the server has not seen it yet
    store.log_metric(kept, Metric("m", 1.0, 1, 0))
    store.flush()
    with fails(INVALID_STATE, "buffered metrics of run"):
        store.update_run_info(gone, status="FINISHED")
    assert store.get_run(kept).data.metrics == {"m": 1.0}  # another run's metrics are not lost for it
    with fails(INVALID_STATE, "deleted"):  # the failure is reported once; the run is still deleted
        store.update_run_info(gone, status="FINISHED")
    # Invalid metrics never reach the buffer: they fail at the call, as with the SQL store.
    with fails(INVALID):
        store.log_metric(kept, Metric("../m", 1.0, 1, 0))


def test_nothing_is_lost_when_a_script_exits_without_ending_its_run(backend, tmp_path):
    script = """
import sys
from flowml.tracking.client import FlowmlClient
from flowml.tracking.entities import Metric
client = FlowmlClient(sys.argv[1])
exp = client.create_experiment(sys.argv[2])
run_id = client.create_run(exp).info.run_id
print(run_id, flush=True)
for step in range(2345):
    client.log_metric(run_id, "loss", step * 0.5, step=step)
client.log_batch(run_id, metrics=[Metric("acc", 0.9, 1, 0)])
# no end of run, no flush, no close: atexit sends what is buffered
"""
    proc = subprocess.run([sys.executable, "-c", script, backend.url, unique()], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    run_id = proc.stdout.strip()
    reader = RestStore(backend.url)
    try:
        history = reader.get_metric_history(run_id, "loss")
        assert [m.step for m in history] == list(range(2345))
        assert reader.get_run(run_id).data.metrics == {"loss": 2344 * 0.5, "acc": 0.9}
    finally:
        reader.close()


def test_metrics_buffered_for_a_server_that_is_gone_are_reported_at_exit(tmp_path):
    script = """
import sys
from flowml.tracking.rest import RestStore
from flowml.tracking.entities import Metric
store = RestStore(sys.argv[1], max_retries=1, backoff=0.01)
for step in range(3):
    store.log_metric("0" * 32, Metric("m", 1.0, 1, step))
"""
    proc = subprocess.run([sys.executable, "-c", script, f"http://127.0.0.1:{free_port()}"], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0
    assert "warning: 3 metrics could not be sent" in proc.stderr and "cannot be reached" in proc.stderr


# retries -------------------------------------------------------------------------------

def test_nothing_listening_is_a_store_error_after_bounded_retries(monkeypatch):
    monkeypatch.setenv("FLOWML_HTTP_REQUEST_MAX_RETRIES", "3")
    monkeypatch.setenv("FLOWML_HTTP_REQUEST_BACKOFF_FACTOR", "0.05")
    store = RestStore(f"http://127.0.0.1:{free_port()}")
    sent = counted(store)
    start = time.monotonic()
    with pytest.raises(StoreError, match="cannot be reached, after 4 attempts"):
        store.get_experiment("0")
    elapsed = time.monotonic() - start
    assert len(sent) == 4
    assert 0.05 * (1 + 2 + 4) * 0.75 <= elapsed < 2  # backoff 0.05, 0.1, 0.2 s (with jitter)


def test_the_default_retries_give_up_within_ten_seconds():
    store = RestStore("http://127.0.0.1:1")
    assert store.max_retries == 5
    waits = [min(store.backoff_max, store.backoff * 2 ** n) for n in range(store.max_retries)]
    assert 3 < sum(waits) * 1.25 < 10  # the longest jitter


def _start_on(port: int, folder: Path, store_uri: str) -> subprocess.Popen:
    """``flowml server`` on a given port (``server_factory`` picks its own), in its own process group."""
    log = open(folder / "server.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "flowml", "server", "--port", str(port), "--backend-store-uri",
                             store_uri, "--artifacts-destination", str(folder / "artifacts")],
                            cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def test_a_server_restarted_mid_way_is_waited_for(tmp_path):
    port = free_port()
    store_uri = f"sqlite:///{tmp_path / 'server.db'}"
    procs = [_start_on(port, tmp_path, store_uri)]
    store = RestStore(f"http://127.0.0.1:{port}")  # the defaults: about 6 s of retries
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                exp_id = store.create_experiment("restart")
                break
            except StoreError:
                assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
        run_id = store.create_run(exp_id).info.run_id
        store.log_metric(run_id, Metric("m", 1.0, 1, 0))
        _stop(procs[0])
        restarted = threading.Timer(1.0, lambda: procs.append(_start_on(port, tmp_path, store_uri)))
        restarted.start()
        start = time.monotonic()
        store.log_metric(run_id, Metric("m", 2.0, 1, 1))
        store.log_param(run_id, "after", "restart")  # retried until the server is back
        restarted.join()
        assert 1.0 <= time.monotonic() - start < 10
        run = store.get_run(run_id)
        assert run.data.params == {"after": "restart"} and run.data.metrics == {"m": 2.0}
        assert [m.value for m in store.get_metric_history(run_id, "m")] == [1.0, 2.0]
    finally:
        store.close()
        for proc in procs:
            _stop(proc)


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Answers with the next of ``replies`` (status, headers, body) and records each request."""

    replies: list = []
    seen: list = []
    bodies: list = []

    def _answer(self) -> None:
        self.seen.append((self.command, self.path, dict(self.headers)))
        status, headers, body = self.replies.pop(0) if self.replies else (200, {}, "{}")
        data = body.encode()
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self.bodies.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0)))))
        self._answer()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def scripted():
    """A tiny HTTP server answering what a test scripts, to see retries and headers."""
    _Scripted.replies, _Scripted.seen, _Scripted.bodies = [], [], []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Scripted
    httpd.shutdown()
    httpd.server_close()


EXPERIMENT = json.dumps({"experiment": {"experiment_id": "7", "name": "e", "artifact_location": "x",
                                        "lifecycle_stage": "active", "creation_time": 1, "last_update_time": 1}})


def test_429_and_5xx_are_retried_honouring_retry_after(scripted):
    url, handler = scripted
    busy = json.dumps({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "database is locked"})
    handler.replies = [(503, {}, busy), (429, {"Retry-After": "0.3"}, "{}"), (502, {}, "<html>bad gateway</html>"),
                       (200, {}, EXPERIMENT)]
    store = RestStore(url, max_retries=5, backoff=0.01)
    start = time.monotonic()
    assert store.get_experiment("7").name == "e"
    assert 0.3 <= time.monotonic() - start < 3
    assert len(handler.seen) == 4
    handler.replies = [(503, {}, busy)] * 3
    with pytest.raises(StoreError, match="HTTP 503, after 3 attempts.*database is locked"):
        RestStore(url, max_retries=2, backoff=0.01).get_experiment("7")


def test_metrics_go_through_mlflows_routes_to_a_server_without_flowmls(scripted):
    """An MLflow server has no /api/2.0/flowml routes: the store falls back to MLflow's, once."""
    url, handler = scripted
    handler.replies = [(404, {"Content-Type": "text/html"}, "<h1>Not Found</h1>"), (200, {}, "{}"), (200, {}, "{}"),
                       (200, {}, json.dumps({"metrics": [{"key": "m", "value": "NaN", "timestamp": 5, "step": 1}]}))]
    store = RestStore(url, max_retries=0)
    store.log_metric("r" * 32, Metric("m", math.nan, 5, 1))
    store.flush()
    store.log_metric("r" * 32, Metric("m", 2.0, 6, 2))
    history = store.get_metric_history("r" * 32, "m")
    assert [path.split("?")[0] for _, path, _ in handler.seen] == [
        "/api/2.0/flowml/runs/log-metrics", "/api/2.0/mlflow/runs/log-batch", "/api/2.0/mlflow/runs/log-batch",
        "/api/2.0/mlflow/metrics/get-history"]
    assert handler.bodies[1] == {"run_id": "r" * 32, "metrics": [{"key": "m", "value": "NaN", "timestamp": 5, "step": 1}]}
    assert handler.bodies[0]["values"] == ["NaN"]  # the same metric, as columns
    assert len(history) == 1 and math.isnan(history[0].value) and (history[0].timestamp, history[0].step) == (5, 1)


def test_4xx_is_not_retried_and_keeps_mlflows_error_code(scripted):
    url, handler = scripted
    handler.replies = [(400, {}, json.dumps({"error_code": "RESOURCE_ALREADY_EXISTS", "message": "taken"}))]
    store = RestStore(url, max_retries=5, backoff=0.01)
    with pytest.raises(TrackingError, match="^taken$") as info:
        store.create_experiment("e")
    assert info.value.error_code == "RESOURCE_ALREADY_EXISTS" and len(handler.seen) == 1
    handler.replies = [(404, {"Content-Type": "text/html"}, "<h1>Not Found</h1>")]
    with pytest.raises(TrackingError, match="answered HTTP 404") as info:
        store.get_experiment("7")
    assert info.value.error_code == "ENDPOINT_NOT_FOUND"
    handler.replies = [(200, {"Content-Type": "text/html"}, "<html>a login page</html>")]
    with pytest.raises(StoreError, match="not JSON"):
        store.get_experiment("7")


def test_the_token_travels_as_a_bearer_header(scripted, monkeypatch):
    url, handler = scripted
    monkeypatch.delenv("FLOWML_TRACKING_TOKEN", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "mlflow-secret")
    handler.replies = [(200, {}, EXPERIMENT)] * 3
    RestStore(url).get_experiment("7")
    monkeypatch.setenv("FLOWML_TRACKING_TOKEN", "flowml-secret")  # flowml's wins
    RestStore(url).get_experiment("7")
    monkeypatch.delenv("FLOWML_TRACKING_TOKEN")
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    RestStore(url).get_experiment("7")
    auth = [{k.lower(): v for k, v in headers.items()}.get("authorization") for _, _, headers in handler.seen]
    assert auth == ["Bearer mlflow-secret", "Bearer flowml-secret", None]
    assert handler.seen[0][1] == "/api/2.0/mlflow/experiments/get?experiment_id=7"


def test_connections_are_reused(store, exp_id):
    connections = set()

    def note(response):
        stream = response.extensions.get("network_stream")
        connections.add(id(stream.get_extra_info("socket")) if stream else None)

    store._client().event_hooks["response"].append(note)
    run_id = store.create_run(exp_id).info.run_id
    for i in range(20):
        store.log_param(run_id, f"p{i}", i)
    assert len(connections) == 1


# the fluent API end to end -------------------------------------------------------------

FLUENT = """
import json, math, sys
import flowml
from flowml.errors import TrackingError
flowml.set_experiment(sys.argv[1])
with flowml.start_run(run_name="train") as run:
    flowml.log_params({"alpha": 0.5, "layers": 3})
    for step in range(300):
        flowml.log_metric("loss", 1.0 / (step + 1), step=step)
    flowml.log_metrics({"acc": 0.9, "nan": math.nan}, step=299)
    flowml.set_tag("team", "fraud")
    with flowml.start_run(run_name="child", nested=True) as child:
        flowml.log_metric("inner", 1.0)
try:
    flowml.log_param("alpha", 0.6)  # a new run (none active): fine
    flowml.end_run()
    flowml.start_run(run_id=run.info.run_id)
    flowml.log_param("alpha", 0.7)
except TrackingError as exc:
    print("refused:", exc.error_code, file=sys.stderr)
flowml.end_run()
found = flowml.search_runs(filter_string="params.alpha = '0.5' and metrics.loss < 0.01", output_format="list")
history = flowml.get_metric_history(run.info.run_id, "loss")
print(json.dumps({"run_id": run.info.run_id, "child": child.info.run_id, "found": [r.info.run_id for r in found],
                  "points": len(history), "uri": flowml.get_tracking_uri()}))
"""


def test_the_fluent_api_end_to_end_through_the_server(backend, tmp_path):
    name = unique()
    proc = subprocess.run([sys.executable, "-c", FLUENT, name], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env={**os.environ, "FLOWML_TRACKING_URI": backend.url})
    assert proc.returncode == 0, proc.stderr
    assert "refused: INVALID_PARAMETER_VALUE" in proc.stderr
    out = json.loads(proc.stdout)
    assert out["found"] == [out["run_id"]] and out["points"] == 300 and out["uri"] == backend.url
    assert not (tmp_path / ".flowml").exists()  # nothing local: everything went to the server
    store = RestStore(backend.url)
    try:
        run = store.get_run(out["run_id"])
        assert run.info.status == "FINISHED" and run.info.run_name == "train"
        assert run.data.params == {"alpha": "0.5", "layers": "3"}
        assert run.data.metrics["acc"] == 0.9 and math.isnan(run.data.metrics["nan"])
        assert run.data.tags["team"] == "fraud" and run.data.tags["mlflow.source.type"] == "LOCAL"
        assert [r.info.run_id for r in store.child_runs(out["run_id"])] == [out["child"]]
        assert store.get_experiment_by_name(name).experiment_id == run.info.experiment_id
    finally:
        store.close()


def test_the_cli_reads_runs_through_the_server(backend, project):
    store = RestStore(backend.url)
    exp_id = store.create_experiment(unique())
    run_id = store.create_run(exp_id, run_name="listed").info.run_id
    store.log_batch(run_id, metrics=[Metric("rmse", 0.25, 1, 0)], params={"alpha": "0.1"})
    res = project.flowml("runs", "list", "--json", "-e", store.get_experiment(exp_id).name,
                         env={"FLOWML_TRACKING_URI": backend.url})
    assert res.code == 0, res.err
    assert [r["info"]["run_id"] for r in res.json["runs"]] == [run_id]
    res = project.flowml("runs", "show", run_id, "--json", env={"FLOWML_TRACKING_URI": backend.url})
    assert res.code == 0, res.err
    assert res.json["data"]["params"] == [{"key": "alpha", "value": "0.1"}]
    res = project.flowml("runs", "show", "0" * 32, env={"FLOWML_TRACKING_URI": backend.url})
    assert res.code == 2 and "no run" in res.err and "Traceback" not in res.err
    dead = f"http://127.0.0.1:{free_port()}"
    res = project.flowml("runs", "list", env={"FLOWML_TRACKING_URI": dead, "FLOWML_HTTP_REQUEST_MAX_RETRIES": "1",
                                              "FLOWML_HTTP_REQUEST_BACKOFF_FACTOR": "0.01"})
    assert res.code == 1 and "cannot be reached" in res.err and "Traceback" not in res.err


def test_a_server_killed_while_a_script_logs_is_a_store_error_not_a_hang(tmp_path, server_factory):
    server = server_factory(tmp_path / "srv")
    store = RestStore(server.url, max_retries=2, backoff=0.05, timeout=5)
    try:
        run_id = store.create_run("0").info.run_id
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        start = time.monotonic()
        with pytest.raises(StoreError):
            store.log_param(run_id, "a", 1)
        assert time.monotonic() - start < 5
    finally:
        store.close()
        server.stop()


FORK = """
import os, sys
from flowml.tracking.entities import Metric
from flowml.tracking.rest import RestStore
store = RestStore(sys.argv[1])
run_id = store.create_run("0").info.run_id
store.log_metric(run_id, Metric("m", 1.0, 1, 0))  # buffered in the parent
pid = os.fork()
if pid == 0:  # the child logs its own and exits normally: atexit must not send the parent's again
    store.log_metric(run_id, Metric("m", 2.0, 1, 1))
    sys.exit(0)
os.waitpid(pid, 0)
store.flush()
print(run_id)
"""


def test_a_forked_child_does_not_send_its_parents_buffer_again(backend, tmp_path):
    proc = subprocess.run([sys.executable, "-c", FORK, backend.url], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    store = RestStore(backend.url)
    try:
        history = store.get_metric_history(proc.stdout.strip(), "m")
        assert sorted((m.step, m.value) for m in history) == [(0, 1.0), (1, 2.0)]
    finally:
        store.close()
