"""Time ``flowml models serve`` against ``mlflow models serve`` on the same model and client.

Why: a scoring server's cost per request is what every online prediction pays, and the issue
sets targets against MLflow's server (3.17, sklearn logistic regression on iris): 93 requests/s
single-row at concurrency 8 (p50 83 ms, p99 142 ms), 78,000 rows/s in 10,000-row batches, 13 s
to start. Targets for flowml: 2,000 requests/s with p99 < 20 ms, 1,000,000 rows/s, ready < 2 s.

The model: ``LogisticRegression(max_iter=500)`` fitted on iris (a DataFrame of four double
columns), saved once by ``flowml.sklearn.save_model`` with an input example (skops, the default);
MLflow loads the same directory (``--serialization``
picks the format: skops by default, or cloudpickle/pickle). Each server is started by this script on a free port on
127.0.0.1 in its own process group, one after the other, and killed (SIGTERM to the group,
then SIGKILL) before the next starts::

    flowml models serve -m DIR --port P --workers W
    mlflow models serve -m DIR --port P --host 127.0.0.1 --workers W --env-manager local

The client is the same for both: a small asyncio HTTP/1.1 client on raw sockets (uvloop when
installed), one keep-alive connection per concurrent stream, requests pre-encoded, so that on a
2-core machine the client costs far less than the servers. Every answer is checked: status 200
and the predictions sklearn gives for that request's rows (parsed once per distinct request and
connection; a later answer must then be the same bytes, or it is parsed and compared again).

  ready   launch (``Popen``) to the first ``GET /ping`` answered 200 (polled every 10 ms), after
          one untimed start and stop (so neither side pays for compiling bytecode).
  single  --concurrency streams (default 8), each sending single-row ``dataframe_split``
          requests back to back (100 different iris rows in turn) for --seconds after a
          warm-up of --warmup requests; requests/s = answers / elapsed, and p50/p99 of the
          per-request latency (send to last byte read).
  batch   --batch-concurrency streams (default 2) sending 10,000-row ``dataframe_split``
          requests for --batch-seconds (at least 3 each) after one warm-up each; rows/s.

Usage::

    .venv/bin/python benchmarks/bench_scoring.py                 # both servers, 2 workers each
    .venv/bin/python benchmarks/bench_scoring.py --workers 1 --skip-mlflow --seconds 5
    .venv/bin/python benchmarks/bench_scoring.py --json-out scoring.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = {"ready s": (2.0, "lt"), "single req/s": (2000, "ge"), "single p99 ms": (20.0, "lt"),
           "batch rows/s": (1_000_000, "ge")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def save_model(folder: Path, serialization: str) -> tuple[Path, object, object]:
    import flowml.sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    clf = LogisticRegression(max_iter=500).fit(X, y)
    path = folder / "iris"
    with warnings.catch_warnings():  # pickle formats warn that they are unsafe to load from strangers
        warnings.simplefilter("ignore")
        flowml.sklearn.save_model(clf, str(path), input_example=X[:5], serialization_format=serialization)
    return path, clf, X


def bench_env() -> dict[str, str]:
    """Bytecode caching on (this machine sets PYTHONDONTWRITEBYTECODE), no tracking URI inherited,
    MLflow's telemetry off (the machine is offline)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "FLOWML_TRACKING_URI",
                                                             "MLFLOW_TRACKING_URI")}
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "flowml-bench-pycache")
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1")
    return env


