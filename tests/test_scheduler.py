"""The scheduler through the CLI: parallelism, retries, timeouts, failure policy, signals.

Timing is asserted only where the behaviour is timing (two steps overlap or do not), and
then through the steps' own start/end stamps with a full second of slack.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

STAMP = """
import sys, time
start = time.time()
time.sleep(float(sys.argv[2]))
with open(sys.argv[1], "w") as fh:
    fh.write(f"{start} {time.time()}")
"""


@pytest.fixture
def outside(tmp_path_factory) -> Path:
    """A folder outside the project, for counters and pid files the cache must not see."""
    return tmp_path_factory.mktemp("outside")


def statuses(summary: dict) -> dict[str, str]:
    return {name: s["status"] for name, s in summary["by_name"].items()}


def interval(project, rel: str) -> tuple[float, float]:
    start, end = map(float, project.read(rel).split())
    return start, end


def process_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in the process group ``pgid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            found.append(int(entry))
    return found


def wait_until(predicate, timeout: float = 10.0, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


# parallelism ------------------------------------------------------------------------------

PARALLEL = """
    name: parallel
    steps:
      a:
        run: python stamp.py a.txt 1
        outputs: [a.txt]
      b:
        run: python stamp.py b.txt 1
        outputs: [b.txt]
      after:
        run: cat a.txt b.txt > after.txt
        inputs: [a.txt, b.txt]
        outputs: [after.txt]
"""


@pytest.mark.parametrize("jobs, overlap", [("2", True), ("1", False)])
def test_independent_steps_overlap_only_with_more_than_one_job(project, jobs, overlap):
    project.write("stamp.py", STAMP)
    project.pipeline(PARALLEL)
    summary = project.run_json("-j", jobs)
    assert summary["code"] == 0, summary["stderr"]
    (a0, a1), (b0, b1) = interval(project, "a.txt"), interval(project, "b.txt")
    assert (max(a0, b0) < min(a1, b1)) is overlap, f"-j {jobs}: a {a0}-{a1}, b {b0}-{b1}"


def test_bad_jobs_value_is_bad_input(project):
    project.write("stamp.py", STAMP)
    project.pipeline(PARALLEL)
    res = project.flowml("run", "-j", "0")
    assert res.code == 2 and "Traceback" not in res.err


# retries ----------------------------------------------------------------------------------

def test_failing_step_with_two_retries_runs_three_times(project, outside):
    counter = outside / "attempts"
    project.pipeline(f"""
        name: retries
        steps:
          flaky:
            run: echo try >> {counter}; exit 3
            outputs: [never.txt]
            retries: 2
    """)
    summary = project.run_json()
    assert summary["code"] == 1 and summary["status"] == "failed"
    assert statuses(summary) == {"flaky": "failed"}
    assert counter.read_text().splitlines() == ["try"] * 3
    assert "exit code 3" in summary["stderr"] and "after 3 attempts" in summary["stderr"]


def test_retry_that_succeeds_is_a_success(project, outside):
    counter = outside / "attempts"
    project.pipeline(f"""
        name: retries
        steps:
          flaky:
            run: echo try >> {counter}; test $(wc -l < {counter}) -ge 2 && echo ok > ok.txt
            outputs: [ok.txt]
            retries: 3
    """)
    summary = project.run_json()
    assert summary["code"] == 0, summary["stderr"]
    assert statuses(summary) == {"flaky": "ran"}
    assert counter.read_text().splitlines() == ["try"] * 2
    assert statuses(project.run_json()) == {"flaky": "cached"}


# timeouts ---------------------------------------------------------------------------------

def test_timeout_kills_the_whole_process_group(project, outside):
    pidfile = outside / "child.pid"
    project.pipeline(f"""
        name: timeout
        steps:
          hang:
            run: sh -c 'sleep 30 & echo $! > {pidfile}; wait'
            outputs: [never.txt]
            timeout: 1s
          other:
            run: echo other > other.txt
            outputs: [other.txt]
    """)
    summary = project.run_json("-j", "2", "--keep-going", timeout=60)
    assert summary["code"] == 1
    assert statuses(summary) == {"hang": "failed", "other": "ran"}
    assert "timed out" in summary["stderr"]
    child = int(pidfile.read_text())
    assert wait_until(lambda: not process_alive(child), timeout=5), f"child {child} of the timed-out step survived"


# failure policy ---------------------------------------------------------------------------

FAILURES = """
    name: failures
    steps:
      bad:
        run: echo boom >&2; exit 1
        outputs: [bad.txt]
      down:
        run: cat bad.txt > down.txt
        inputs: [bad.txt]
        outputs: [down.txt]
      ok:
        run: echo ok > ok.txt
        outputs: [ok.txt]
      ok_after:
        run: cat ok.txt > ok_after.txt
        inputs: [ok.txt]
        outputs: [ok_after.txt]
