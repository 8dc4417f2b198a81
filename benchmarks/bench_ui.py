"""Time the web UI's runs page over a store of 10,000 runs with 100 metrics each.

Why: MLflow's users complain most about its UI slowing down with many runs and many metric
columns (mlflow/mlflow #627, #1517, #5653, #11927, #21841). Issue 6's bar: the runs page with
10,000 runs and 100 metrics answers in under 300 ms.

The store (SQLite, a temp folder) is filled through flowml's own store API (``log_batch``, one
call per run: 100 metrics, 5 params, 2 tags; one pipeline run with step children every 10 runs
so the table draws trees), then ``flowml server`` is started on it on 127.0.0.1 and every page
is fetched over real HTTP with one keep-alive ``httpx.Client``. Each figure is the median of
--repeat requests after one untimed warm-up:

  page        GET /experiments/<id>: the newest 100 runs, every metric as a column (100 columns)
  sorted      the same, sorted by a metric (``metrics.m042`` descending)
  filtered    the same with ``metrics.m007 > 0.5 and params.p1 = 'v3'``
  last page   the 100 oldest runs (the page token of offset 9,900)
  home        GET / (experiments with their run counts)
  history     GET /ui-api/metric-history of one run's 100,000-point metric, max_points 1000 (what
              a chart asks for: thinned on the server)
  baseline    POST /api/2.0/mlflow/runs/search, max_results 100 (what MLflow's own UI asks the
              server for one page of its table): the same runs as JSON, no HTML.

With ``--quickstart``, the bar "pages load in under 300 ms on the quickstart store" instead: the
quickstart pipeline is copied to a temp folder and run three times (all ran; n_estimators=60, so
prepare is a cache hit; back to the defaults, every step restored), ``flowml ui`` serves it, and
each kind of page is timed the same way: home, runs table, a step run, a pipeline run, its DAG, an
MLmodel preview, a full log, charts and compare of two runs, the models list, a model, a version.

Ratios are each page's time over the baseline's, measured in the same run, since the machine is
noisy. Run: ``.venv/bin/python benchmarks/bench_ui.py [--runs 10000 --metrics 100 --repeat 15]``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from tests.servers import free_port, stop_group, wait_until_answers  # noqa: E402

TARGET_MS = 300


def fill(db: str, artifacts: str, runs: int, metrics: int) -> str:
    from flowml.tracking.entities import Metric
    from flowml.tracking.sql.store import SqlStore

    store = SqlStore(f"sqlite:///{db}", artifacts)
    experiment = store.create_experiment("bench")
    rng = random.Random(7)
    started = time.perf_counter()
    parent = None
    for i in range(runs):
        tags = {"team": f"t{i % 4}"}
        if i % 10 == 0:
            tags["flowml.type"] = "pipeline"
        elif parent is not None:
            tags.update({"mlflow.parentRunId": parent, "flowml.type": "step", "flowml.state": rng.choice(["ran", "cached"])})
        run = store.create_run(experiment, "bench", 1_700_000_000_000 + i * 1000, tags, f"run-{i}", {})
        if i % 10 == 0:
            parent = run.info.run_id
        store.log_batch(run.info.run_id,
                        metrics=[Metric(f"m{k:03d}", rng.random(), 1_700_000_000_000 + i * 1000, 0) for k in range(metrics)],
                        params={f"p{k}": f"v{rng.randrange(10)}" for k in range(5)})
        store.update_run_info(run.info.run_id, "FINISHED", 1_700_000_000_000 + i * 1000 + 500)
    long_run = store.create_run(experiment, "bench", 1_600_000_000_000, {}, "long-history", {}).info.run_id
    for start in range(0, 100_000, 10_000):
        store.log_batch(long_run, metrics=[Metric("loss", 1 / (1 + step) + rng.random() * 0.01, 1_600_000_000_000 + step, step)
                                           for step in range(start, start + 10_000)])
    print(f"filled {runs:,} runs x {metrics} metrics in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    store.close()
    return experiment, long_run


def quickstart(folder: str) -> str:
    """The quickstart project run three times in ``folder`` (see the module's docstring)."""
    import shutil

    project = os.path.join(folder, "quickstart")
    here = os.path.dirname(os.path.abspath(__file__))
    shutil.copytree(os.path.join(here, "..", "examples", "quickstart"), project,
                    ignore=shutil.ignore_patterns(".flowml", "models", "best_model", "metrics.json", "__pycache__"))
    for extra in ([], ["-P", "n_estimators=60"], []):
        subprocess.run([sys.executable, "-m", "flowml", "run", *extra], cwd=project, check=True,
                       capture_output=True, env={**os.environ, "CI": "1"})
    return project


def quickstart_pages(client: httpx.Client) -> dict[str, str]:
    """One URL per kind of page, found through the REST API."""
    def search(filter_string: str) -> list[dict]:
        experiment = client.get("/api/2.0/mlflow/experiments/get-by-name",
                                params={"experiment_name": "quickstart"}).json()["experiment"]["experiment_id"]
        return client.post("/api/2.0/mlflow/runs/search", json={
            "experiment_ids": [experiment], "filter": filter_string, "max_results": 100}).json()["runs"]

    pipeline = search("tags.`flowml.type` = 'pipeline'")[0]["info"]["run_id"]
    evaluate = search("tags.`flowml.node` = 'evaluate' and tags.`flowml.state` = 'ran'")[0]["info"]["run_id"]
    trains = [r["info"]["run_id"] for r in search("tags.`flowml.step` = 'train'")[:2]]
    register = search("tags.`flowml.node` = 'register'")[-1]["info"]["run_id"]  # the first one saved the model
    experiment = client.get("/api/2.0/mlflow/experiments/get-by-name",
                            params={"experiment_name": "quickstart"}).json()["experiment"]["experiment_id"]
    return {"home": "/", "runs table": f"/experiments/{experiment}", "step run": f"/runs/{evaluate}",
            "pipeline run": f"/runs/{pipeline}", "DAG": f"/runs/{pipeline}/pipeline",
            "MLmodel": f"/runs/{register}/artifacts/model/MLmodel",
            "full log": f"/runs/{evaluate}/logs/stdout", "charts": f"/charts?runs={trains[0]}&runs={trains[1]}",
            "compare": f"/compare?runs={trains[0]}&runs={trains[1]}", "models": "/models", "model": "/models/wine",
            "version": "/models/wine/versions/1"}


def median_ms(call, repeat: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--metrics", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--quickstart", action="store_true", help="time every kind of page on the quickstart store")
    args = parser.parse_args()
    if args.quickstart:
        return time_quickstart(args.repeat)
    from flowml.tracking.search import encode_page_token

    with tempfile.TemporaryDirectory() as tmp:
        db, artifacts = os.path.join(tmp, "ui.db"), os.path.join(tmp, "artifacts")
        experiment, long_run = fill(db, artifacts, args.runs, args.metrics)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "flowml", "server", "--backend-store-uri", f"sqlite:///{db}",
                                   "--artifacts-destination", artifacts, "--port", str(port)], start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            assert wait_until_answers(url + "/health", lambda: server.poll() is None, 60), "the server did not start"
            with httpx.Client(base_url=url, timeout=60) as client:
                def get(path, **params):
                    def call():
                        reply = client.get(path, params=params)
                        assert reply.status_code == 200, reply.text[:300]
                        assert "run-" in reply.text
                    return call

                page = f"/experiments/{experiment}"
                baseline = median_ms(lambda: client.post("/api/2.0/mlflow/runs/search", json={
                    "experiment_ids": [experiment], "max_results": 100}).raise_for_status(), args.repeat)
                figures = {
                    "page": median_ms(get(page), args.repeat),
                    "sorted": median_ms(get(page, sort="metrics.m042", desc=1), args.repeat),
                    "filtered": median_ms(get(page, filter="metrics.m007 > 0.5 and params.p1 = 'v3'"), args.repeat),
                    "last page": median_ms(get(page, start=encode_page_token(args.runs - 100)), args.repeat),
                    "home": median_ms(lambda: client.get("/").raise_for_status(), args.repeat),
                    "history": median_ms(lambda: client.get("/ui-api/metric-history", params={
                        "runs": long_run, "key": "loss", "max_points": 1000}).raise_for_status(), args.repeat),
                }
                columns = client.get(page).text.count('class="sortable kind-metrics')
        finally:
            stop_group(server)
    print(f"runs page over {args.runs:,} runs x {args.metrics} metrics ({columns} metric columns drawn), "
          f"median of {args.repeat}; baseline runs/search (JSON, 100 runs) {baseline:.1f} ms")
    for name, ms in figures.items():
        verdict = "ok" if ms < TARGET_MS else "MISS"
        print(f"  {name:<10} {ms:7.1f} ms  {ms / baseline:5.2f}x baseline  target < {TARGET_MS} ms: {verdict}")


