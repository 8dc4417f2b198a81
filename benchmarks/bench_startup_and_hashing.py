"""Time flowml's CLI start-up and its hashing of a large input.

Why: two costs a user pays on every run, however small the pipeline.

1. Start-up. ``flowml --help`` is timed (median of --startup-repeat runs) against
   ``python -c pass`` run the same way, so the difference is what flowml's own imports
   cost on top of a bare interpreter. ``python -c "import flowml"`` is timed too (the
   package alone). Target: ``flowml --help`` < 0.15 s.

2. Hashing. A 1 GiB file of real, incompressible bytes (not sparse: a 64 MiB block of
   os.urandom written 16 times, each copy with a distinct prefix) is the one input of a
   one-step pipeline (``wc -c data/big.bin > out/size.txt``). Timed:
     first    the first run: flowml must read and hash the whole file;
     no-op    a rerun with nothing changed (median of --noop-repeat): with a stat memo this
              is a stat, not a read. To show it, the same no-op is timed on the same pipeline
              whose input is a 1-byte file ("no-op, tiny input"); the two should be about
              equal, and far below the time to read 1 GiB. The bytes that the flowml process
              itself read during one no-op (``rchar`` from /proc/self/io, read at exit; child
              processes not counted) are printed too when available;
     change   after ``os.pwrite`` of one byte in the middle of the file: the rerun must hash
              the whole file again. Hash speed = size / (change - no-op), roughly (the change
              run also runs the step's ``wc -c``, a few ms).
   As the reference for the machine's read+hash speed, ``python -c`` reads the file in
   8 MiB chunks, once without hashing and once through ``xxhash.xxh3_128`` (if xxhash is
   importable by the interpreter that runs flowml).
   Targets: an unchanged 1 GiB input costs a stat, not a read; a changed one hashes at
   >= 1 GB/s.

First runs and one-byte changes are repeated (--repeat, median; the store is wiped between
first runs), and each is also timed on a twin project whose input is a 1-byte file, so
"big minus tiny" isolates the cost of the big file from the run's fixed costs.

Like bench_pipelines.py, flowml runs with bytecode caching on (PYTHONDONTWRITEBYTECODE
dropped, PYTHONPYCACHEPREFIX in the system temp dir; --as-is-env turns that off), with no
tracking URI inherited, and a pyenv shim is resolved to the real executable.

The file is written and then read from the page cache (the machine has the memory for it);
``--drop-caches`` (root only; affects the whole machine) drops the page cache before the
first run and before the change run, to measure from disk instead. The temp dir and the
1 GiB file are removed at the end, also on failure or Ctrl-C.

Usage::

    python benchmarks/bench_startup_and_hashing.py
    python benchmarks/bench_startup_and_hashing.py --skip-hashing --startup-repeat 20
    python benchmarks/bench_startup_and_hashing.py --size-mib 4096 --workdir /data/tmp

Only the standard library is used.
"""

from __future__ import annotations

import argparse
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

BLOCK = 64 << 20
CHUNK = 8 << 20

PIPELINE = """name: bighash
steps:
  size:
    run: "wc -c data/big.bin > out/size.txt"
    inputs: ["data/big.bin"]
    outputs: ["out/size.txt"]
"""

# Runs flowml in-process and prints, at exit, how many bytes this process read (rchar).
RCHAR_WRAPPER = r"""
import atexit, sys, runpy
def _report():
    try:
        for line in open('/proc/self/io'):
            if line.startswith('rchar:'):
                sys.stderr.write('FLOWML_BENCH_RCHAR ' + line.split()[1] + '\n')
    except OSError:
        pass
atexit.register(_report)
sys.argv = ['flowml'] + sys.argv[1:]
runpy.run_module('flowml', run_name='__main__')
"""