def start(command: list[str], port: int, log: Path, timeout: float = 120) -> tuple[subprocess.Popen, float]:
    out = open(log, "wb")
    started = time.perf_counter()
    env = bench_env()
    env["PATH"] = os.path.dirname(command[0]) + os.pathsep + env.get("PATH", "")  # mlflow runs `uvicorn` by name
    proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5) as answer:
                if answer.status == 200:
                    return proc, time.perf_counter() - started
        except OSError:
            pass
        if proc.poll() is not None or time.perf_counter() - started > timeout:
            stop(proc)
            raise RuntimeError(f"{command[0]} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.01)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# the client ------------------------------------------------------------------------------------

def request_bytes(port: int, payload: bytes) -> bytes:
    head = (f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n")
    return head.encode() + payload


async def stream(port: int, requests: list[tuple[bytes, list]], until: float, latencies: list[float],
                 minimum: int = 0) -> int:
    """Send ``requests`` in turn on one keep-alive connection until ``until`` (and at least
    ``minimum`` of them); check each answer; returns how many were answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
    checked: dict[int, bytes] = {}
    done = 0
    clock = time.perf_counter
    try:
        while clock() < until or done < minimum:
            raw, want = requests[done % len(requests)]
            sent = clock()
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            length = None
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length is None:
                raise RuntimeError(f"no Content-Length in {head[:200]!r}")
            body = await reader.readexactly(length)
            latencies.append(clock() - sent)
            index = done % len(requests)
            if head[9:12] != b"200" or (checked.get(index) != body and json.loads(body)["predictions"] != want):
                raise RuntimeError(f"wrong answer: {head[:40]!r} {body[:300]!r}")
            checked[index] = body  # an identical body later is the same right answer: no need to parse it again
            done += 1
    finally:
        writer.close()
    return done


async def load(port: int, requests, concurrency: int, seconds: float, minimum: int = 0) -> tuple[int, float, list]:
    latencies: list[float] = []
    started = time.perf_counter()
    counts = await asyncio.gather(*[stream(port, requests[i::concurrency] or requests, started + seconds,
                                           latencies, minimum) for i in range(concurrency)])
    return sum(counts), time.perf_counter() - started, latencies


def run_loop(coroutine):
    try:
        import uvloop

        return uvloop.run(coroutine)
    except ImportError:
        return asyncio.run(coroutine)


def measure(port: int, clf, X, args) -> dict[str, float]:
    single = []
    for i in range(100):
        row = X.iloc[[i * 3 % len(X)]]
        payload = json.dumps({"dataframe_split": row.to_dict(orient="split")}).encode()
        single.append((request_bytes(port, payload), clf.predict(row).tolist()))
    batch_rows = X.sample(10_000, replace=True, random_state=0)
    batch_payload = json.dumps({"dataframe_split": batch_rows.to_dict(orient="split")}).encode()
    batch = [(request_bytes(port, batch_payload), clf.predict(batch_rows).tolist())]

    run_loop(load(port, single, args.concurrency, 0, minimum=args.warmup // args.concurrency))
    count, elapsed, latencies = run_loop(load(port, single, args.concurrency, args.seconds))
    latencies.sort()
    figures = {"single req/s": count / elapsed,
               "single p50 ms": 1000 * statistics.median(latencies),
               "single p99 ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
               "single requests": count}
    run_loop(load(port, batch, args.batch_concurrency, 0, minimum=1))
    count, elapsed, latencies = run_loop(load(port, batch, args.batch_concurrency, args.batch_seconds, minimum=3))
    figures.update({"batch rows/s": count * 10_000 / elapsed, "batch ms/request": 1000 * statistics.median(latencies),
                    "batch requests": count})
    return figures


def side(name: str, command: list[str], folder: Path, clf, X, args) -> dict[str, float]:
    """Start the server twice (the first start untimed: bytecode and page caches warm), then measure."""
    print(f"{name}: {' '.join(command)} --port P", flush=True)
    port = free_port()
    stop(start([*command, "--port", str(port)], port, folder / f"{name}-warmup.log")[0])
    port = free_port()
    proc, ready = start([*command, "--port", str(port)], port, folder / f"{name}.log")
    try:
        figures = {"ready s": ready, **measure(port, clf, X, args)}
    finally:
        stop(proc)
    print("  " + ", ".join(f"{k} {v:,.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()),
          flush=True)
    return figures


def verdict(name: str, value: float) -> str:
    if name not in TARGETS:
        return ""
    target, kind = TARGETS[name]
    ok = value < target if kind == "lt" else value >= target
    return f"{'PASS' if ok else 'FAIL'} ({'<' if kind == 'lt' else '>='} {target:,})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flowml", default=str(Path(sys.executable).with_name("flowml")))
    parser.add_argument("--mlflow", default="/tmp/mlflow-venv/bin/mlflow")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=int, default=400)
    parser.add_argument("--batch-concurrency", type=int, default=2)
    parser.add_argument("--batch-seconds", type=float, default=10.0)
    parser.add_argument("--serialization", default="skops", choices=["skops", "cloudpickle", "pickle"],
                        help="How the model is saved (skops, the default, imports every scikit-learn module "
                             "when loaded; the pickle formats import only what the model uses)")
    parser.add_argument("--json-out")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as tmp:
        folder = Path(tmp)
        model, clf, X = save_model(folder, args.serialization)
        results = {}
        results["flowml"] = side("flowml", [args.flowml, "models", "serve", "-m", str(model),
                                            "--workers", str(args.workers)], folder, clf, X, args)
        if args.skip_mlflow or not os.path.exists(args.mlflow):
            print("MLflow skipped" + ("" if args.skip_mlflow else f": {args.mlflow} not found"))
        else:
            results["mlflow"] = side("mlflow", [args.mlflow, "models", "serve", "-m", str(model), "--host",
                                                "127.0.0.1", "--workers", str(args.workers), "--env-manager", "local"],
                                     folder, clf, X, args)

    print(f"\n{'figure':<20} {'flowml':>12} {'MLflow':>12} {'ratio':>8}  target")
    for name, value in results["flowml"].items():
        other = results.get("mlflow", {}).get(name)
        ratio = ""
        if other:
            better_high = name.endswith("/s") or name.endswith("requests")
            ratio = f"{(value / other if better_high else other / value):.1f}x"
        shown = "" if other is None else f"{other:,.3f}"
        print(f"{name:<20} {value:>12,.3f} {shown:>12} {ratio:>8}  "
              f"{verdict(name, value)}")
    print(f"(model saved with {args.serialization}, workers {args.workers}, concurrency {args.concurrency}, "
          f"{os.cpu_count()} CPUs, load average "
          f"{' / '.join(f'{v:.2f}' for v in os.getloadavg())})")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
