"""Compiled plans (flowml.plan): a no-op rerun reads a stored plan instead of loading the
pipeline with pydantic and networkx, and a stored plan never hides a change."""

from __future__ import annotations

import subprocess
import sys

PIPELINE = """\
name: p
params: {n: 1}
steps:
  a:
    run: cp data/in.txt out/a.txt && echo ${params.n} >> out/a.txt
    inputs: [data/in.txt]
    outputs: [out/a.txt]
  b:
    run: cp out/a.txt out/b.txt
    inputs: [out/a.txt]
    outputs: [out/b.txt]
"""

HEAVY = ("pydantic", "networkx")


def _modules_after_run(project, *args: str) -> set[str]:
    """Top-level modules imported by an in-process ``flowml run ARGS`` (its exit code is checked)."""
    code = (
        "import sys\n"
        "from flowml.cli import main\n"
        f"sys.argv = ['flowml', 'run', *{list(args)!r}]\n"
        "try:\n    main()\n"
        "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=project.root, capture_output=True, text=True,
                          env={"CI": "1", "PATH": "/usr/bin:/bin"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stderr.strip().splitlines()[-1].split())


def test_noop_rerun_reads_the_stored_plan_without_heavy_imports(project):
    project.pipeline(PIPELINE)
    project.write("data/in.txt", "x\n")
    first = _modules_after_run(project)
    assert set(HEAVY) <= first, "the first run loads and validates the pipeline"
    assert len(list((project.root / ".flowml" / "plans").glob("*.json"))) == 1
    second = _modules_after_run(project)
    assert not set(HEAVY) & second, f"a no-op rerun imported {set(HEAVY) & second}"


def test_a_stored_plan_does_not_hide_edits_overrides_or_selection(project):
    project.pipeline(PIPELINE)
    project.write("data/in.txt", "x\n")
    assert project.run_json()["status"] == "success"
    summary = project.run_json("-P", "n=2")
    assert summary["by_name"]["a"]["status"] == "ran" and "param n 1 -> 2" in summary["by_name"]["a"]["reason"]
    assert set(project.run_json("--target", "a")["by_name"]) == {"a"}
    project.pipeline(PIPELINE.replace("cp out/a.txt out/b.txt", "cat out/a.txt out/a.txt > out/b.txt"))
    summary = project.run_json()
    assert summary["by_name"]["b"]["status"] == "ran" and "command changed" in summary["by_name"]["b"]["reason"]


def test_a_required_input_deleted_after_its_plan_was_stored_is_reported_with_its_line(project):
    project.pipeline(PIPELINE)
    project.write("data/in.txt", "x\n")
    assert project.run_json()["status"] == "success"
    (project.root / "data" / "in.txt").unlink()
    res = project.flowml("run")
    assert res.code == 2
    assert "pipeline.yaml:6:14: steps.a.inputs[0]: input 'data/in.txt' does not exist and no step writes it" in res.err
