"""``flowml gc`` through the CLI: what it removes, what it keeps, and that it leaves a running store alone."""

from __future__ import annotations

import os
import time

PIPELINE = """\
name: g
params: {n: 1}
steps:
  a:
    run: echo ${params.n} > a.txt
    outputs: [a.txt]
"""


def _objects(project) -> set[str]:
    root = project.root / ".flowml" / "cache" / "objects"
    return {p.parent.name + p.name for p in root.glob("??/*")}


def test_gc_keeps_what_entries_need_and_removes_the_rest(project):
    project.pipeline(PIPELINE)
    assert project.run_json()["status"] == "success"
    assert project.run_json("-P", "n=2")["by_name"]["a"]["status"] == "ran"
    both = _objects(project)
    assert len(both) == 2
    stray = project.root / ".flowml" / "cache" / "objects" / "ff" / ("0" * 30)
    stray.parent.mkdir(exist_ok=True)
    stray.write_text("no entry refers to me")

    dry = project.flowml("gc", "--dry-run")
    assert dry.code == 0 and "would remove 0 superseded entries, 1 objects" in dry.out
    assert stray.exists()
    res = project.flowml("gc")
    assert res.code == 0 and "removed 0 superseded entries, 1 objects" in res.out
    assert _objects(project) == both and not stray.exists()

    res = project.flowml("gc", "--superseded")
    assert res.code == 0 and "removed 1 superseded entries, 1 objects" in res.out
    assert len(_objects(project)) == 1
    assert project.run_json("-P", "n=2")["by_name"]["a"]["status"] == "cached", "the current state stays"
    again = project.run_json()["by_name"]["a"]
    assert again["status"] == "ran" and again["reason"] == "param n 2 -> 1", "the superseded result is gone"


def test_gc_forgets_memo_rows_of_deleted_files(project):
    project.pipeline(PIPELINE.replace("run: echo ${params.n} > a.txt", "run: cat in.txt > a.txt\n    inputs: [in.txt]"))
    project.write("in.txt", "x\n")
    old = time.time() - 60  # older than the racy window, so the memo keeps it
    os.utime(project.root / "in.txt", (old, old))
    assert project.run_json()["status"] == "success"
    (project.root / "in.txt").unlink()
    res = project.flowml("gc")
    assert res.code == 0 and "1 memo rows" in res.out


def test_gc_refuses_while_a_run_uses_the_store(project):
    project.pipeline("""\
        name: g
        steps:
          slow: {run: "touch started && sleep 3 && echo done > s.txt", outputs: [s.txt]}
        """)
    project.flowml("status")  # creates the store
    run = project.start("run")
    try:
        project.wait_for("started")
        res = project.flowml("gc")
        assert res.code == 1 and "a flowml run is using" in res.err and "Traceback" not in res.err
    finally:
        assert run.wait(timeout=30) == 0
    assert project.flowml("gc").code == 0


def test_gc_without_a_store_says_so_and_creates_nothing(project):
    project.pipeline(PIPELINE)
    res = project.flowml("gc")
    assert res.code == 0 and "nothing to collect" in res.out
    assert not (project.root / ".flowml").exists()


def test_gc_superseded_keeps_the_current_state_of_every_pipeline_file(project):
    """Two files that share a name: are still two pipelines, each keeping its latest entries."""
    project.pipeline("name: p\nsteps:\n  a: {run: echo prod > prod.txt, outputs: [prod.txt]}\n")
    project.write("dev.yaml", "name: p\nsteps:\n  a: {run: echo dev > dev.txt, outputs: [dev.txt]}\n")
    assert project.run_json()["status"] == "success"
    assert project.run_json("dev.yaml")["status"] == "success"
    assert project.flowml("gc", "--superseded").code == 0
    assert project.run_json()["by_name"]["a"]["status"] == "cached"
    assert project.run_json("dev.yaml")["by_name"]["a"]["status"] == "cached"


def test_gc_superseded_refuses_when_the_workspace_holds_nothing_yet(project):
    """Right after an upgrade (or a lost state.db) no entry is known to be current: dropping
    the "superseded" ones would drop the whole cache."""
    project.pipeline(PIPELINE)
    assert project.run_json()["status"] == "success"
    os.unlink(project.root / ".flowml" / "state.db")
    res = project.flowml("gc", "--superseded")
    assert res.code == 1 and "run the pipeline first" in res.err
    assert project.run_json()["by_name"]["a"]["status"] == "cached"


def test_gc_superseded_refuses_a_shared_store(project, tmp_path):
    project.pipeline(PIPELINE)
    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    assert project.run_json("--tracking-uri", shared)["status"] == "success"
    res = project.flowml("gc", "--superseded", env={"FLOWML_TRACKING_URI": shared})
    assert res.code == 1 and "is shared, so it is refused" in res.err
