"""Generate the same N-step pipeline of trivial shell steps for flowml, DVC or Snakemake.

Why: to compare flowml with its peers, every tool must run *exactly* the same work --
the same DAG, the same shell strings, the same files -- so that any difference in
wall time is the tool's own overhead (parsing, hashing, bookkeeping, scheduling),
not the steps'. This module is both a CLI and a library: ``bench_pipelines.py``
imports it to build its work dirs, to run the bare-``sh -c`` baseline and to check
every tool's outputs against :func:`expected_outputs`.

Shapes (step names are ``s0`` .. ``s{N-1}``):

* ``chain``: ``s0`` reads ``data/in.txt`` and writes ``out/s0.txt``; ``s{i}`` reads
  ``out/s{i-1}.txt`` and writes ``out/s{i}.txt``. Nothing can run in parallel.
* ``wide``: ``s{i}`` reads its own ``data/in{i}.txt`` and writes ``out/s{i}.txt``;
  N independent steps, no gather step. Every step can run in parallel. Each step
  has its own input so that "change one input" reruns exactly one step.

Each command is a shell string such as
``cat out/s3.txt > out/s4.txt && echo 4 >> out/s4.txt``.

``--edit-step K`` rewrites only the pipeline file with step K's command changed
(``echo K`` -> ``echo K edited``); data files are left alone (never rewritten when they
exist, so their mtimes do not change -- Snakemake decides by mtime). The benchmark uses
it for the chain's "one change": a changed command in the middle of a chain must rerun
that step and every step after it (N - K steps).

Usage::

    python benchmarks/gen_pipelines.py --shape chain --n 50 --out /tmp/c50 [--tool flowml|dvc|snakemake]

For ``--tool dvc`` the generator also runs ``git init`` and ``dvc init`` in DIR (and turns
DVC's analytics off), so that ``dvc repro`` works there right away.

Only the standard library is used (the YAML is written by hand; every string is a JSON
string, which is also a valid YAML double-quoted scalar).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SHAPES = ("chain", "wide")
TOOLS = ("flowml", "dvc", "snakemake")
PIPELINE_FILE = {"flowml": "pipeline.yaml", "dvc": "dvc.yaml", "snakemake": "Snakefile"}


def resolve_exe(name: str, explicit: str | None = None) -> str | None:
    """Full path of an executable, looking through pyenv shims.

    A pyenv shim is a bash script that costs ~0.1 s per call before the real program
    starts; timing through it would charge that to the tool. ``pyenv which`` names the
    real executable behind it.
    """
    exe = explicit or shutil.which(name)
    if not exe:
        return None
    if os.sep + "shims" + os.sep in exe and shutil.which("pyenv"):
        p = subprocess.run(["pyenv", "which", os.path.basename(exe)], capture_output=True, text=True)
        if p.returncode == 0 and p.stdout.strip():
            return p.stdout.strip()
    return exe


@dataclass(frozen=True)
class Step:
    name: str
    run: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def data_files(shape: str, n: int) -> dict[str, str]:
    """The input files the pipeline starts from: relative path -> content."""
    if shape == "chain":
        return {"data/in.txt": "hello chain\n"}
    return {f"data/in{i}.txt": f"hello wide {i}\n" for i in range(n)}


def steps(shape: str, n: int, edit_step: int | None = None) -> list[Step]:
    """The N steps of the pipeline, in a topological order."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}")
    out: list[Step] = []
    for i in range(n):
        src = ("data/in.txt" if i == 0 else f"out/s{i - 1}.txt") if shape == "chain" else f"data/in{i}.txt"
        dst = f"out/s{i}.txt"
        echo = f"{i} edited" if i == edit_step else f"{i}"
        out.append(Step(f"s{i}", f"cat {src} > {dst} && echo {echo} >> {dst}", (src,), (dst,)))
    return out


def expected_outputs(shape: str, n: int, data: dict[str, str], edit_step: int | None = None) -> dict[str, str]:
    """What every output must contain after a correct run, given the current data files."""
    res: dict[str, str] = {}
    for i, st in enumerate(steps(shape, n, edit_step)):
        src = st.inputs[0]
        prev = data[src] if src.startswith("data/") else res[src]
        res[st.outputs[0]] = prev + (f"{i} edited\n" if i == edit_step else f"{i}\n")
    return res


def _q(s: str) -> str:
    return json.dumps(s)


def render_flowml(name: str, sts: list[Step]) -> str:
    lines = [f"name: {name}", "steps:"]
    for st in sts:
        lines += [
            f"  {st.name}:",
            f"    run: {_q(st.run)}",
            f"    inputs: [{', '.join(_q(p) for p in st.inputs)}]",
            f"    outputs: [{', '.join(_q(p) for p in st.outputs)}]",
        ]
    return "\n".join(lines) + "\n"


