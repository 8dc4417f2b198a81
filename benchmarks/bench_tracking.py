"""Time flowml's tracking against MLflow's on the same workloads, each on its embedded SQLite store.

Why: a pipeline step, a training loop and a notebook all log through the tracking API, so a
slow call is paid thousands of times; and ``search_runs`` and a metric's history are what a
user waits for when comparing runs. The issue's figures for MLflow 3.17 on SQLite: 10 ms per
``log_param``/``log_metric`` call, 4,400 metrics/s through ``log_batch``, 64 ms for a
``search_runs`` over 200 runs and 1.1 s for a 20,000-point history.

Both sides run the identical workload, in their own interpreter: this script runs itself
as ``--side flowml`` under the interpreter that has flowml (default: this one) and as
``--side mlflow`` under ``--mlflow-python`` (a separate virtualenv, so that MLflow and flowml
never share dependencies). Each side prints its figures as JSON, and the driver prints them
next to each other with the ratio and flowml's targets. Every side works in a fresh folder
with one SQLite file per workload (``sqlite:////abs/path/<workload>.db``). Untimed before
every timed part: creating the store (MLflow runs its Alembic migrations then), one warm-up
call of the same kind, and populating the data a read needs.

  calls     inside an active run of the fluent API (``with X.start_run():``), --calls
            ``log_param`` calls (distinct keys) and then --calls ``log_metric`` calls (one
            key, step 0, 1, ...), each timed alone. Reported: mean (total / calls) and median
            ms per call. Target: < 1 ms per call (judged on the mean).
  batch     ``client.log_batch(run_id, metrics=[Metric ...])``, --batches batches of
            --batch-size metrics (10 keys, --batch-size / 10 steps each) into one run.
            Reported: metrics/s = all metrics / total time. Target: >= 200,000 metrics/s.
  search    for each size in --search-runs, an experiment of that many runs, each with
            params alpha (one of 10 values) and l1_ratio, metrics rmse and r2 (uniform in
            [0, 1), the same seeded values on both sides) and a tag. Populated with
            ``create_run`` + ``log_batch`` per run (the fastest the public API allows on both
            sides; the time is reported, not judged). Then ``client.search_runs([exp],
            "metrics.rmse < 0.5 and params.alpha = '0.1'", max_results=100,
            order_by=["metrics.rmse ASC"])``: median of --repeat calls. About 5% of the runs
            match; the page is the 100 lowest. Both sides must return the same 100 rmse values
            in the same order (column "same"). Target at 10,000 runs: < 50 ms.
  history   one run with a --history-points-point metric (one key, steps 0, 1, ...), logged
            with ``log_batch`` 1,000 at a time (populate time reported), then
            ``client.get_metric_history(run_id, key)``: median of --repeat calls; the answer
            must have every point. Target: < 50 ms.
  pipeline  flowml only (MLflow has no pipelines): a chain of N trivial shell steps from
            gen_pipelines.py (``cat SRC > out/sI.txt && echo I >> out/sI.txt``), run with
            ``flowml run pipeline.yaml --force-all`` (every step runs and is tracked: a parent
            run and one child run per step) and with ``--force-all --no-track`` (the same
            execution, no runs), alternating which goes first, --pipeline-repeat times each,
            after one untimed run of each. Overhead per step = (median tracked - median
            untracked) / N. Target: < 5 ms per step.

Fairness: both sides get the same environment (bytecode caching on, as in the other
scripts; no tracking URI inherited; MLflow's telemetry off, since this machine is offline
and a failing upload would be charged to MLflow). MLflow's async logging stays at its
default (off), so every MLflow call is synchronous like flowml's. pyenv shims are
resolved to the real interpreter.

``--profile DIR`` runs the timed parts of each side under cProfile and writes
``DIR/<side>-<workload>.pstats`` (and, for the pipeline, one tracked and one untracked run
under cProfile); the timings of a profiled run are not comparable and are not judged.

Usage::

    .venv/bin/python benchmarks/bench_tracking.py --mlflow-python /tmp/mlflow-venv/bin/python
    .venv/bin/python benchmarks/bench_tracking.py --only calls,batch --json-out t.json
    .venv/bin/python benchmarks/bench_tracking.py --skip-mlflow --profile /tmp/prof

Only the standard library is used by the driver; each side imports only its own package.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_pipelines as gen  # noqa: E402

WORKLOADS = ("calls", "batch", "search", "history", "pipeline")
SIDE_WORKLOADS = ("calls", "batch", "search", "history")
ALPHAS = [f"{a / 10:.1f}" for a in range(1, 11)]  # '0.1' .. '1.0'
FILTER = "metrics.rmse < 0.5 and params.alpha = '0.1'"
ORDER_BY = ["metrics.rmse ASC"]
HISTORY_KEY = "loss"
RESULT_MARK = "BENCH_TRACKING_RESULT "
PROGRESS_MARK = "  ["

TARGETS = {  # figure -> (target, "lt" | "ge", unit)
    "log_param ms/call": (1.0, "lt", "ms"),
    "log_metric ms/call": (1.0, "lt", "ms"),
    "log_batch metrics/s": (200_000, "ge", "/s"),
    "search 10000 runs ms": (50.0, "lt", "ms"),
    "history ms": (50.0, "lt", "ms"),
    "pipeline ovh ms/step": (5.0, "lt", "ms"),
}


# =========================================================================== one side


class Side:
    """The few calls that differ between flowml and MLflow; everything else is shared."""

    def __init__(self, name: str) -> None:
        self.name = name
        if name == "flowml":
            import flowml
            from flowml.tracking.entities import Metric

            self.mod, self.Metric, self.version = flowml, Metric, flowml.__version__
            self.Client = flowml.FlowmlClient
        else:
            import mlflow
            from mlflow import MlflowClient
            from mlflow.entities import Metric, Param, RunTag

            self.mod, self.Metric, self.version = mlflow, Metric, mlflow.__version__
            self.Param, self.RunTag, self.Client = Param, RunTag, MlflowClient

    def log_batch(self, client, run_id: str, metrics: list, params: dict | None = None,
                  tags: dict | None = None) -> None:
        if self.name == "flowml":
            client.log_batch(run_id, metrics=metrics, params=params or {}, tags=tags or {})
        else:
            client.log_batch(run_id, metrics=metrics, params=[self.Param(k, v) for k, v in (params or {}).items()],
                             tags=[self.RunTag(k, v) for k, v in (tags or {}).items()])


def progress(side: str, msg: str) -> None:
    print(f"{PROGRESS_MARK}{side}] {msg}", file=sys.stderr, flush=True)


class Profiler:
    """cProfile around the timed parts, when --profile is given; otherwise nothing."""

    def __init__(self, folder: str | None, side: str) -> None:
        self.folder, self.side = folder, side

    @contextlib.contextmanager
    def __call__(self, workload: str):
        if not self.folder:
            yield
            return
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
        try:
            yield
        finally:
            prof.disable()
            os.makedirs(self.folder, exist_ok=True)
            prof.dump_stats(os.path.join(self.folder, f"{self.side}-{workload}.pstats"))


def uri_for(workdir: Path, name: str) -> str:
    return "sqlite:///" + str((workdir / f"{name}.db").resolve())


def bench_calls(s: Side, a, workdir: Path, prof: Profiler) -> dict:
    t0 = time.perf_counter()
    s.mod.set_tracking_uri(uri_for(workdir, "calls"))
    s.mod.set_experiment("bench-calls")
    setup = time.perf_counter() - t0
    res: dict = {"setup_s": setup}
    with s.mod.start_run():
        s.mod.log_param("warmup", "1")  # untimed: first-call costs (connections, imports)
        s.mod.log_metric("warmup", 1.0, step=0)
        for kind in ("log_param", "log_metric"):
            times = []
            with prof(kind):
                for i in range(a.calls):
                    t = time.perf_counter()
                    if kind == "log_param":
                        s.mod.log_param(f"p{i}", f"{i * 0.1:.1f}")
                    else:
                        s.mod.log_metric(HISTORY_KEY, 1.0 / (i + 1), step=i)
                    times.append(time.perf_counter() - t)
            res[kind] = {"mean_ms": 1e3 * sum(times) / len(times), "median_ms": 1e3 * statistics.median(times),
                         "min_ms": 1e3 * min(times), "calls": len(times)}
            progress(s.name, f"{kind}: mean {res[kind]['mean_ms']:.3f} ms/call")
    return res


def bench_batch(s: Side, a, workdir: Path, prof: Profiler) -> dict:
    client = s.Client(uri_for(workdir, "batch"))
    exp = client.create_experiment("bench-batch")
    now = int(time.time() * 1000)
    warm = client.create_run(exp).info.run_id
    s.log_batch(client, warm, [s.Metric("m0", 0.0, now, 0)])  # untimed warm-up
    run_id = client.create_run(exp).info.run_id
    rng = random.Random(1)
    per_key = max(1, a.batch_size // 10)
    batches = []
    for b in range(a.batches):
        batches.append([s.Metric(f"m{i % 10}", rng.random(), now + b, b * per_key + i // 10)
                        for i in range(a.batch_size)])
    times = []
    with prof("log_batch"):
        for batch in batches:
            t = time.perf_counter()
            s.log_batch(client, run_id, batch)
            times.append(time.perf_counter() - t)
    total = sum(len(b) for b in batches)
    res = {"metrics": total, "total_s": sum(times), "metrics_per_s": total / sum(times),
           "median_batch_ms": 1e3 * statistics.median(times), "first_batch_ms": 1e3 * times[0],
           "last_batch_ms": 1e3 * times[-1]}
    progress(s.name, f"log_batch: {res['metrics_per_s']:,.0f} metrics/s "
                     f"(batch 1 {res['first_batch_ms']:.1f} ms, batch {a.batches} {res['last_batch_ms']:.1f} ms)")
    return res


def bench_search(s: Side, a, workdir: Path, prof: Profiler) -> dict:
    res: dict = {}
    for n in a.search_runs:
        client = s.Client(uri_for(workdir, f"search{n}"))
        exp = client.create_experiment(f"bench-search-{n}")
        rng = random.Random(n)
        now = int(time.time() * 1000)
        t0 = time.perf_counter()
        for k in range(n):
            run_id = client.create_run(exp, start_time=now + k).info.run_id
            s.log_batch(client, run_id,
                        [s.Metric("rmse", rng.random(), now + k, 0), s.Metric("r2", rng.random(), now + k, 0)],
                        params={"alpha": ALPHAS[k % len(ALPHAS)], "l1_ratio": f"{(k % 7) / 7:.3f}"},
                        tags={"team": "fraud" if k % 2 else "churn"})
            if (k + 1) % 2000 == 0:
                progress(s.name, f"populating {n} runs: {k + 1} in {time.perf_counter() - t0:.0f} s")
        populate = time.perf_counter() - t0

        def search():
            return client.search_runs([exp], FILTER, max_results=100, order_by=ORDER_BY)

        page = search()  # untimed warm-up; also the answer that is checked
        times = []
        with prof(f"search{n}"):
            for _ in range(a.repeat):
                t = time.perf_counter()
                search()
                times.append(time.perf_counter() - t)
        rmse = [r.data.metrics["rmse"] for r in page]
        ok = (all(r.data.params["alpha"] == "0.1" for r in page) and all(v < 0.5 for v in rmse)
              and rmse == sorted(rmse))
        res[str(n)] = {"runs": n, "populate_s": populate, "median_ms": 1e3 * statistics.median(times),
                       "min_ms": 1e3 * min(times), "all_ms": [round(1e3 * x, 3) for x in times],
                       "returned": len(page), "answer_ok": ok,
                       "answer_digest": hashlib.sha1(repr([round(v, 12) for v in rmse]).encode()).hexdigest()[:12]}
        progress(s.name, f"search over {n} runs: median {res[str(n)]['median_ms']:.1f} ms "
                         f"(populated in {populate:.1f} s)")
    return res


def bench_history(s: Side, a, workdir: Path, prof: Profiler) -> dict:
    client = s.Client(uri_for(workdir, "history"))
    exp = client.create_experiment("bench-history")
    run_id = client.create_run(exp).info.run_id
    now = int(time.time() * 1000)
    t0 = time.perf_counter()
    for start in range(0, a.history_points, 1000):
        s.log_batch(client, run_id, [s.Metric(HISTORY_KEY, 1.0 / (i + 1), now + i, i)
                                     for i in range(start, min(a.history_points, start + 1000))])
    populate = time.perf_counter() - t0
    hist = client.get_metric_history(run_id, HISTORY_KEY)  # untimed warm-up
    times = []
    with prof("history"):
        for _ in range(a.repeat):
            t = time.perf_counter()
            hist = client.get_metric_history(run_id, HISTORY_KEY)
            times.append(time.perf_counter() - t)
    steps = sorted(m.step for m in hist)
    res = {"points": a.history_points, "populate_s": populate, "median_ms": 1e3 * statistics.median(times),
           "min_ms": 1e3 * min(times), "all_ms": [round(1e3 * x, 3) for x in times], "returned": len(hist),
           "answer_ok": steps == list(range(a.history_points))}
    progress(s.name, f"history of {a.history_points} points: median {res['median_ms']:.1f} ms "
                     f"(populated in {populate:.1f} s)")
    return res


def run_side(a) -> int:
    t0 = time.perf_counter()
    s = Side(a.side)
    import_s = time.perf_counter() - t0
    workdir = Path(a.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    prof = Profiler(a.profile, a.side)
    out: dict = {"side": a.side, "version": s.version, "python": sys.executable, "import_s": import_s}
    fns = {"calls": bench_calls, "batch": bench_batch, "search": bench_search, "history": bench_history}
    for w in a.only:
        if w in fns:
            out[w] = fns[w](s, a, workdir, prof)
    print(RESULT_MARK + json.dumps(out), flush=True)
    return 0


# =========================================================================== the driver


def side_env(base: dict[str, str]) -> dict[str, str]:
    env = dict(base)
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "true"
    return env


def real_python(explicit: str) -> str:
    """An interpreter path with a pyenv shim resolved to the real executable."""
    if os.sep + "shims" + os.sep in explicit and shutil.which("pyenv"):
        p = subprocess.run(["pyenv", "which", os.path.basename(explicit)], capture_output=True, text=True)
        if p.returncode == 0 and p.stdout.strip():
            return p.stdout.strip()
    return explicit


def call_side(name: str, python: str, a, workroot: Path, env: dict[str, str]) -> dict | None:
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workroot))
    argv = [python, str(Path(__file__).resolve()), "--side", name, "--workdir", str(workdir),
            "--only", ",".join(w for w in a.only if w in SIDE_WORKLOADS),
            "--calls", str(a.calls), "--batches", str(a.batches), "--batch-size", str(a.batch_size),
            "--search-runs", *map(str, a.search_runs), "--history-points", str(a.history_points),
            "--repeat", str(a.repeat)]
    if a.profile:
        argv += ["--profile", a.profile]
    print(f"== {name} side: {python}", flush=True)
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    other: list[str] = []
    assert p.stderr is not None and p.stdout is not None
    for line in p.stderr:  # our progress lines through, the package's log chatter kept for errors
        if line.startswith(PROGRESS_MARK):
            print(line.rstrip(), flush=True)
        else:
            other.append(line)
    stdout = p.stdout.read()
    rc = p.wait()
    result = None
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK):])
    if rc != 0 or result is None:
        print(f"!! {name} side failed (exit {rc}):\n{''.join(other[-40:])}{stdout[-2000:]}", file=sys.stderr)
        return None
    return result


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"exit {p.returncode}: {' '.join(cmd)}\n{p.stderr.decode(errors='replace')[-2000:]}")
    return dt


def bench_pipeline(a, flowml_cmd: list[str], python: str, workroot: Path, env: dict[str, str]) -> dict:
    res: dict = {}
    for n in a.pipeline_n:
        d = Path(tempfile.mkdtemp(prefix=f"pipe-chain{n}-", dir=workroot))
        gen.generate("chain", n, d, "flowml")
        tracked = [*flowml_cmd, "run", "pipeline.yaml", "--force-all"]
        untracked = [*tracked, "--no-track"]
        timed(tracked, d, env)  # untimed warm-up of both: plan stored, store created, page cache warm
        timed(untracked, d, env)
        times: dict[str, list[float]] = {"tracked": [], "untracked": []}
        for r in range(a.pipeline_repeat):
            order = ("tracked", "untracked") if r % 2 == 0 else ("untracked", "tracked")
            for which in order:
                times[which].append(timed(tracked if which == "tracked" else untracked, d, env))
        med = {k: statistics.median(v) for k, v in times.items()}
        pairs = [t - u for t, u in zip(times["tracked"], times["untracked"])]
        res[str(n)] = {"steps": n, "tracked_s": med["tracked"], "untracked_s": med["untracked"],
                       "tracked_all": [round(x, 4) for x in times["tracked"]],
                       "untracked_all": [round(x, 4) for x in times["untracked"]],
                       "ovh_ms_per_step": 1e3 * (med["tracked"] - med["untracked"]) / n,
                       "ovh_ms_per_step_min": 1e3 * (min(times["tracked"]) - min(times["untracked"])) / n,
                       "ovh_ms_per_step_paired": 1e3 * statistics.median(pairs) / n}
        print(f"  [pipeline] chain N={n}: tracked {med['tracked']:.3f} s, untracked {med['untracked']:.3f} s, "
              f"{res[str(n)]['ovh_ms_per_step']:.2f} ms/step", flush=True)
        if a.profile:
            os.makedirs(a.profile, exist_ok=True)
            for which, cmd in (("tracked", tracked), ("untracked", untracked)):
                out = os.path.join(a.profile, f"flowml-pipeline{n}-{which}.pstats")
                timed([python, "-m", "cProfile", "-o", out, "-m", "flowml", *cmd[len(flowml_cmd):]], d, env)
        if not a.keep:
            shutil.rmtree(d, ignore_errors=True)
    return res


def verdict(figure: str, value: float | None) -> str:
    if value is None:
        return "-"
    target, how, _ = TARGETS[figure]
    ok = value < target if how == "lt" else value >= target
    return "PASS" if ok else "MISS"


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "/s":
        return f"{value:,.0f}"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def report(fl: dict | None, ml: dict | None, pipe: dict | None, a) -> list[dict]:
    rows: list[dict] = []

    def get(d: dict | None, *path):
        for p in path:
            if not isinstance(d, dict) or p not in d:
                return None
            d = d[p]
        return d

    def add(figure: str, path: tuple, unit: str, judged: str | None, higher_better: bool = False, note: str = ""):
        f, m = get(fl, *path), get(ml, *path)
        ratio = None
        if f and m:
            ratio = f / m if higher_better else m / f
        rows.append({"figure": figure, "flowml": f, "mlflow": m, "ratio": ratio, "unit": unit,
                     "target": TARGETS[judged][0] if judged else None,
                     "target_how": TARGETS[judged][1] if judged else None,
                     "verdict": verdict(judged, f) if judged else "", "note": note})

    if "calls" in a.only:
        for kind in ("log_param", "log_metric"):
            add(f"{kind} ms/call (mean)", ("calls", kind, "mean_ms"), "ms", f"{kind} ms/call")
            add(f"{kind} ms/call (median)", ("calls", kind, "median_ms"), "ms", None)
    if "batch" in a.only:
        add(f"log_batch metrics/s ({a.batches} x {a.batch_size})", ("batch", "metrics_per_s"), "/s",
            "log_batch metrics/s", higher_better=True)
    if "search" in a.only:
        for n in a.search_runs:
            judged = "search 10000 runs ms" if n == 10000 else None
            same = None
            df, dm = get(fl, "search", str(n), "answer_digest"), get(ml, "search", str(n), "answer_digest")
            if df and dm:
                same = "same answer" if df == dm else "DIFFERENT ANSWERS"
            oks = [get(x, "search", str(n), "answer_ok") for x in (fl, ml) if get(x, "search", str(n))]
            note = ", ".join(filter(None, [same, None if all(oks) else "WRONG ANSWER"]))
            add(f"search_runs over {n:,} runs, ms (median)", ("search", str(n), "median_ms"), "ms", judged,
                note=note)
            add(f"  populate {n:,} runs, s (not judged)", ("search", str(n), "populate_s"), "s", None)
    if "history" in a.only:
        oks = [get(x, "history", "answer_ok") for x in (fl, ml) if get(x, "history")]
        add(f"get_metric_history {a.history_points:,} points, ms (median)", ("history", "median_ms"), "ms",
            "history ms" if a.history_points == 20000 else None, note="" if all(oks) else "WRONG ANSWER")
        add(f"  populate {a.history_points:,} points, s (not judged)", ("history", "populate_s"), "s", None)
    if pipe:
        for n in a.pipeline_n:
            p = pipe.get(str(n))
            if p:
                rows.append({"figure": f"pipeline ovh ms/step, chain N={n} (tracked {p['tracked_s']:.3f} s "
                                       f"- untracked {p['untracked_s']:.3f} s)",
                             "flowml": p["ovh_ms_per_step"], "mlflow": None, "ratio": None, "unit": "ms",
                             "target": 5.0, "target_how": "lt", "verdict": verdict("pipeline ovh ms/step",
                                                                                   p["ovh_ms_per_step"]),
                             "note": f"min-based {p['ovh_ms_per_step_min']:.2f}, "
                                     f"paired {p['ovh_ms_per_step_paired']:.2f}"})

    w = max(len(r["figure"]) for r in rows) if rows else 10
    print()
    print(f"{'figure':<{w}}  {'flowml':>12}  {'MLflow':>12}  {'ratio':>7}  {'target':>10}  verdict")
    for r in rows:
        ratio = f"{r['ratio']:.1f}x" if r["ratio"] else "-"
        tgt = "-" if r["target"] is None else (("< " if r["target_how"] == "lt" else ">= ")
                                               + fmt(r["target"], r["unit"]))
        print(f"{r['figure']:<{w}}  {fmt(r['flowml'], r['unit']):>12}  {fmt(r['mlflow'], r['unit']):>12}  "
              f"{ratio:>7}  {tgt:>10}  {r['verdict']}{'  ' + r['note'] if r['note'] else ''}")
    print("\nratio: how many times faster flowml is (MLflow time / flowml time; for metrics/s, flowml / MLflow).")
    return rows


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--side", choices=("flowml", "mlflow"), help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    ap.add_argument("--only", default=",".join(WORKLOADS),
                    help=f"comma-separated workloads (default: all of {','.join(WORKLOADS)})")
    ap.add_argument("--calls", type=int, default=300, help="log_param and log_metric calls each (default 300)")
    ap.add_argument("--batches", type=int, default=20, help="log_batch calls (default 20)")
    ap.add_argument("--batch-size", type=int, default=1000, help="metrics per log_batch (default 1000, MLflow's limit)")
    ap.add_argument("--search-runs", type=int, nargs="+", default=[10000, 200],
                    help="experiment sizes to search (default 10000 200)")
    ap.add_argument("--history-points", type=int, default=20000, help="points in the metric history (default 20000)")
    ap.add_argument("--repeat", type=int, default=7, help="timed repetitions of a search or history read (median)")
    ap.add_argument("--pipeline-n", type=int, nargs="+", default=[50, 200], help="chain lengths (default 50 200)")
    ap.add_argument("--pipeline-repeat", type=int, default=7, help="timed runs of each pipeline variant (default 7)")
    ap.add_argument("--flowml-python", default=None,
                    help="interpreter that has flowml (default: this one, else the one beside the flowml executable)")
    ap.add_argument("--flowml", default=None,
                    help="flowml executable (default: the one beside --flowml-python, else shutil.which('flowml'))")
    ap.add_argument("--mlflow-python", default="/tmp/mlflow-venv/bin/python",
                    help="interpreter of a virtualenv with mlflow (default /tmp/mlflow-venv/bin/python)")
    ap.add_argument("--skip-mlflow", action="store_true", help="run flowml's side only")
    ap.add_argument("--profile", default=None, metavar="DIR", help="write cProfile stats of the timed parts to DIR")
    ap.add_argument("--as-is-env", action="store_true", help="do not switch bytecode caching on (see the README)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs (their paths are printed)")
    ap.add_argument("--json-out", default=None, help="also write every figure as JSON to this file")
    a = ap.parse_args(argv)
    a.only = [w.strip() for w in a.only.split(",") if w.strip()]
    bad = [w for w in a.only if w not in WORKLOADS]
    if bad:
        ap.error(f"unknown workload(s) {bad}; choose from {WORKLOADS}")
    if a.batch_size > 1000:
        ap.error("--batch-size above 1000 is more than MLflow accepts in one log_batch")
    return a


def find_flowml_python(a) -> str:
    if a.flowml_python:
        return real_python(a.flowml_python)
    try:
        import flowml  # noqa: F401

        return real_python(sys.executable)
    except ImportError:
        exe = gen.resolve_exe("flowml", a.flowml)
        if exe and os.path.exists(os.path.join(os.path.dirname(exe), "python")):
            return os.path.join(os.path.dirname(exe), "python")
        raise SystemExit("no interpreter with flowml found: pass --flowml-python")


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    if a.side:
        return run_side(a)

    workroot = Path(tempfile.mkdtemp(prefix="flowml-bench-tracking-"))
    pycache = None if a.as_is_env else os.path.join(tempfile.gettempdir(), "flowml-bench-pycache")
    env = side_env(gen.bench_env(pycache))
    flowml_python = find_flowml_python(a)
    beside = os.path.join(os.path.dirname(flowml_python), "flowml")  # the CLI of the same install
    flowml_exe = gen.resolve_exe("flowml", a.flowml or (beside if os.path.exists(beside) else None))
    flowml_cmd = [flowml_exe] if flowml_exe else [flowml_python, "-m", "flowml"]
    mlflow_python = None
    if not a.skip_mlflow and any(w in SIDE_WORKLOADS for w in a.only):
        mlflow_python = real_python(a.mlflow_python)
        if not os.path.exists(mlflow_python):
            print(f"!! {mlflow_python} not found: MLflow's side is skipped. Make it with\n"
                  "   python -m venv /tmp/mlflow-venv && /tmp/mlflow-venv/bin/pip install mlflow", file=sys.stderr)
            mlflow_python = None
    try:
        fl = ml = pipe = None
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"workdir {workroot}; load average at start {load:.2f}", flush=True)
        if any(w in SIDE_WORKLOADS for w in a.only):
            fl = call_side("flowml", flowml_python, a, workroot, env)
            if mlflow_python:
                ml = call_side("mlflow", mlflow_python, a, workroot, env)
        if "pipeline" in a.only:
            print(f"== pipeline overhead (flowml only): {' '.join(flowml_cmd)}", flush=True)
            pipe = bench_pipeline(a, flowml_cmd, flowml_python, workroot, env)
        print(f"\nflowml {fl['version'] if fl else '?'} ({flowml_python}); "
              f"MLflow {ml['version'] if ml else 'not run'}{f' ({mlflow_python})' if ml else ''}; "
              f"load average at end {os.getloadavg()[0]:.2f}")
        rows = report(fl, ml, pipe, a)
        if a.profile:
            print(f"\ncProfile stats in {a.profile} (timings of this run are inflated by the profiler)")
        if a.json_out:
            Path(a.json_out).write_text(json.dumps({"flowml": fl, "mlflow": ml, "pipeline": pipe, "rows": rows},
                                                   indent=2))
    finally:
        if a.keep:
            print(f"kept {workroot}")
        else:
            shutil.rmtree(workroot, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