"""


def test_fail_fast_skips_steps_not_started(project):
    project.pipeline(FAILURES)
    summary = project.run_json("-j", "1")
    assert summary["code"] == 1 and summary["status"] == "failed"
    assert statuses(summary) == {"bad": "failed", "down": "skipped", "ok": "skipped", "ok_after": "skipped"}
    assert "earlier step failed" in summary["by_name"]["ok"]["reason"]
    assert not (project.root / "ok.txt").exists()
    # the failed step's log tail is shown
    assert "bad failed: exit code 1" in summary["stderr"] and "boom" in summary["stderr"]


def test_keep_going_runs_every_branch_not_downstream_of_the_failure(project):
    project.pipeline(FAILURES)
    summary = project.run_json("-j", "1", "--keep-going")
    assert summary["code"] == 1 and summary["status"] == "failed"
    assert statuses(summary) == {"bad": "failed", "down": "skipped", "ok": "ran", "ok_after": "ran"}
    assert summary["by_name"]["down"]["reason"] == "upstream bad failed"
    assert project.read("ok_after.txt") == "ok\n"
    # a rerun resumes: what finished is cached, the failure runs again
    again = project.run_json("-j", "1", "--keep-going")
    assert statuses(again) == {"bad": "failed", "down": "skipped", "ok": "cached", "ok_after": "cached"}


def test_declared_output_not_written_fails(project):
    project.pipeline("""
        name: missing
        steps:
          lazy:
            run: echo one > one.txt
            outputs: [one.txt, two.txt]
    """)
    summary = project.run_json()
    assert summary["code"] == 1
    assert statuses(summary) == {"lazy": "failed"}
    assert "declared output not written: two.txt" in summary["stderr"]
    # nothing was recorded as a cache hit: the next run runs it again
    assert statuses(project.run_json()) == {"lazy": "failed"}


def test_exit_codes(project):
    project.pipeline("""
        name: codes
        params: {ok: 0}
        steps:
          s:
            run: exit ${params.ok}
    """)
    assert project.flowml("run").code == 0
    assert project.flowml("run", "-P", "ok=1").code == 1
    assert project.flowml("run", "-P", "nope=1").code == 2
    project.pipeline("""
        name: cycle
        steps:
          a: {run: cat b.txt > a.txt, inputs: [b.txt], outputs: [a.txt]}
          b: {run: cat a.txt > b.txt, inputs: [a.txt], outputs: [b.txt]}
    """)
    res = project.flowml("run")
    assert res.code == 2 and ("a -> b -> a" in res.err or "b -> a -> b" in res.err), res.err


# signals ----------------------------------------------------------------------------------

SIGNALS = """
    name: signals
    params: {{dur: 30}}
    steps:
      quick:
        run: echo quick > quick.txt
        outputs: [quick.txt]
      slow:
        run: echo $$ > {marker}; sleep ${{params.dur}}; cat quick.txt > slow.txt
        inputs: [quick.txt]
        outputs: [slow.txt]
