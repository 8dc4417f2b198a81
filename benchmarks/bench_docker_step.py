"""What a step in a docker environment costs beyond the same step run locally.

Why: a container step pays for the engine (create, start, attach, wait, remove a container),
the small host process that drives it (``python -m flowml_docker.step``: the docker SDK's import
and the API calls) and the image's fingerprint (its id, asked of the engine on every run). The
target (issue 7) is under 1 s over a local step.

One pipeline, in a fresh project folder with its own local tracking store, has two steps with
the same command (``sh -c``, writing one small output): ``local`` in the local environment and
``docker`` in a docker environment on ``--image`` (default ``localhost/bookworm-python``, made by
``.ci/podman``). After one untimed run of the pipeline, ``flowml run --target STEP --force STEP``
is timed (wall clock of the whole command, ``time.perf_counter``) for each step alone,
alternately, --repeat times; a run of ``local`` alone opens no docker environment, so it pays
nothing of the engine. The overhead is median(docker) - median(local); the median of the paired
differences and min(docker) - min(local) (the better estimate on a loaded machine) are printed
beside it. For reference, the engine's own cost for one such container
(``containers.run`` with ``remove=True`` through the docker SDK, nothing of flowml) is timed too.

The engine is the one ``DOCKER_HOST`` names; unset, the script runs ``.ci/podman`` (which
installs Podman and the image when missing) and takes the socket from its last line.

Usage: .venv/bin/python benchmarks/bench_docker_step.py [--repeat 10] [--image localhost/bookworm-python]
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

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 1.0
COMMAND = "echo {name} > out/{name}.txt"
PIPELINE = """\
name: docker-step
environments:
  box: {{docker: {{image: "{image}"}}}}
steps:
  local: {{run: "{local}", outputs: [out/local.txt]}}
  docker: {{run: "{docker}", env: box, outputs: [out/docker.txt]}}
"""


def docker_host() -> str:
    """``DOCKER_HOST``, or the socket ``.ci/podman`` starts (its last line)."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    out = subprocess.run([str(REPO / ".ci" / "podman")], capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1]


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return elapsed


def engine_alone(image: str, repeat: int) -> float:
    """Median seconds for the engine to run and remove one container of the step's command."""
    import docker

    client = docker.from_env()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        client.containers.run(image, ["sh", "-c", "echo engine > /dev/null"], network_mode="host", remove=True)
        times.append(time.perf_counter() - start)
    client.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--image", default="localhost/bookworm-python")
    args = parser.parse_args()
    os.environ["DOCKER_HOST"] = docker_host()
    env = {k: v for k, v in os.environ.items() if k not in ("FLOWML_TRACKING_URI", "MLFLOW_TRACKING_URI")}
    flowml = [sys.executable, "-m", "flowml", "run", "--no-live"]
    times: dict[str, list[float]] = {"local": [], "docker": []}
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "pipeline.yaml").write_text(PIPELINE.format(
            image=args.image, local=COMMAND.format(name="local"), docker=COMMAND.format(name="docker")))
        timed(flowml, project, env)  # untimed: the store, the image's id, the page cache
        for _ in range(args.repeat):
            for step in times:
                times[step].append(timed([*flowml, "--target", step, "--force", step], project, env))
        for step in times:
            if (project / "out" / f"{step}.txt").read_text() != f"{step}\n":
                raise SystemExit(f"out/{step}.txt does not hold what the step writes")
    engine = engine_alone(args.image, args.repeat)

    local, docker = statistics.median(times["local"]), statistics.median(times["docker"])
    paired = statistics.median(d - lo for lo, d in zip(times["local"], times["docker"]))
    print(f"engine {os.environ['DOCKER_HOST']}, image {args.image}, median of {args.repeat}")
    print(f"{'':<28}{'median s':>9}{'min s':>8}")
    for step in times:
        print(f"flowml run, {step + ' step':<16}{statistics.median(times[step]):>9.3f}{min(times[step]):>8.3f}")
    print(f"{'engine alone, one container':<28}{engine:>9.3f}")
    overhead = docker - local
    print(f"container step overhead: {overhead:.3f} s (paired median {paired:.3f} s; min-based "
          f"{min(times['docker']) - min(times['local']):.3f} s; docker/local {docker / local:.2f}x; "
          f"the engine alone {engine:.3f} s of it)")
    print(f"target < {TARGET_S:g} s over a local step: {'ok' if overhead < TARGET_S else 'MISS'}")


if __name__ == "__main__":
    main()