def render_dvc(sts: list[Step]) -> str:
    lines = ["stages:"]
    for st in sts:
        lines += [
            f"  {st.name}:",
            f"    cmd: {_q(st.run)}",
            "    deps:",
            *[f"      - {_q(p)}" for p in st.inputs],
            "    outs:",
            *[f"      - {_q(p)}" for p in st.outputs],
        ]
    return "\n".join(lines) + "\n"


def render_snakemake(sts: list[Step]) -> str:
    # repr() of a str is a valid Python string literal; the shell string has no braces,
    # so Snakemake's str.format-style expansion leaves it unchanged.
    finals = [p for st in sts for p in st.outputs]
    lines = ["rule all:", "    input:", *[f"        {p!r}," for p in finals], ""]
    for st in sts:
        lines += [
            f"rule {st.name}:",
            "    input:",
            *[f"        {p!r}," for p in st.inputs],
            "    output:",
            *[f"        {p!r}," for p in st.outputs],
            f"    shell: {st.run!r}",
            "",
        ]
    return "\n".join(lines)


def bench_env(pycache_prefix: str | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for every timed tool call.

    - No analytics ping and no update check from DVC (they would time network calls).
    - No tracking URI inherited from the caller: flowml would share its cache index with
      the user's store, and a run here must start cold and private.
    - Bytecode caching on: a user's Python writes .pyc files, so the tools must not be timed
      compiling their modules from source on every call (which they do when the caller has
      PYTHONDONTWRITEBYTECODE=1 set, as some sandboxes and CI images do). With
      ``pycache_prefix`` the .pyc files go to that folder (PYTHONPYCACHEPREFIX), not into
      the source tree of an editable install.
    """
    env = dict(os.environ if base is None else base)
    env["DVC_NO_ANALYTICS"] = "1"
    env["DVC_NO_UPDATER"] = "1"
    for k in ("FLOWML_TRACKING_URI", "MLFLOW_TRACKING_URI", "FLOWML_RUN_ID", "MLFLOW_RUN_ID"):
        env.pop(k, None)
    if pycache_prefix:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache_prefix
    return env


def dvc_env() -> dict[str, str]:
    """Environment for the dvc calls of ``--tool dvc`` (init, config)."""
    return bench_env()


def _init_dvc(out: Path, dvc: str) -> None:
    def run(*cmd: str) -> None:
        subprocess.run(cmd, cwd=out, env=dvc_env(), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    if not (out / ".git").exists():
        run("git", "init", "-q")
    if not (out / ".dvc").exists():
        run(dvc, "init", "-q")
        run(dvc, "config", "core.analytics", "false")


def generate(
    shape: str,
    n: int,
    out: str | os.PathLike,
    tool: str = "flowml",
    edit_step: int | None = None,
    dvc: str | None = None,
) -> Path:
    """Write the pipeline for ``tool`` into ``out`` and return the pipeline file's path."""
    if tool not in TOOLS:
        raise ValueError(f"unknown tool {tool!r}")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in data_files(shape, n).items():
        p = root / rel
        if not p.exists():  # never touch an existing data file: its mtime matters to Snakemake
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(content)
    # DVC does not create the parent folders of outs; flowml and Snakemake do. Create it for all
    # tools so that every tool starts from the same tree.
    (root / "out").mkdir(exist_ok=True)
    sts = steps(shape, n, edit_step)
    name = f"{shape}{n}"
    if tool == "flowml":
        text = render_flowml(name, sts)
    elif tool == "dvc":
        text = render_dvc(sts)
    else:
        text = render_snakemake(sts)
    target = root / PIPELINE_FILE[tool]
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, target)
    if tool == "dvc":
        exe = resolve_exe("dvc", dvc)
        if not exe:
            raise SystemExit("dvc not found: pass --dvc PATH")
        _init_dvc(root, exe)
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", choices=SHAPES, required=True)
    ap.add_argument("--n", type=int, default=50, help="number of steps (default 50)")
    ap.add_argument("--out", required=True, help="folder to write the pipeline and its data into")
    ap.add_argument("--tool", choices=TOOLS, default="flowml")
    ap.add_argument("--edit-step", type=int, default=None, metavar="K",
                    help="write step K's command as 'echo K edited' (rewrites only the pipeline file)")
    ap.add_argument("--dvc", default=None, help="dvc executable for --tool dvc (default: shutil.which('dvc'))")
    a = ap.parse_args(argv)
    if a.n < 1:
        ap.error("--n must be >= 1")
    print(generate(a.shape, a.n, a.out, a.tool, a.edit_step, a.dvc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