"""


def _interrupt_run(project, outside, sig) -> tuple[int, str, str, int]:
    """Start a run, signal it once the slow step runs; returns (exit code, stdout, stderr, slow's pgid)."""
    marker = outside / "slow.pid"
    project.pipeline(SIGNALS.format(marker=marker))
    proc = subprocess.Popen([sys.executable, "-m", "flowml", "run", "--json"], cwd=project.root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "CI": "1"})
    try:
        assert wait_until(lambda: marker.exists() and marker.read_text().strip(), timeout=20), "slow never started"
        pgid = int(marker.read_text())
        assert group_members(pgid), "the slow step is not running"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err, pgid


def _integrity_ok(project) -> None:
    with sqlite3.connect(project.root / ".flowml" / "flowml.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


SIGNAL_IDS = {"argvalues": [signal.SIGINT, signal.SIGTERM], "ids": ["SIGINT", "SIGTERM"]}


@pytest.mark.parametrize("sig", **SIGNAL_IDS)
def test_signal_stops_the_step_group_and_a_rerun_resumes(project, outside, sig):
    code, out, err, pgid = _interrupt_run(project, outside, sig)
    assert wait_until(lambda: not group_members(pgid), timeout=5), f"step processes survived: {group_members(pgid)}"
    assert not (project.root / "slow.txt").exists()
    _integrity_ok(project)

    states = {r["name"]: r for r in project.flowml("status", "--json").json}
    assert states["quick"]["will_run"] is False
    assert states["slow"]["will_run"] is True

    again = project.run_json("-P", "dur=0")
    assert again["code"] == 0, again["stderr"]
    assert statuses(again) == {"quick": "cached", "slow": "ran"}
    assert project.read("slow.txt") == "quick\n"
    _integrity_ok(project)


@pytest.mark.parametrize("sig", **SIGNAL_IDS)
def test_signal_exits_130_and_reports_the_step_killed(project, outside, sig):
    """Regression: _interrupt once read outcome.duration_s and crashed with a traceback (exit 1)."""
    code, out, err, pgid = _interrupt_run(project, outside, sig)
    assert code == 130, err
    assert "Traceback" not in err
    summary = json.loads(out)
    assert summary["status"] == "interrupted"
    assert {s["name"]: s["status"] for s in summary["steps"]} == {"quick": "ran", "slow": "killed"}
    assert "killed" in err and "slow" in err


# two runs at once -------------------------------------------------------------------------

def test_two_runs_at_once_run_each_step_once_and_both_succeed(project, outside):
    counter = outside / "count"
    project.pipeline(f"""
        name: twice
        steps:
          a:
            run: sleep 1; echo a > a.txt; echo a >> {counter}
            outputs: [a.txt]
          b:
            run: cat a.txt > b.txt; echo b >> {counter}
            inputs: [a.txt]
            outputs: [b.txt]
    """)
    procs = [subprocess.Popen([sys.executable, "-m", "flowml", "run", "--json"], cwd=project.root,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "CI": "1"}) for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        results.append({s["name"]: s["status"] for s in json.loads(out)["steps"]})
    assert sorted(counter.read_text().splitlines()) == ["a", "b"], "a step ran in both processes"
    assert sorted(r["a"] for r in results) == ["cached", "ran"]
    assert project.read("b.txt") == "a\n"
    _integrity_ok(project)
    assert statuses(project.run_json()) == {"a": "cached", "b": "cached"}


def test_a_rerun_after_flowml_is_killed_waits_for_the_orphaned_step(project):
    """kill -9 leaves the step running; it holds the node's lock, so the rerun waits for it
    instead of writing the same output beside it."""
    project.pipeline("""\
        name: t
        steps:
          a: {run: "for i in 1 2 3 4; do echo $i >> out.txt; sleep 0.4; done", outputs: [out.txt]}
        """)
    proc = project.start("run")
    project.wait_for("out.txt")
    proc.kill()
    proc.wait()
    summary = project.run_json()
    assert summary["by_name"]["a"]["status"] == "ran"
    assert project.read("out.txt") == "1\n2\n3\n4\n"