REF_HASH = r"""
import sys, time
path, mode = sys.argv[1], sys.argv[2]
buf = bytearray(8 << 20); mv = memoryview(buf); total = 0
if mode == 'xxh3_128':
    import xxhash
    h = xxhash.xxh3_128()
t0 = time.perf_counter()
with open(path, 'rb', buffering=0) as f:
    while True:
        n = f.readinto(buf)
        if not n:
            break
        total += n
        if mode == 'xxh3_128':
            h.update(mv[:n])
dt = time.perf_counter() - t0
print(total, dt)
"""


def flowml_argv(explicit: str | None) -> list[str]:
    exe = gen.resolve_exe("flowml", explicit)
    return [exe] if exe else [sys.executable, "-m", "flowml"]


ENV: dict[str, str] = gen.bench_env()  # replaced in main() (bytecode caching, see gen_pipelines.bench_env)


def clean_env() -> dict[str, str]:
    return ENV


def timed(cmd: list[str], cwd: str | Path | None = None, timeout: float = 3600) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=timeout)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"exit {p.returncode}: {' '.join(cmd)}\n{p.stderr.decode(errors='replace')[-2000:]}")
    return dt


def median_time(cmd: list[str], repeat: int, cwd=None) -> tuple[float, list[float]]:
    ts = [timed(cmd, cwd) for _ in range(repeat)]
    return statistics.median(ts), ts


# --------------------------------------------------------------------------- start-up


def bench_startup(flowml: list[str], py: str, repeat: int) -> dict:
    # A neutral cwd: run from a checkout, ``python -c "import flowml"`` would import the
    # package in the cwd, not the installed one.
    cwd = tempfile.mkdtemp(prefix="flowml-bench-startup-")
    try:
        cmds = {"pass": [py, "-c", "pass"], "import": [py, "-c", "import flowml"], "help": [*flowml, "--help"]}
        for c in cmds.values():  # warm-up: page cache, .pyc files
            timed(c, cwd)
        # Interleaved, so that a burst of noise on this shared machine hits all three alike.
        ts: dict[str, list[float]] = {k: [] for k in cmds}
        for _ in range(repeat):
            for k, c in cmds.items():
                ts[k].append(timed(c, cwd))
    finally:
        shutil.rmtree(cwd, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in ts.items()}
    mn = {k: min(v) for k, v in ts.items()}
    print(f"\nStart-up (median of {repeat}, interleaved; min in brackets):")
    print(f"  python -c pass             {med['pass']:.3f} s  [{mn['pass']:.3f}]")
    print(f"  python -c 'import flowml'  {med['import']:.3f} s  [{mn['import']:.3f}]"
          f"   {med['import'] - med['pass']:+.3f} s over python -c pass")
    print(f"  flowml --help              {med['help']:.3f} s  [{mn['help']:.3f}]"
          f"   {med['help'] - med['pass']:+.3f} s over python -c pass"
          f"   target < 0.15 s: {'PASS' if med['help'] < 0.15 else 'FAIL'}")
    return {"python_pass": med["pass"], "import_flowml": med["import"], "flowml_help": med["help"], "all": ts}


# --------------------------------------------------------------------------- hashing


def write_big(path: Path, size: int) -> None:
    block = bytearray(os.urandom(BLOCK))
    written = 0
    with open(path, "wb") as f:
        i = 0
        while written < size:
            block[:8] = i.to_bytes(8, "little")  # every 64 MiB copy differs
            n = min(BLOCK, size - written)
            f.write(memoryview(block)[:n])
            written += n
            i += 1
        f.flush()
        os.fsync(f.fileno())


def make_project(d: Path, big_size: int | None) -> None:
    (d / "data").mkdir(parents=True)
    (d / "out").mkdir()
    (d / "pipeline.yaml").write_text(PIPELINE)
    if big_size is None:
        (d / "data/big.bin").write_bytes(b"x")
    else:
        write_big(d / "data/big.bin", big_size)


