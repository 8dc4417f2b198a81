"""Time ``flowml server`` against ``mlflow server`` over the same REST routes, each on SQLite.

Why: a remote client (MLflow's own ``RestStore``, a notebook, a CI job) sees a tracking server
only through MLflow's REST API, so the server's cost per request, its bulk paths and its artifact
proxy are what that client waits for. The issue's figures for ``mlflow server`` 3.17 on SQLite:
74 ms per logging call, log-batch 3,400 metrics/s, search 215 ms over 200 runs, a 20,000-point
history 2.6 s, artifacts 137 MB/s up and 80 MB/s down, server start 20-47 s.

Both servers are started by this script, one after the other, on a free port on 127.0.0.1, each
in its own process group, with a fresh SQLite file and artifact folder in a temp dir::

    flowml server --backend-store-uri sqlite:////T/f.db --artifacts-destination T/fa --port P
    mlflow server --backend-store-uri sqlite:////T/m.db --artifacts-destination T/ma \\
                  --port P --host 127.0.0.1            # --serve-artifacts is on by default

The client is identical for both: one ``httpx.Client`` (keep-alive) speaking MLflow's REST routes
(``/api/2.0/mlflow/...`` and ``/api/2.0/mlflow-artifacts/artifacts/<path>``); no MLflow or flowml
client code is imported. Untimed before each timed part: one warm-up request of the same kind and
populating the data a read needs.

  ready     launch (``Popen``) to the first ``GET /health`` answered 200 (polled every 20 ms).
            Target: < 2 s.
  calls     inside one run: --calls ``runs/log-parameter`` (distinct keys), then --calls
            ``runs/log-metric`` (one key, step 0, 1, ...), each timed alone. Reported: mean ms per
            call. Target: < 2 ms.
  batch     --batches ``runs/log-batch`` requests of --batch-size metrics (10 keys) into one run.
            metrics/s = all metrics / total time. Target: >= 100,000 metrics/s.
  search    --search-runs runs, each made with ``runs/create`` + one ``runs/log-batch`` (params
            alpha in 10 values and l1_ratio, metrics rmse and r2 seeded, a tag; populate time
            reported, not judged), then ``runs/search`` with
            ``metrics.rmse < 0.5 and params.alpha = '0.1'``, max_results 100, order_by
            ``metrics.rmse ASC``: median of --repeat calls. The 100 rmse values must be the
            expected ones, in order. Target: < 50 ms over 10,000 runs (judged only at 10,000).
  history   one run with a --history-points-point metric (log-batch, 1,000 at a time), then
            ``GET metrics/get-history`` following ``next_page_token`` until done: median of
            --repeat calls; every point must come back. Target: < 100 ms.
  artifacts a --artifact-mb MB file of random bytes, streamed up with ``PUT`` (1 MiB chunks from
            the file) and down with ``GET`` (streamed, discarded, size checked); median of
            --artifact-repeat each way, MB/s = 10^6 bytes / s. Target: >= 500 MB/s each way.

Usage::

    .venv/bin/python benchmarks/bench_server.py                      # N=2000 for search
    .venv/bin/python benchmarks/bench_server.py --search-runs 10000  # the judged figure
    .venv/bin/python benchmarks/bench_server.py --skip-mlflow --json-out s.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ALPHAS = [f"{a / 10:.1f}" for a in range(1, 11)]
FILTER = "metrics.rmse < 0.5 and params.alpha = '0.1'"
API = "/api/2.0/mlflow"
ART = "/api/2.0/mlflow-artifacts/artifacts"

TARGETS = {  # figure -> (target, "lt" | "ge")
    "ready s": (2.0, "lt"),
    "log-parameter ms/call": (2.0, "lt"),
    "log-metric ms/call": (2.0, "lt"),
    "log-batch metrics/s": (100_000, "ge"),
    "search 10000 runs ms": (50.0, "lt"),
    "history ms": (100.0, "lt"),
    "upload MB/s": (500.0, "ge"),
    "download MB/s": (500.0, "ge"),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def progress(side: str, msg: str) -> None:
    print(f"  [{side}] {msg}", file=sys.stderr, flush=True)


class Server:
    def __init__(self, name: str, argv: list[str], port: int, log: Path, env: dict) -> None:
        self.name, self.url, self.log = name, f"http://127.0.0.1:{port}", log
        self.out = open(log, "wb")
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True,
                                     env=env, cwd=log.parent)

    def wait_ready(self, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return time.perf_counter() - self.t0
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} server did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(10)
        self.out.close()


def launch(name: str, a, work: Path) -> Server:
    folder = work / name
    folder.mkdir()
    port = free_port()
    env = dict(os.environ)
    for k in ("MLFLOW_TRACKING_URI", "FLOWML_TRACKING_URI"):
        env.pop(k, None)
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "true"
    db = "sqlite:///" + str((folder / ("f.db" if name == "flowml" else "m.db")).resolve())
    arts = str(folder / "artifacts")
    if name == "flowml":
        argv = [a.flowml, "server", "--backend-store-uri", db, "--artifacts-destination", arts,
                "--port", str(port), "--host", "127.0.0.1"]
    else:
        argv = [a.mlflow, "server", "--backend-store-uri", db, "--artifacts-destination", arts,
                "--port", str(port), "--host", "127.0.0.1"]
    return Server(name, argv, port, folder / "server.log", env)


class Rest:
    def __init__(self, url: str) -> None:
        self.c = httpx.Client(base_url=url, timeout=600)

    def post(self, route: str, body: dict) -> dict:
        r = self.c.post(API + route, json=body)
        if r.status_code != 200:
            raise RuntimeError(f"POST {route}: {r.status_code} {r.text[:500]}")
        return r.json()

    def get(self, route: str, params: dict) -> dict:
        r = self.c.get(API + route, params=params)
        if r.status_code != 200:
            raise RuntimeError(f"GET {route}: {r.status_code} {r.text[:500]}")
        return r.json()

    def experiment(self, name: str) -> str:
        return self.post("/experiments/create", {"name": name})["experiment_id"]

    def run(self, exp: str, tags: list | None = None) -> str:
        body = {"experiment_id": exp, "start_time": int(time.time() * 1000)}
        if tags:
            body["tags"] = tags
        return self.post("/runs/create", body)["run"]["info"]["run_id"]


def drive(name: str, a, work: Path) -> dict:
    srv = launch(name, a, work)
    res: dict = {}
    try:
        res["ready s"] = srv.wait_ready(a.start_timeout)
        progress(name, f"ready in {res['ready s']:.2f} s at {srv.url}")
        rest = Rest(srv.url)
        now = int(time.time() * 1000)
        # calls
        exp = rest.experiment("bench-calls")
        run = rest.run(exp)
        rest.post("/runs/log-parameter", {"run_id": run, "key": "warm", "value": "1"})
        rest.post("/runs/log-metric", {"run_id": run, "key": "warm", "value": 1.0, "timestamp": now, "step": 0})
        for kind in ("log-parameter", "log-metric"):
            times = []
            for i in range(a.calls):
                if kind == "log-parameter":
                    body = {"run_id": run, "key": f"p{i}", "value": f"{i * 0.1:.1f}"}
                else:
                    body = {"run_id": run, "key": "loss", "value": 1.0 / (i + 1), "timestamp": now + i, "step": i}
                t = time.perf_counter()
                rest.post("/runs/" + kind, body)
                times.append(time.perf_counter() - t)
            res[f"{kind} ms/call"] = 1e3 * sum(times) / len(times)
            progress(name, f"{kind}: mean {res[f'{kind} ms/call']:.3f} ms/call, "
                           f"median {1e3 * statistics.median(times):.3f}")
        # batch
        exp = rest.experiment("bench-batch")
        warm = rest.run(exp)
        rest.post("/runs/log-batch", {"run_id": warm, "metrics": [{"key": "m0", "value": 0.0, "timestamp": now, "step": 0}]})
        run = rest.run(exp)
        rng = random.Random(1)
        per_key = max(1, a.batch_size // 10)
        batches = [{"run_id": run, "metrics": [{"key": f"m{k}", "value": rng.random(), "timestamp": now,
                                                "step": b * per_key + s} for s in range(per_key) for k in range(10)]}
                   for b in range(a.batches)]
        t = time.perf_counter()
        for body in batches:
            rest.post("/runs/log-batch", body)
        el = time.perf_counter() - t
        res["log-batch metrics/s"] = sum(len(b["metrics"]) for b in batches) / el
        progress(name, f"log-batch: {res['log-batch metrics/s']:,.0f} metrics/s")
        # history
        hrun = rest.run(exp)
        for s0 in range(0, a.history_points, 1000):
            rest.post("/runs/log-batch", {"run_id": hrun, "metrics": [
                {"key": "loss", "value": 1.0 / (i + 1), "timestamp": now + i, "step": i}
                for i in range(s0, min(a.history_points, s0 + 1000))]})

        def history() -> int:
            n, token = 0, None
            while True:
                params = {"run_id": hrun, "metric_key": "loss"}
                if token:
                    params["page_token"] = token
                page = rest.get("/metrics/get-history", params)
                n += len(page.get("metrics", []))
                token = page.get("next_page_token")
                if not token:
                    return n

        assert history() == a.history_points, "history: wrong number of points"
        times = []
        for _ in range(a.repeat):
            t = time.perf_counter()
            got = history()
            times.append(time.perf_counter() - t)
        assert got == a.history_points
        res["history ms"] = 1e3 * statistics.median(times)
        progress(name, f"history {a.history_points}: {res['history ms']:.1f} ms")
        # search
        sexp = rest.experiment("bench-search")
        rng = random.Random(7)
        expected = []
        t = time.perf_counter()
        for i in range(a.search_runs):
            rmse, alpha = rng.random(), ALPHAS[i % 10]
            r = rest.run(sexp, tags=[{"key": "tag", "value": "x"}])
            rest.post("/runs/log-batch", {
                "run_id": r,
                "params": [{"key": "alpha", "value": alpha}, {"key": "l1_ratio", "value": f"{(i % 7) / 7:.3f}"}],
                "metrics": [{"key": "rmse", "value": rmse, "timestamp": now, "step": 0},
                            {"key": "r2", "value": rng.random(), "timestamp": now, "step": 0}]})
            if alpha == "0.1" and rmse < 0.5:
                expected.append(rmse)
        res["populate s"] = time.perf_counter() - t
        expected = sorted(expected)[:100]
        body = {"experiment_ids": [sexp], "filter": FILTER, "max_results": 100, "order_by": ["metrics.rmse ASC"]}
        rest.post("/runs/search", body)
        times = []
        for _ in range(a.repeat):
            t = time.perf_counter()
            page = rest.post("/runs/search", body)
            times.append(time.perf_counter() - t)
        got = [next(m["value"] for m in r["data"]["metrics"] if m["key"] == "rmse") for r in page.get("runs", [])]
        assert got == expected, f"search: wrong answer ({len(got)} runs)"
        res["search ms"] = 1e3 * statistics.median(times)
        progress(name, f"search over {a.search_runs} runs: {res['search ms']:.1f} ms "
                       f"(populate {res['populate s']:.1f} s)")
        # artifacts
        src = work / "blob.bin"
        size = src.stat().st_size

        def chunks():
            with open(src, "rb") as f:
                while block := f.read(1 << 20):
                    yield block

        rest.c.put(f"{ART}/warm/w.bin", content=b"x" * 1024).raise_for_status()
        up, down = [], []
        for k in range(a.artifact_repeat):
            path = f"{ART}/bench/{k}/blob.bin"
            t = time.perf_counter()
            r = rest.c.put(path, content=chunks())
            up.append(time.perf_counter() - t)
            if r.status_code != 200:
                raise RuntimeError(f"PUT artifact: {r.status_code} {r.text[:500]}")
            t = time.perf_counter()
            n = 0
            with rest.c.stream("GET", path) as r:
                r.raise_for_status()
                for block in r.iter_raw(1 << 20):
                    n += len(block)
            down.append(time.perf_counter() - t)
            assert n == size, f"download: {n} bytes, expected {size}"
        res["upload MB/s"] = size / 1e6 / statistics.median(up)
        res["download MB/s"] = size / 1e6 / statistics.median(down)
        progress(name, f"artifacts {size / 1e6:.0f} MB: up {res['upload MB/s']:.0f} MB/s, "
                       f"down {res['download MB/s']:.0f} MB/s")
        rest.c.close()
    finally:
        srv.stop()
    return res


def verdict(figure: str, value: float | None) -> str:
    if value is None or figure not in TARGETS:
        return "-"
    target, how = TARGETS[figure]
    return "PASS" if (value < target if how == "lt" else value >= target) else "MISS"


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def report(fl: dict, ml: dict, a) -> list[dict]:
    higher = {"log-batch metrics/s", "upload MB/s", "download MB/s"}
    rows = []
    for key in ("ready s", "log-parameter ms/call", "log-metric ms/call", "log-batch metrics/s", "search ms",
                "populate s", "history ms", "upload MB/s", "download MB/s"):
        f, m = fl.get(key), ml.get(key)
        figure = key
        judged = key
        if key == "search ms":
            figure = f"search {a.search_runs} runs ms"
            judged = figure
        elif key == "populate s":
            figure = f"populate {a.search_runs} runs s (not judged)"
            judged = None
        ratio = None
        if f and m:
            ratio = f / m if key in higher else m / f
        tgt = TARGETS.get(judged) if judged else None
        target = "-" if not tgt else (("< " if tgt[1] == "lt" else ">= ") + f"{tgt[0]:,g}")
        if key == "search ms" and a.search_runs != 10000:
            target = "< 50 @10k"
        rows.append({"figure": figure, "flowml": f, "mlflow": m, "ratio": ratio, "target": target,
                     "verdict": verdict(judged, f) if judged else "-"})
    w = max(len(r["figure"]) for r in rows)
    print()
    print(f"{'figure':<{w}}  {'flowml':>10}  {'MLflow':>10}  {'ratio':>7}  {'target':>10}  verdict")
    for r in rows:
        ratio = f"{r['ratio']:.1f}x" if r["ratio"] else "-"
        print(f"{r['figure']:<{w}}  {fmt(r['flowml']):>10}  {fmt(r['mlflow']):>10}  {ratio:>7}  "
              f"{r['target']:>10}  {r['verdict']}")
    print("\nratio: how many times faster flowml is (MLflow time / flowml time; for rates, flowml / MLflow).")
    return rows


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flowml", default=str(here / ".venv/bin/flowml"))
    ap.add_argument("--mlflow", default="/tmp/mlflow-venv/bin/mlflow")
    ap.add_argument("--skip-mlflow", action="store_true")
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--search-runs", type=int, default=2000)
    ap.add_argument("--history-points", type=int, default=20_000)
    ap.add_argument("--artifact-mb", type=int, default=200)
    ap.add_argument("--artifact-repeat", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--start-timeout", type=float, default=120)
    ap.add_argument("--json-out")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (its path is printed)")
    a = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-server-"))
    load = os.getloadavg()
    print(f"workdir {work}; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    try:
        with open(work / "blob.bin", "wb") as f:
            for _ in range(a.artifact_mb):
                f.write(os.urandom(1 << 20))
        results = {"flowml": drive("flowml", a, work)}
        if not a.skip_mlflow:
            if not Path(a.mlflow).exists():
                print(f"!! {a.mlflow} not found: MLflow's side is skipped", file=sys.stderr)
            else:
                results["mlflow"] = drive("mlflow", a, work)
        end = os.getloadavg()
        print(f"load average at end {end[0]:.2f} {end[1]:.2f} {end[2]:.2f}")
        rows = report(results["flowml"], results.get("mlflow", {}), a)
        if a.json_out:
            Path(a.json_out).write_text(json.dumps({"results": results, "rows": rows, "args": vars(a),
                                                    "loadavg": [load, end]}, indent=1))
    finally:
        if a.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