def time_quickstart(repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = quickstart(tmp)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "flowml", "ui", "--port", str(port)], cwd=project,
                                  start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            assert wait_until_answers(url + "/health", lambda: server.poll() is None, 60), "the server did not start"
            with httpx.Client(base_url=url, timeout=60) as client:
                pages = quickstart_pages(client)
                experiment = pages["runs table"].rsplit("/", 1)[1]
                baseline = median_ms(lambda: client.post("/api/2.0/mlflow/runs/search", json={
                    "experiment_ids": [experiment], "max_results": 100}).raise_for_status(), repeat)

                def get(path):
                    def call():
                        reply = client.get(path)
                        assert reply.status_code == 200, f"{path}: {reply.status_code} {reply.text[:200]}"
                    return call

                figures = {name: median_ms(get(path), repeat) for name, path in pages.items()}
        finally:
            stop_group(server)
    print(f"quickstart store (3 pipeline runs), median of {repeat}; baseline runs/search (JSON) {baseline:.1f} ms")
    for name, ms in figures.items():
        verdict = "ok" if ms < TARGET_MS else "MISS"
        print(f"  {name:<13} {ms:7.1f} ms  {ms / baseline:5.2f}x baseline  target < {TARGET_MS} ms: {verdict}")


if __name__ == "__main__":
    main()