def drop_caches() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def noop_rchar(d: Path, py: str, jobs: int) -> int | None:
    """Bytes read by the flowml process during one no-op rerun (None if not measurable)."""
    p = subprocess.run([py, "-c", RCHAR_WRAPPER, "run", "pipeline.yaml", "-j", str(jobs), "--json"],
                       cwd=d, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for line in p.stderr.decode(errors="replace").splitlines():
        if line.startswith("FLOWML_BENCH_RCHAR "):
            return int(line.split()[1])
    return None


def bench_hashing(flowml: list[str], py: str, a: argparse.Namespace) -> dict:
    size = a.size_mib << 20
    gb = size / 1e9
    run = [*flowml, "run", "pipeline.yaml", "-j", str(a.jobs), "--json"]
    root = Path(tempfile.mkdtemp(prefix="flowml-bench-hash-", dir=a.workdir))
    res: dict = {"size_bytes": size}
    try:
        big, tiny = root / "big", root / "tiny"
        t0 = time.perf_counter()
        make_project(big, size)
        make_project(tiny, None)
        print(f"\nHashing: wrote {size / 2**30:.2f} GiB = {gb:.2f} GB of random bytes in {time.perf_counter() - t0:.1f} s "
              f"({big / 'data/big.bin'})")
        path = str(big / "data/big.bin")

        # reference: the machine's read (+ hash) speed, same interpreter as flowml
        ref = {}
        for mode in ("read", "xxh3_128"):
            p = subprocess.run([py, "-c", REF_HASH, path, mode], capture_output=True, text=True, env=clean_env())
            if p.returncode == 0:
                ref[mode] = float(p.stdout.split()[1])
            else:
                ref[mode] = None
                print(f"  reference {mode}: unavailable ({p.stderr.strip().splitlines()[-1]})")
        res["ref"] = ref

        def reset(d: Path) -> None:  # back to "never ran": no store, no outputs
            shutil.rmtree(d / ".flowml", ignore_errors=True)
            shutil.rmtree(d / "out", ignore_errors=True)
            (d / "out").mkdir()

        def flip_byte(d: Path) -> None:
            p = d / "data/big.bin"
            with open(p, "r+b") as f:
                off = p.stat().st_size // 2
                old = os.pread(f.fileno(), 1, off)
                os.pwrite(f.fileno(), bytes([old[0] ^ 0xFF]), off)

        # warm-up (untimed): page cache, .pyc files of the `run` code path
        timed(run, tiny)
        timed(run, tiny)

        firsts, firsts_tiny, changes, changes_tiny = [], [], [], []
        for rep in range(a.repeat):
            reset(tiny)
            firsts_tiny.append(timed(run, tiny))
            reset(big)
            if a.drop_caches:
                drop_caches()
            firsts.append(timed(run, big))
        res["first"], res["first_tiny"] = statistics.median(firsts), statistics.median(firsts_tiny)
        res["noop"], res["noop_all"] = median_time(run, a.noop_repeat, big)
        res["noop_tiny"], _ = median_time(run, a.noop_repeat, tiny)
        res["noop_rchar"] = noop_rchar(big, py, a.jobs)
        for rep in range(a.repeat):
            flip_byte(tiny)
            changes_tiny.append(timed(run, tiny))
            flip_byte(big)
            if a.drop_caches:
                drop_caches()
            changes.append(timed(run, big))
        res["change"], res["change_tiny"] = statistics.median(changes), statistics.median(changes_tiny)
        res["all"] = {"first": firsts, "first_tiny": firsts_tiny, "change": changes, "change_tiny": changes_tiny}
        out = (big / "out/size.txt").read_text().split()
        res["step_output_ok"] = bool(out) and out[0] == str(size)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    def speed(t: float | None) -> str:
        return "        -" if not t or t <= 0 else f"{gb / t:6.2f} GB/s"

    eff = res["change"] - res["noop"]
    eff_ctl = res["change"] - res["change_tiny"]
    r = a.repeat
    print(f"  reference, python read, 8 MiB chunks               {ref.get('read') or 0:7.3f} s  {speed(ref.get('read'))}")
    print(f"  reference, python xxh3_128, 8 MiB chunks           {ref.get('xxh3_128') or 0:7.3f} s  "
          f"{speed(ref.get('xxh3_128'))}")
    print(f"  flowml first run, 1-byte input (median of {r})       {res['first_tiny']:7.3f} s")
    print(f"  flowml first run, big input (median of {r})          {res['first']:7.3f} s  "
          f"{speed(res['first'] - res['first_tiny'])}  size / (first - first tiny)")
    print(f"  flowml no-op rerun, 1-byte input (median of {a.noop_repeat})     {res['noop_tiny']:7.3f} s")
    print(f"  flowml no-op rerun, big input (median of {a.noop_repeat})        {res['noop']:7.3f} s"
          f"   ({res['noop'] - res['noop_tiny']:+.3f} s over the 1-byte input)")
    rc = res["noop_rchar"]
    print(f"  bytes read by the flowml process itself in one no-op: "
          f"{'n/a' if rc is None else f'{rc / 2**20:.1f} MiB'}")
    print(f"  flowml rerun after 1 changed byte, 1-byte input    {res['change_tiny']:7.3f} s")
    print(f"  flowml rerun after 1 changed byte, big input       {res['change']:7.3f} s  "
          f"{speed(eff)}  size / (change - no-op)")
    print(f"  {'':51}         {speed(eff_ctl)}  size / (change - change tiny)")
    print(f"  step output correct after the change: {res['step_output_ok']}")
    ref_read = ref.get("xxh3_128") or ref.get("read") or 0.0
    extra = res["noop"] - res["noop_tiny"]
    stat_only = extra < max(0.05, 0.1 * ref_read)
    print(f"  target: unchanged input costs a stat, not a read: {'PASS' if stat_only else 'FAIL'} "
          f"(no-op big - no-op tiny = {extra:+.3f} s; reading+hashing the file takes {ref_read:.3f} s)")
    print(f"  target: changed input hashes at >= 1 GB/s: {'PASS' if eff > 0 and gb / eff >= 1 else 'FAIL'} "
          f"(by size / (change - no-op))")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--flowml", default=None,
                    help="flowml executable (default: shutil.which('flowml'), else python -m flowml)")
    ap.add_argument("--python", default=None,
                    help="interpreter that has flowml installed (default: the one next to the flowml "
                         "executable, else this one); used for the baselines and the hash reference")
    ap.add_argument("--startup-repeat", type=int, default=10, help="runs of each start-up command (median)")
    ap.add_argument("--noop-repeat", type=int, default=3, help="no-op reruns (median)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="first runs (store wiped in between) and one-byte changes (median)")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--size-mib", type=int, default=1024, help="size of the big file (default 1024 = 1 GiB)")
    ap.add_argument("--workdir", default=None, help="where the temp dir goes (default: the system temp dir)")
    ap.add_argument("--drop-caches", action="store_true",
                    help="drop the page cache before the hashing runs (root; affects the whole machine)")
    ap.add_argument("--as-is-env", action="store_true",
                    help="run flowml in this environment unchanged (no bytecode-cache fix-up)")
    ap.add_argument("--skip-startup", action="store_true")
    ap.add_argument("--skip-hashing", action="store_true")
    a = ap.parse_args(argv)

    global ENV
    ENV = gen.bench_env(None if a.as_is_env else os.path.join(tempfile.gettempdir(), "flowml-bench-pycache"))
    flowml = flowml_argv(a.flowml)
    py = a.python
    if py is None:
        cand = Path(flowml[0]).with_name("python")
        py = str(cand) if len(flowml) == 1 and cand.exists() else sys.executable
    print(f"flowml: {' '.join(flowml)}   python: {py}")
    try:
        if not a.skip_startup:
            bench_startup(flowml, py, a.startup_repeat)
        if not a.skip_hashing:
            bench_hashing(flowml, py, a)
    except RuntimeError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
