"""How long a python (uv) environment takes to be ready for a step: cold and when it exists.

Why: a step in a ``python:`` environment pays for resolving its requirements and making the
environment once, then nothing more than checking that it is there. The targets (issue 7) are
under 3 s cold and under 50 ms when the environment exists, for scikit-learn.

For ``--requirements`` (default: scikit-learn) and the machine's pip configuration, in a fresh
environment folder it times, with ``time.perf_counter`` in this process, what ``flowml run`` does
before the first step in that environment starts: the environment's construction (resolution,
read back from the folder once done) and ``prepare()`` (making the environment, or finding it):

  cold-resolve  the first construction: ``uv python find`` + ``uv pip compile`` against the index.
  cold-create   the first ``prepare()``: ``uv venv`` + ``uv pip sync`` (uv's own download and
                wheel cache, ``UV_CACHE_DIR``, as it is: warm after the first repetition).
  warm          construction + ``prepare()`` once both exist (median of --warm-repeat).

Usage: .venv/bin/python benchmarks/bench_uv_env.py [--requirements "scikit-learn"] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def once(folder: str, requirements: str, warm_repeat: int) -> tuple[float, float, float]:
    os.environ["FLOWML_ENV_DIR"] = os.path.join(folder, "envs")
    project = os.path.join(folder, "project")
    os.makedirs(project)
    with open(os.path.join(project, "requirements.txt"), "w") as fh:
        fh.write("\n".join(requirements.split(",")) + "\n")
    from flowml.environments.python import PythonEnvironment

    config = {"requirements": "requirements.txt"}
    t0 = time.perf_counter()
    env = PythonEnvironment("bench", config, project)
    t1 = time.perf_counter()
    env.prepare()
    t2 = time.perf_counter()
    warm = []
    for _ in range(warm_repeat):
        start = time.perf_counter()
        PythonEnvironment("bench", config, project).prepare()
        warm.append(time.perf_counter() - start)
    return t1 - t0, t2 - t1, statistics.median(warm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requirements", default="scikit-learn", help="comma-separated requirements")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warm-repeat", type=int, default=20)
    args = parser.parse_args()
    print(f"{'rep':>3}  {'cold-resolve':>12}  {'cold-create':>11}  {'cold total':>10}  {'warm':>8}")
    for rep in range(args.repeat):
        with tempfile.TemporaryDirectory() as folder:
            resolve, create, warm = once(folder, args.requirements, args.warm_repeat)
        print(f"{rep:>3}  {resolve:>11.2f}s  {create:>10.2f}s  {resolve + create:>9.2f}s  {warm * 1000:>6.2f}ms")


if __name__ == "__main__":
    main()
