"""What the Dask executor adds per step, beyond the step itself.

Why: a step on a cluster pays for shipping its workspace, fetching its inputs from and uploading
its outputs to the tracking server, and bringing them back into the client's workspace. The
target (issue 7) is under 50 ms per step beyond the step itself.

A chain of --steps steps (each copies its predecessor's output: one input fetched, one output
uploaded and brought back) runs once with the local executor and once with ``--executor dask``
against a scheduler and one single-threaded worker started here on 127.0.0.1, both tracked by a
flowml server started here; each in a fresh project folder, so that every step runs. The
figure is (dask wall time - local wall time) / steps, the median of --repeat pairs.

Usage: .venv/bin/python benchmarks/bench_dask.py [--steps 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "tests")]

from tests.dask.conftest import running_cluster  # noqa: E402
from tests.server.conftest import start_server  # noqa: E402


def chain(steps: int) -> str:
    lines = ["name: chain", "steps:", "  s0: {run: 'cp seed.txt out/0.txt', inputs: [seed.txt], outputs: [out/0.txt]}"]
    lines += [f"  s{i}: {{run: 'cp out/{i - 1}.txt out/{i}.txt', inputs: [out/{i - 1}.txt], outputs: [out/{i}.txt]}}"
              for i in range(1, steps)]
    return "\n".join(lines) + "\n"


def timed_run(base: Path, steps: int, env: dict, *args: str) -> float:
    folder = Path(tempfile.mkdtemp(dir=base))
    (folder / "pipeline.yaml").write_text(chain(steps))
    (folder / "seed.txt").write_text("seed\n")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "flowml", "run", "--no-live", "-j", "1", *args], cwd=folder,
                          env={**os.environ, **env}, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        server = start_server(base / "server")
        try:
            (base / "cluster").mkdir()
            with running_cluster(base / "cluster", workers=1) as cluster:
                env = {"FLOWML_TRACKING_URI": server.url}
                pairs = [(timed_run(base, args.steps, env),
                          timed_run(base, args.steps, env, "--executor", "dask", "--scheduler", cluster.address))
                         for _ in range(args.repeat)]
        finally:
            server.stop()
    for local, dask in pairs:
        print(f"local {local:.2f} s, dask {dask:.2f} s: {(dask - local) / args.steps * 1000:.0f} ms per step")
    overhead = statistics.median((dask - local) / args.steps for local, dask in pairs)
    print(f"dask executor overhead: {overhead * 1000:.0f} ms per step (median of {args.repeat}, {args.steps} steps)")


if __name__ == "__main__":
    main()
