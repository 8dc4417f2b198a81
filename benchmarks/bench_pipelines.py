"""Time flowml against DVC and Snakemake on the same generated N-step pipelines.

Why: flowml's promise is that a rerun does only the work that changed and that the
bookkeeping around a step costs little next to the step itself. This script measures
exactly that, side by side with the peers, on pipelines of trivial shell steps (so that
the tools' own overhead dominates), and against a BASELINE: the same N commands run
directly with ``sh -c``, one after the other, from Python -- the steps' own process cost.

For each shape (chain, wide), each N and each tool that is installed (flowml always;
DVC and Snakemake only when found -- a missing peer is skipped, never an error), in a
fresh temp dir it times with ``time.perf_counter`` around the subprocess call:

  (a) first   the first run: every step runs.
  (b) no-op   a rerun with nothing changed (median of --noop-repeat reruns): nothing should run.
  (c) change  a rerun after one change in the middle (K = N // 2):
              wide:  append a line to data/in{K}.txt  -> exactly 1 step must rerun;
              chain: change step K's command (echo K -> echo K edited, the pipeline file is
                     regenerated; data untouched) -> steps K..N-1 must rerun (N - K steps).

After every phase it checks every output's content against the expected content (column
"ok") and counts the outputs whose mtime/inode changed (column "rewritten"; expected: N
for the first run, 0 for a no-op, 1 or N-K for the change), so a tool that is fast
because it skipped work it had to do shows up.

The per-step overhead printed is (first run - baseline) / N in ms. The baseline is
measured right before each repetition of each tool, so that it sees the same machine load
as the tool (this 2-core machine is shared and noisy); each tool row shows its own
baseline. On the wide shape the tools run two steps at a time (flowml -j 2, snakemake
-c 2; DVC has no parallel repro) while the baseline is sequential, so there the overhead
can come out small or negative.

Fairness details: before a tool is timed on a shape it does one untimed warm-up pass (first
run, no-op, change) on a 3-step pipeline of that shape, so that no timing includes a cold
page cache or compiling the tool's modules. Bytecode caching is switched on for every tool
(PYTHONDONTWRITEBYTECODE is dropped and PYTHONPYCACHEPREFIX points at a folder in the
system temp dir, so nothing is written into a source tree); ``--as-is-env`` turns this off.
DVC's analytics and update check are off. Every phase reports the median over ``--repeat``
fresh repetitions (``--stat min`` reports the minimum instead: on a loaded machine the
minimum is the better estimate of a tool's own cost).

Commands (cwd = the pipeline's folder):
  flowml:    flowml run pipeline.yaml -j 2 --json      (stdout discarded)
  dvc:       dvc repro -q                              (after git init + dvc init)
  snakemake: snakemake -c 2 --quiet all

Usage::

    python benchmarks/bench_pipelines.py                      # chain + wide, N=50, all tools found
    python benchmarks/bench_pipelines.py --n 50 300 --tools flowml,snakemake
    python benchmarks/bench_pipelines.py --snakemake /tmp/peers/bin/snakemake --dvc /tmp/peers/bin/dvc

Only the standard library is used.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_pipelines as gen  # noqa: E402

PHASES = ("first", "noop", "change")


# --------------------------------------------------------------------------- helpers


def flowml_argv(explicit: str | None) -> list[str]:
    exe = gen.resolve_exe("flowml", explicit)
    return [exe] if exe else [sys.executable, "-m", "flowml"]


def tool_cmd(tool: str, exes: dict[str, list[str]], jobs: int) -> list[str]:
    if tool == "flowml":
        return [*exes["flowml"], "run", "pipeline.yaml", "-j", str(jobs), "--json"]
    if tool == "dvc":
        return [*exes["dvc"], "repro", "-q"]
    return [*exes["snakemake"], "-c", str(jobs), "--quiet", "all"]


class ToolFailed(RuntimeError):
    pass


def timed(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> float:
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise ToolFailed(f"timed out after {timeout:.0f} s: {' '.join(cmd)}") from e
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        tail = p.stderr.decode(errors="replace")[-2000:]
        raise ToolFailed(f"exit {p.returncode}: {' '.join(cmd)}\n{tail}")
    return dt


def snapshot(root: Path, outs: list[str]) -> dict[str, tuple[int, int] | None]:
    res: dict[str, tuple[int, int] | None] = {}
    for rel in outs:
        try:
            st = os.stat(root / rel)
            res[rel] = (st.st_ino, st.st_mtime_ns)
        except FileNotFoundError:
            res[rel] = None
    return res


def rewritten(before: dict, after: dict) -> int:
    return sum(1 for k in after if after[k] != before.get(k))


def bad_outputs(root: Path, expected: dict[str, str]) -> list[str]:
    bad = []
    for rel, want in expected.items():
        try:
            got = (root / rel).read_text()
        except OSError:
            got = None
        if got != want:
            bad.append(rel)
    return bad


def current_data(root: Path, shape: str, n: int) -> dict[str, str]:
    return {rel: (root / rel).read_text() for rel in gen.data_files(shape, n)}


# --------------------------------------------------------------------------- measurements


def run_baseline_once(shape: str, n: int, workroot: Path) -> float:
    """Wall time of the N commands run directly with ``sh -c``, sequentially, from Python."""
    d = Path(tempfile.mkdtemp(prefix=f"base-{shape}{n}-", dir=workroot))
    try:
        gen.generate(shape, n, d, "flowml")  # only the data files and out/ matter here
        cmds = [st.run for st in gen.steps(shape, n)]
        t0 = time.perf_counter()
        for c in cmds:
            subprocess.run(["sh", "-c", c], cwd=d, check=True)
        dt = time.perf_counter() - t0
        bad = bad_outputs(d, gen.expected_outputs(shape, n, current_data(d, shape, n)))
        if bad:
            raise RuntimeError(f"baseline produced wrong outputs: {bad[:3]}")
        return dt
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run_tool_once(tool: str, shape: str, n: int, exes: dict[str, list[str]], a: argparse.Namespace,
                  workroot: Path, env: dict[str, str], keep: bool) -> dict:
    d = Path(tempfile.mkdtemp(prefix=f"{tool}-{shape}{n}-", dir=workroot))
    cmd = tool_cmd(tool, exes, a.jobs)
    dvc = (exes.get("dvc") or [None])[0]
    k = n // 2
    outs = [st.outputs[0] for st in gen.steps(shape, n)]
    res: dict = {"dir": str(d)}
    try:
        gen.generate(shape, n, d, tool, dvc=dvc)

        # (a) first run
        before = snapshot(d, outs)
        res["first"] = timed(cmd, d, env, a.timeout)
        res["first_rewritten"] = rewritten(before, snapshot(d, outs))
        res["first_bad"] = len(bad_outputs(d, gen.expected_outputs(shape, n, current_data(d, shape, n))))

        # (b) no-op reruns
        before = snapshot(d, outs)
        noops = [timed(cmd, d, env, a.timeout) for _ in range(a.noop_repeat)]
        res["noop"] = statistics.median(noops)
        res["noop_all"] = noops
        res["noop_rewritten"] = rewritten(before, snapshot(d, outs))
        res["noop_bad"] = len(bad_outputs(d, gen.expected_outputs(shape, n, current_data(d, shape, n))))

        # (c) one change in the middle
        if shape == "wide":
            with open(d / f"data/in{k}.txt", "a") as f:
                f.write("changed\n")
            edit, want_rerun = None, 1
        else:
            gen.generate(shape, n, d, tool, edit_step=k, dvc=dvc)
            edit, want_rerun = k, n - k
        before = snapshot(d, outs)
        res["change"] = timed(cmd, d, env, a.timeout)
        res["change_rewritten"] = rewritten(before, snapshot(d, outs))
        res["change_expected_rerun"] = want_rerun
        res["change_bad"] = len(bad_outputs(d, gen.expected_outputs(shape, n, current_data(d, shape, n), edit)))
    except ToolFailed as e:
        res["error"] = str(e)
    finally:
        if not keep:
            shutil.rmtree(d, ignore_errors=True)
    return res


def run_tool(tool, shape, n, exes, a, workroot, env) -> dict:
    """Warm-up, then --repeat x (baseline, fresh tool run); the median (or min) of each phase."""
    if not a.no_warmup:
        w = run_tool_once(tool, shape, 3, exes, a, workroot, env, keep=False)
        if "error" in w:
            return {"error": "warm-up failed: " + w["error"], "repeats": [w]}
    agg = min if a.stat == "min" else statistics.median
    reps, bases = [], []
    for _ in range(a.repeat):
        bases.append(run_baseline_once(shape, n, workroot))
        r = run_tool_once(tool, shape, n, exes, a, workroot, env, keep=a.keep)
        reps.append(r)
        if "error" in r:
            break
    out = dict(reps[-1])
    out["repeats"] = reps
    out["baseline_all"] = bases
    out["baseline"] = agg(bases)
    for ph in PHASES:
        vals = [r[ph] for r in reps if ph in r]
        if vals:
            out[ph] = agg(vals)
    return out


# --------------------------------------------------------------------------- report


def fmt_s(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def print_report(results: list[dict], tools: list[str], stat: str) -> None:
    print(f"\nSeconds ({stat} over the repetitions); 'rewritten' = outputs whose inode/mtime changed, "
          "(want) = steps that must run; ok = every output's content is right after every phase.")
    hdr = (f"{'shape':<6} {'N':>4} {'tool':<10} {'baseline':>9} {'first':>9} {'no-op':>9} {'change':>9} "
           f"{'rewritten first/noop/change (want)':>36} {'ok':>4} {'ovh ms/step':>11}")
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        for tool in tools:
            t = r["tools"].get(tool)
            if t is None:
                continue
            if "first" not in t:
                print(f"{r['shape']:<6} {r['n']:>4} {tool:<10} FAILED: {t.get('error', '?').splitlines()[0]}")
                continue
            rw = (f"{t.get('first_rewritten', '-')}/{t.get('noop_rewritten', '-')}/"
                  f"{t.get('change_rewritten', '-')} ({r['n']}/0/{t.get('change_expected_rerun', '-')})")
            ok = "yes" if all(t.get(f"{p}_bad", 1) == 0 for p in PHASES) else "NO"
            ovh = (t["first"] - t["baseline"]) / r["n"] * 1000
            print(f"{r['shape']:<6} {r['n']:>4} {tool:<10} {fmt_s(t['baseline']):>9} {fmt_s(t.get('first')):>9} "
                  f"{fmt_s(t.get('noop')):>9} {fmt_s(t.get('change')):>9} {rw:>36} {ok:>4} {ovh:>11.2f}")
            if "error" in t:
                print(f"       ! {t['error'].splitlines()[0]}")
    # ratios peer / flowml (> 1 means flowml is faster)
    lines = []
    for r in results:
        f = r["tools"].get("flowml")
        if not f or "first" not in f:
            continue
        for peer in ("dvc", "snakemake"):
            p = r["tools"].get(peer)
            if not p or "first" not in p:
                continue
            cells = [f"{ph} {p[ph] / f[ph]:6.1f}x" for ph in PHASES if ph in f and ph in p and f[ph] > 0]
            lines.append(f"{r['shape']:<6} {r['n']:>4} {peer}/flowml: " + "  ".join(cells))
    if lines:
        print("\nRatios, peer time / flowml time (> 1: flowml is faster):")
        print("\n".join(lines))
    # flowml against its targets
    tl = []
    for r in results:
        f = r["tools"].get("flowml")
        if not f or "first" not in f:
            continue
        ovh = (f["first"] - f["baseline"]) / r["n"] * 1000
        tl.append(f"{r['shape']:<6} {r['n']:>4} first-run overhead {ovh:6.2f} ms/step (target < 10): "
                  f"{'PASS' if ovh < 10 else 'FAIL'}")
        if r["n"] >= 300 and "noop" in f:
            tl.append(f"{r['shape']:<6} {r['n']:>4} no-op rerun {f['noop']:.3f} s (target < 0.5 s for 300 steps): "
                      f"{'PASS' if f['noop'] < 0.5 else 'FAIL'}")
    if tl:
        print("\nflowml targets:")
        print("\n".join(tl))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--shapes", default="chain,wide", help="comma list of chain,wide (default both)")
    ap.add_argument("--n", type=int, nargs="+", default=[50], help="step counts, e.g. --n 50 300 (default 50)")
    ap.add_argument("--tools", default="flowml,dvc,snakemake",
                    help="comma list; a peer that is not installed is skipped (default all three)")
    ap.add_argument("--flowml", default=None,
                    help="flowml executable (default: shutil.which('flowml'), else python -m flowml)")
    ap.add_argument("--dvc", default=None, help="dvc executable (default: shutil.which('dvc'))")
    ap.add_argument("--snakemake", default=None, help="snakemake executable (default: shutil.which('snakemake'))")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="parallel jobs for flowml and snakemake (default 2)")
    ap.add_argument("--repeat", type=int, default=1, help="fresh repetitions per tool (default 1)")
    ap.add_argument("--stat", choices=("median", "min"), default="median",
                    help="how repetitions are summarised (default median)")
    ap.add_argument("--noop-repeat", type=int, default=3, help="no-op reruns per repetition (median)")
    ap.add_argument("--no-warmup", action="store_true", help="skip the untimed 3-step warm-up pass")
    ap.add_argument("--as-is-env", action="store_true",
                    help="run the tools in this environment unchanged (no bytecode-cache fix-up)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per tool call")
    ap.add_argument("--workdir", default=None, help="where the temp dirs go (default: the system temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs of the timed runs")
    ap.add_argument("--json-out", default=None, help="also write all numbers to this JSON file")
    a = ap.parse_args(argv)

    shapes = [s for s in a.shapes.split(",") if s]
    for s in shapes:
        if s not in gen.SHAPES:
            ap.error(f"unknown shape {s!r}")
    wanted = [t for t in a.tools.split(",") if t]
    exes: dict[str, list[str]] = {}
    tools: list[str] = []
    for t in wanted:
        if t == "flowml":
            exes[t] = flowml_argv(a.flowml)
        elif t in ("dvc", "snakemake"):
            exe = gen.resolve_exe(t, getattr(a, t))
            if not exe or not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
                print(f"skipping {t}: not found (pass --{t} PATH)", file=sys.stderr)
                continue
            exes[t] = [exe]
        else:
            ap.error(f"unknown tool {t!r}")
        tools.append(t)
    for t in tools:
        print(f"{t}: {' '.join(tool_cmd(t, exes, a.jobs))}", file=sys.stderr)

    pycache = None if a.as_is_env else os.path.join(tempfile.gettempdir(), "flowml-bench-pycache")
    env = gen.bench_env(pycache)
    workroot = Path(tempfile.mkdtemp(prefix="flowml-bench-", dir=a.workdir))
    results = []
    try:
        for n in a.n:
            for shape in shapes:
                r = {"shape": shape, "n": n, "tools": {}}
                for t in tools:
                    tr = run_tool(t, shape, n, exes, a, workroot, env)
                    r["tools"][t] = tr
                    msg = "  ".join(f"{ph} {tr[ph]:.3f} s" for ph in ("baseline", *PHASES) if ph in tr)
                    print(f"[{shape} N={n}] {t}: {msg}", file=sys.stderr)
                    if "error" in tr:
                        print(f"[{shape} N={n}] {t} FAILED: {tr['error']}", file=sys.stderr)
                results.append(r)
    finally:
        if not a.keep:
            shutil.rmtree(workroot, ignore_errors=True)
    print_report(results, tools, a.stat)
    if a.json_out:
        meta = {"python": sys.version, "cpus": os.cpu_count(), "jobs": a.jobs, "stat": a.stat,
                "repeat": a.repeat, "commands": {t: tool_cmd(t, exes, a.jobs) for t in tools}}
        Path(a.json_out).write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    failed = any("error" in t for r in results for t in r["tools"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
