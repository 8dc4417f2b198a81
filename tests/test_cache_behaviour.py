"""Caching through the CLI: what runs, what is cached, what is restored, and why.

Every test drives ``python -m flowml`` in a throwaway project (see conftest.py). Steps are
tiny ``sh`` commands. Where a test must prove that a step did NOT run, the step appends
to a counter file outside the project (an absolute path that is neither an input nor an
output, so it cannot influence the cache key).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

HEX = re.compile(r"^[0-9a-f]{16,}$")


@pytest.fixture
def outside(tmp_path_factory) -> Path:
    """A folder outside the project, for counters and logs the cache must not see."""
    return tmp_path_factory.mktemp("outside")


def statuses(summary: dict) -> dict[str, str]:
    return {name: s["status"] for name, s in summary["by_name"].items()}


def ran(summary: dict) -> set[str]:
    return {name for name, s in summary["by_name"].items() if s["status"] == "ran"}


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def plan(project, *args) -> dict[str, dict]:
    """``flowml status --json`` as {node: record}."""
    res = project.flowml("status", "--json", *args)
    assert res.code == 0, res.err
    return {r["name"]: r for r in res.json}


def snapshot(root: Path, rels) -> dict[str, tuple[int, int]]:
    """(inode, mtime_ns) of files: a rewrite changes at least one of them."""
    out = {}
    for rel in rels:
        st = os.stat(root / rel)
        out[rel] = (st.st_ino, st.st_mtime_ns)
    return out


# first run / no-op rerun ------------------------------------------------------------------

def test_first_run_runs_everything_second_run_nothing(project, outside):
    counter = outside / "count"
    project.write("in.txt", "hello\n")
    project.pipeline(f"""
        name: noop
        steps:
          a:
            run: cat in.txt > a.txt; echo a >> {counter}
            inputs: [in.txt]
            outputs: [a.txt]
          b:
            run: tr a-z A-Z < a.txt > b.txt; echo b >> {counter}
            inputs: [a.txt]
            outputs: [b.txt]
          c:
            run: mkdir -p dir && echo c > dir/c.txt; echo c >> {counter}
            outputs: [dir/]
    """)
    first = project.run_json()
    assert first["code"] == 0 and first["status"] == "success"
    assert statuses(first) == {"a": "ran", "b": "ran", "c": "ran"}
    assert all(s["reason"] == "never ran" for s in first["steps"])
    assert sorted(lines(counter)) == ["a", "b", "c"]
    assert project.read("b.txt") == "HELLO\n"
    before = snapshot(project.root, ["a.txt", "b.txt", "dir/c.txt"])

    second = project.run_json()
    assert second["code"] == 0 and second["status"] == "success"
    assert statuses(second) == {"a": "cached", "b": "cached", "c": "cached"}
    assert sorted(lines(counter)) == ["a", "b", "c"], "a cached step ran its command"
    assert snapshot(project.root, ["a.txt", "b.txt", "dir/c.txt"]) == before, "a cached step rewrote its outputs"
    # the cached record carries the same key and outputs as the run that produced it
    for name in ("a", "b", "c"):
        assert second["by_name"][name]["cache_key"] == first["by_name"][name]["cache_key"]
        assert second["by_name"][name]["outputs"] == first["by_name"][name]["outputs"]


# exactly the downstream -------------------------------------------------------------------

DIAMOND = """
    name: diamond
    steps:
      a:
        run: cat a_in.txt > a.txt
        inputs: [a_in.txt]
        outputs: [a.txt]
      b:
        run: cat a.txt b_in.txt > b.txt
        inputs: [a.txt, b_in.txt]
        outputs: [b.txt]
      c:
        run: cat a.txt > c.txt; echo c >> c.txt
        inputs: [a.txt]
        outputs: [c.txt]
      d:
        run: cat b.txt c.txt > d.txt
        inputs: [b.txt, c.txt]
        outputs: [d.txt]
      side:
        run: cat s_in.txt > side.txt
        inputs: [s_in.txt]
        outputs: [side.txt]
"""


def _diamond(project):
    for name in ("a_in", "b_in", "s_in"):
        project.write(f"{name}.txt", f"{name}\n")
    project.pipeline(DIAMOND)
    assert ran(project.run_json()) == {"a", "b", "c", "d", "side"}


def test_changing_a_side_input_reruns_exactly_that_step_and_its_downstream(project):
    _diamond(project)
    project.write("b_in.txt", "b_in v2\n")
    summary = project.run_json()
    assert summary["code"] == 0
    assert statuses(summary) == {"a": "cached", "b": "ran", "c": "cached", "d": "ran", "side": "cached"}
    assert summary["by_name"]["b"]["reason"] == "input b_in.txt changed"
    assert summary["by_name"]["d"]["reason"] == "upstream b produced different outputs"
    assert project.read("d.txt") == "a_in\nb_in v2\na_in\nc\n"


def test_changing_the_root_input_reruns_the_whole_diamond_but_not_the_side_branch(project):
    _diamond(project)
    project.write("a_in.txt", "a_in v2\n")
    summary = project.run_json()
    assert statuses(summary) == {"a": "ran", "b": "ran", "c": "ran", "d": "ran", "side": "cached"}
    assert project.read("d.txt") == "a_in v2\nb_in\na_in v2\nc\n"
    # and then everything is cached again
    assert set(statuses(project.run_json()).values()) == {"cached"}


def test_early_cutoff_identical_upstream_bytes_keep_dependents_cached(project, outside):
    counter = outside / "count"
    project.write("in.txt", "keep|first\n")
    project.pipeline(f"""
        name: cutoff
        steps:
          up:
            run: cut -d'|' -f1 in.txt > up.txt
            inputs: [in.txt]
            outputs: [up.txt]
          down:
            run: cat up.txt up.txt > down.txt; echo down >> {counter}
            inputs: [up.txt]
            outputs: [down.txt]
          further:
            run: wc -l < down.txt > further.txt
            inputs: [down.txt]
            outputs: [further.txt]
    """)
    assert ran(project.run_json()) == {"up", "down", "further"}
    project.write("in.txt", "keep|second\n")  # up's input changes, its output does not

    before = plan(project)
    assert before["up"]["will_run"] and before["up"]["reasons"] == ["input in.txt changed"]
    assert before["down"]["will_run"] and before["down"]["reasons"] == ["upstream up will run"]

    summary = project.run_json()
    assert statuses(summary) == {"up": "ran", "down": "cached", "further": "cached"}
    assert lines(counter) == ["down"]
    assert not summary["warnings"]


# code dependencies ------------------------------------------------------------------------

@pytest.mark.parametrize("import_line", ["import helpers.util", "from helpers import util"])
def test_editing_a_helper_module_reruns_the_step_that_imports_it(project, import_line):
    project.write("helpers/__init__.py", "")
    project.write("helpers/util.py", "VALUE = 1\n")
    project.write("helpers/unused.py", "X = 1\n")
    name = "helpers.util" if import_line.startswith("import") else "util"
    project.write("step.py", f"""
        {import_line}
        with open("out.txt", "w") as fh:
            fh.write(str({name}.VALUE))
    """)
    project.pipeline("""
        name: code
        steps:
          step:
            run: python step.py
            outputs: [out.txt]
          other:
            run: echo other > other.txt
            outputs: [other.txt]
    """)
    assert ran(project.run_json()) == {"step", "other"}
    assert project.read("out.txt") == "1"

    # a module in the package that nobody imports does not count
    project.write("helpers/unused.py", "X = 2\n")
    assert not any(r["will_run"] for r in plan(project).values())

    project.write("helpers/util.py", "VALUE = 2\n")
    states = plan(project)
    assert states["step"]["will_run"] is True
    assert states["step"]["reasons"] == ["code helpers/util.py changed"]
    assert states["other"]["will_run"] is False

    summary = project.run_json()
    assert statuses(summary) == {"step": "ran", "other": "cached"}
    assert summary["by_name"]["step"]["reason"] == "code helpers/util.py changed"
    assert project.read("out.txt") == "2"


def test_editing_the_script_itself_reruns_with_a_code_reason(project):
    project.write("step.py", "open('out.txt', 'w').write('1')\n")
    project.pipeline("""
        name: script
        steps:
          step:
            run: python step.py
            outputs: [out.txt]
    """)
    project.run_json()
    project.write("step.py", "open('out.txt', 'w').write('2')\n")
    assert plan(project)["step"]["reasons"] == ["code step.py changed"]
    assert statuses(project.run_json()) == {"step": "ran"}
    assert project.read("out.txt") == "2"


# restoring outputs ------------------------------------------------------------------------

RESTORE = """
    name: restore
    steps:
      make:
        run: printf 'payload\\n' > out.txt; mkdir -p models/sub; echo one > models/a.bin; echo two > models/sub/b.bin; echo run >> {counter}
        outputs: [out.txt, models/]
"""


def test_deleted_output_is_restored_without_running_the_step(project, outside):
    counter = outside / "count"
    project.pipeline(RESTORE.format(counter=counter))
    first = project.run_json()
    assert lines(counter) == ["run"]
    (project.root / "out.txt").unlink()

    states = plan(project)
    assert states["make"]["will_run"] is False and states["make"]["status"] == "cached"

    summary = project.run_json()
    assert statuses(summary) == {"make": "cached"}
    assert "out.txt" in summary["by_name"]["make"]["reason"]  # "restored out.txt"
    assert lines(counter) == ["run"], "the step ran instead of being restored"
    assert project.read("out.txt") == "payload\n"
    assert summary["by_name"]["make"]["outputs"] == first["by_name"]["make"]["outputs"]
    # a restored output is the user's file again: writable, not a link into the store
    assert os.access(project.root / "out.txt", os.W_OK)
    assert os.stat(project.root / "out.txt").st_nlink == 1


def test_modified_output_is_restored_without_running_the_step(project, outside):
    counter = outside / "count"
    project.pipeline(RESTORE.format(counter=counter))
    project.run_json()
    project.write("out.txt", "tampered\n")
    project.write("models/sub/b.bin", "tampered\n")
    summary = project.run_json()
    assert statuses(summary) == {"make": "cached"}
    assert lines(counter) == ["run"]
    assert project.read("out.txt") == "payload\n"
    assert project.read("models/sub/b.bin") == "two\n"


def test_deleted_folder_output_is_restored_with_all_its_files(project, outside):
    counter = outside / "count"
    project.pipeline(RESTORE.format(counter=counter))
    project.run_json()
    shutil.rmtree(project.root / "models")
    summary = project.run_json()
    assert statuses(summary) == {"make": "cached"}
    assert lines(counter) == ["run"]
    files = sorted(str(p.relative_to(project.root)) for p in (project.root / "models").rglob("*") if p.is_file())
    assert files == ["models/a.bin", "models/sub/b.bin"]
    assert project.read("models/a.bin") == "one\n" and project.read("models/sub/b.bin") == "two\n"


def test_extra_file_in_a_folder_output_is_removed_on_restore(project, outside):
    counter = outside / "count"
    project.pipeline(RESTORE.format(counter=counter))
    project.run_json()
    project.write("models/stray/junk.txt", "junk\n")
    summary = project.run_json()
    assert statuses(summary) == {"make": "cached"}
    assert lines(counter) == ["run"]
    assert not (project.root / "models/stray").exists()
    assert project.read("models/a.bin") == "one\n"


def _lose_output(project, outside):
    counter = outside / "count"
    project.pipeline(RESTORE.format(counter=counter))
    project.run_json()
    (project.root / "out.txt").unlink()
    shutil.rmtree(project.root / ".flowml" / "cache" / "objects")
    return counter


def test_status_says_an_output_lost_from_disk_and_store_is_not_restorable(project, outside):
    _lose_output(project, outside)
    states = plan(project)
    assert states["make"]["will_run"] is True
    assert states["make"]["reasons"] == ["output out.txt missing and not restorable"]


def test_output_lost_from_disk_and_store_reruns_the_step(project, outside):
    """Regression: the entry was once taken for one "made by a concurrent run" and reported cached."""
    counter = _lose_output(project, outside)
    summary = project.run_json()
    assert statuses(summary) == {"make": "ran"}
    assert summary["by_name"]["make"]["reason"] == "output out.txt missing and not restorable"
    assert lines(counter) == ["run", "run"]
    assert project.read("out.txt") == "payload\n"
    assert statuses(project.run_json()) == {"make": "cached"}
    assert statuses(summary) == {"make": "ran"}
    assert lines(counter) == ["run", "run"]
    assert project.read("out.txt") == "payload\n"


# params -----------------------------------------------------------------------------------

PARAMS = """
    name: params
    params: {{n: 1, rate: 0.5, label: x}}
    steps:
      uses_n:
        run: echo ${{params.n}} > n.txt; echo n >> {counter}
        outputs: [n.txt]
      uses_rate:
        run: echo ${{params.rate}} > rate.txt; echo rate >> {counter}
        outputs: [rate.txt]
      after_n:
        run: cat n.txt > after.txt
        inputs: [n.txt]
        outputs: [after.txt]
"""


def test_param_override_reruns_only_the_steps_that_use_it(project, outside):
    counter = outside / "count"
    project.pipeline(PARAMS.format(counter=counter))
    assert ran(project.run_json()) == {"uses_n", "uses_rate", "after_n"}

    states = plan(project, "-P", "n=2")
    assert states["uses_n"]["reasons"] == ["param n 1 -> 2"]
    assert states["uses_rate"]["will_run"] is False
    assert states["after_n"]["reasons"] == ["upstream uses_n will run"]

    summary = project.run_json("-P", "n=2")
    assert statuses(summary) == {"uses_n": "ran", "uses_rate": "cached", "after_n": "ran"}
    assert summary["by_name"]["uses_n"]["reason"] == "param n 1 -> 2"
    assert project.read("after.txt") == "2\n"
    # without the override, the default's entry is still in the cache: nothing runs, n.txt is back to 1
    back = project.run_json()
    assert statuses(back) == {"uses_n": "cached", "uses_rate": "cached", "after_n": "cached"}
    assert project.read("n.txt") == "1\n"
    assert sorted(lines(counter)) == ["n", "n", "rate"]


def test_param_override_is_typed_by_the_default(project, outside):
    counter = outside / "count"
    project.pipeline(PARAMS.format(counter=counter))
    project.run_json("-P", "n=2")
    # "02" is the int 2, so this is the same key as -P n=2
    assert statuses(project.run_json("-P", "n=02"))["uses_n"] == "cached"
    # rate is a float: -P rate=1 means 1.0
    project.run_json("-P", "rate=1")
    assert project.read("rate.txt") == "1.0\n"
    bad = project.flowml("run", "-P", "n=two")
    assert bad.code == 2
    assert "-P n=two" in bad.err and "Traceback" not in bad.err


def test_env_var_change_reruns_with_a_reason(project):
    text = """
        name: envvars
        steps:
          s:
            run: echo $MODE > mode.txt
            outputs: [mode.txt]
            env_vars: {{MODE: {mode}}}
    """
    project.pipeline(text.format(mode="fast"))
    project.run_json()
    assert project.read("mode.txt") == "fast\n"
    project.pipeline(text.format(mode="slow"))
    summary = project.run_json()
    assert statuses(summary) == {"s": "ran"}
    assert summary["by_name"]["s"]["reason"] == "environment variable MODE changed"
    assert project.read("mode.txt") == "slow\n"


def test_folder_input_change_reruns_with_a_reason(project):
    project.write("data/one.csv", "1\n")
    project.write("data/sub/two.csv", "2\n")
    project.pipeline("""
        name: folder_in
        steps:
          s:
            run: cat data/*.csv data/sub/*.csv > all.txt
            inputs: [data/]
            outputs: [all.txt]
    """)
    project.run_json()
    project.write("data/__pycache__/junk.pyc", "ignored")  # caches do not count
    assert statuses(project.run_json()) == {"s": "cached"}
    project.write("data/three.csv", "3\n")
    summary = project.run_json()
    assert statuses(summary) == {"s": "ran"}
    assert summary["by_name"]["s"]["reason"] == "input data changed"
    assert project.read("all.txt") == "1\n3\n2\n"  # data/*.csv, then data/sub/*.csv


# cache knobs ------------------------------------------------------------------------------

def test_cache_false_always_runs(project, outside):
    counter = outside / "count"
    project.pipeline(f"""
        name: nocache
        steps:
          always:
            run: echo always > always.txt; echo always >> {counter}
            outputs: [always.txt]
            cache: false
          once:
            run: echo once > once.txt; echo once >> {counter}
            outputs: [once.txt]
          after:
            run: cat always.txt > after.txt; echo after >> {counter}
            inputs: [always.txt]
            outputs: [after.txt]
    """)
    project.run_json()
    summary = project.run_json()
    # the uncached step reruns; it wrote the same bytes, so its dependent stays cached
    assert statuses(summary) == {"always": "ran", "once": "cached", "after": "cached"}
    assert summary["by_name"]["always"]["reason"] == "caching is off for this step"
    assert sorted(lines(counter)) == ["after", "always", "always", "once"]
    assert plan(project)["always"]["will_run"] is True


def test_cache_version_bump_reruns_with_a_reason(project, outside):
    counter = outside / "count"
    text = """
        name: version
        steps:
          s:
            run: echo s > s.txt; echo s >> {counter}
            outputs: [s.txt]
            cache: {{version: {v}}}
    """
    project.pipeline(text.format(counter=counter, v=1))
    project.run_json()
    assert statuses(project.run_json()) == {"s": "cached"}
    project.pipeline(text.format(counter=counter, v=2))
    states = plan(project)
    assert states["s"]["reasons"] == ["cache version 1 -> 2"]
    summary = project.run_json()
    assert statuses(summary) == {"s": "ran"}
    assert summary["by_name"]["s"]["reason"] == "cache version 1 -> 2"
    assert lines(counter) == ["s", "s"]


# forcing ----------------------------------------------------------------------------------

FORCE = """
    name: force
    steps:
      a:
        run: echo a > a.txt; echo a >> {counter}
        outputs: [a.txt]
      b:
        run: cat a.txt > b.txt; echo b >> {counter}
        inputs: [a.txt]
        outputs: [b.txt]
      c:
        run: echo c > c.txt; echo c >> {counter}
        outputs: [c.txt]
"""


def test_force_reruns_one_step_and_its_unchanged_outputs_keep_downstream_cached(project, outside):
    counter = outside / "count"
    project.pipeline(FORCE.format(counter=counter))
    project.run_json()
    summary = project.run_json("--force", "a")
    assert statuses(summary) == {"a": "ran", "b": "cached", "c": "cached"}
    assert summary["by_name"]["a"]["reason"] == "forced"
    assert not summary["warnings"], "a deterministic step was reported nondeterministic"
    assert sorted(lines(counter)) == ["a", "a", "b", "c"]


def test_force_all_reruns_every_step(project, outside):
    counter = outside / "count"
    project.pipeline(FORCE.format(counter=counter))
    project.run_json()
    summary = project.run_json("--force-all")
    assert statuses(summary) == {"a": "ran", "b": "ran", "c": "ran"}
    assert all(s["reason"] == "forced" for s in summary["steps"])
    assert sorted(lines(counter)) == ["a", "a", "b", "b", "c", "c"]


def test_force_of_an_unknown_step_is_bad_input(project, outside):
    project.pipeline(FORCE.format(counter=outside / "count"))
    res = project.flowml("run", "--force", "aa")
    assert res.code == 2 and "unknown step 'aa'" in res.err and "Traceback" not in res.err


def test_forced_rerun_with_different_bytes_warns_nondeterministic(project):
    project.pipeline("""
        name: nondet
        steps:
          rnd:
            run: python -c "import os; open('r.bin', 'wb').write(os.urandom(16))"
            outputs: [r.bin]
    """)
    first = project.run_json()
    assert not first["warnings"]
    summary = project.run_json("--force", "rnd")
    assert statuses(summary) == {"rnd": "ran"}
    assert summary["code"] == 0
    assert len(summary["warnings"]) == 1
    warning = summary["warnings"][0]
    assert "nondeterministic" in warning and "rnd" in warning and "r.bin" in warning
    assert summary["by_name"]["rnd"]["outputs"] != first["by_name"]["rnd"]["outputs"]
    # the plain summary on stderr says it too
    assert "nondeterministic" in summary["stderr"]


# matrix -----------------------------------------------------------------------------------

MATRIX = """
    name: matrix
    steps:
      s:
        matrix: {{x: [{xs}]}}
        run: sleep 0.3; echo ${{matrix.x}} > out/${{matrix.x}}.txt; echo s${{matrix.x}} >> {log}
        outputs: ["out/${{matrix.x}}.txt"]
      gather:
        run: cat out/*.txt > all.txt; echo gather >> {log}
        inputs: [out/]
        outputs: [all.txt]
"""


def test_matrix_nodes_are_cached_separately_and_downstream_waits_for_all(project, outside):
    log = outside / "log"
    project.pipeline(MATRIX.format(xs="1, 2", log=log))
    summary = project.run_json("-j", "3")
    assert statuses(summary) == {"s[x=1]": "ran", "s[x=2]": "ran", "gather": "ran"}
    assert [s["name"] for s in summary["steps"]] == ["s[x=1]", "s[x=2]", "gather"]
    order = lines(log)
    assert sorted(order[:2]) == ["s1", "s2"] and order[2:] == ["gather"], order
    assert project.read("all.txt") == "1\n2\n"
    assert summary["by_name"]["s[x=1]"]["cache_key"] != summary["by_name"]["s[x=2]"]["cache_key"]

    # a new combination runs alone; the old ones stay cached; the reader reruns after it
    project.pipeline(MATRIX.format(xs="1, 2, 3", log=log))
    summary = project.run_json("-j", "3")
    assert statuses(summary) == {"s[x=1]": "cached", "s[x=2]": "cached", "s[x=3]": "ran", "gather": "ran"}
    assert lines(log)[3:] == ["s3", "gather"]
    assert project.read("all.txt") == "1\n2\n3\n"


def test_force_by_step_name_forces_every_matrix_node_and_by_node_name_one(project, outside):
    log = outside / "log"
    project.pipeline(MATRIX.format(xs="1, 2", log=log))
    project.run_json()
    one = project.run_json("--force", "s[x=2]")
    assert statuses(one) == {"s[x=1]": "cached", "s[x=2]": "ran", "gather": "cached"}
    both = project.run_json("--force", "s")
    assert statuses(both) == {"s[x=1]": "ran", "s[x=2]": "ran", "gather": "cached"}


# metrics and when: ------------------------------------------------------------------------

METRICS = """
    name: metrics
    params: {acc: 0.9}
    steps:
      train:
        run: |
          echo '{"acc": ${params.acc}, "nested": {"loss": 0.25}}' > m.json
        metrics: m.json
      report:
        run: echo "acc=${steps.train.metrics.acc} loss=${steps.train.metrics.nested.loss}" > report.txt
        outputs: [report.txt]
      deploy:
        run: echo deployed > deployed.txt
        outputs: [deployed.txt]
        when: ${steps.train.metrics.acc} > 0.5
"""


def test_when_true_runs_and_metrics_interpolate_into_commands(project):
    project.pipeline(METRICS)
    summary = project.run_json()
    assert summary["code"] == 0
    assert statuses(summary) == {"train": "ran", "report": "ran", "deploy": "ran"}
    assert project.read("report.txt") == "acc=0.9 loss=0.25\n"
    assert project.read("deployed.txt") == "deployed\n"
    assert "m.json" in summary["by_name"]["train"]["outputs"]
    # all cached again, and the plan can resolve metrics from the cache
    assert set(statuses(project.run_json()).values()) == {"cached"}
    assert not any(r["will_run"] for r in plan(project).values())


def test_when_false_skips_the_step_and_says_why(project):
    project.pipeline(METRICS)
    summary = project.run_json("-P", "acc=0.3")
    assert summary["code"] == 0 and summary["status"] == "success"
    assert statuses(summary) == {"train": "ran", "report": "ran", "deploy": "skipped"}
    reason = summary["by_name"]["deploy"]["reason"]
    assert "when" in reason and "false" in reason
    assert not (project.root / "deployed.txt").exists()
    assert project.read("report.txt") == "acc=0.3 loss=0.25\n"


def test_changed_metric_reruns_the_step_that_interpolates_it(project):
    project.pipeline(METRICS)
    project.run_json()
    summary = project.run_json("-P", "acc=0.7")
    assert statuses(summary) == {"train": "ran", "report": "ran", "deploy": "cached"}
    assert project.read("report.txt") == "acc=0.7 loss=0.25\n"


# flowml status ----------------------------------------------------------------------------

STATUS = """
    name: status
    steps:
      prep:
        run: cat raw.txt > prep.txt
        inputs: [raw.txt]
        outputs: [prep.txt]
      fit:
        run: cat prep.txt > fit.txt
        inputs: [prep.txt]
        outputs: [fit.txt]
      lone:
        run: echo lone > lone.txt
        outputs: [lone.txt]
"""


def test_status_explains_why_each_step_will_run(project):
    project.write("raw.txt", "1\n")
    project.pipeline(STATUS)

    fresh = plan(project)
    assert [(n, r["will_run"], r["reasons"]) for n, r in fresh.items()] == [
        ("prep", True, ["never ran"]), ("fit", True, ["never ran"]), ("lone", True, ["never ran"])]
    text = project.flowml("status")
    assert text.code == 0
    assert text.out.splitlines() == ["will run prep  (never ran)", "will run fit  (never ran)",
                                     "will run lone  (never ran)"]
    assert not (project.root / ".flowml" / "cache" / "objects").exists() or not any(
        (project.root / ".flowml" / "cache" / "objects").iterdir())
    assert not (project.root / "prep.txt").exists(), "status ran a step"

    project.run_json()
    after = plan(project)
    assert all(r["will_run"] is False and r["status"] == "cached" and r["reasons"] == [] for r in after.values())
    assert project.flowml("status").out.split() == ["cached", "prep", "cached", "fit", "cached", "lone"]

    project.write("raw.txt", "2\n")
    changed = plan(project)
    assert changed["prep"]["reasons"] == ["input raw.txt changed"]
    assert changed["fit"]["reasons"] == ["upstream prep will run"]
    assert changed["lone"]["will_run"] is False
    assert "will run prep  (input raw.txt changed)" in project.flowml("status").out


def test_status_selection_and_bad_pipeline(project):
    project.write("raw.txt", "1\n")
    project.pipeline(STATUS)
    assert list(plan(project, "--target", "fit")) == ["prep", "fit"]
    assert list(plan(project, "--from", "fit")) == ["fit"]
    project.pipeline(STATUS.replace("inputs: [raw.txt]", "inputs: [raw.txt]\n        bogus: 1"))
    res = project.flowml("status")
    assert res.code == 2 and "bogus" in res.err and "Traceback" not in res.err


# selection --------------------------------------------------------------------------------

SELECT = """
    name: select
    steps:
      a:
        run: echo a > a.txt
        outputs: [a.txt]
      b:
        run: cat a.txt > b.txt
        inputs: [a.txt]
        outputs: [b.txt]
      c:
        run: cat b.txt > c.txt
        inputs: [b.txt]
        outputs: [c.txt]
      d:
        run: cat c.txt > d.txt
        inputs: [c.txt]
        outputs: [d.txt]
      other:
        run: echo other > other.txt
        outputs: [other.txt]
"""


def test_target_runs_the_step_and_its_ancestors_only(project):
    project.pipeline(SELECT)
    summary = project.run_json("--target", "c")
    assert [s["name"] for s in summary["steps"]] == ["a", "b", "c"]
    assert ran(summary) == {"a", "b", "c"}
    assert not (project.root / "d.txt").exists() and not (project.root / "other.txt").exists()


def test_from_runs_the_step_and_its_descendants_only(project):
    project.pipeline(SELECT)
    project.run_json("--target", "b")
    project.write("a.txt", "changed by hand\n")  # a would be restored if it were selected
    summary = project.run_json("--from", "c")
    assert [s["name"] for s in summary["steps"]] == ["c", "d"]
    assert ran(summary) == {"c", "d"}
    assert project.read("a.txt") == "changed by hand\n", "--from touched a step outside the selection"
    assert not (project.root / "other.txt").exists()


def test_dry_run_runs_nothing_and_writes_no_outputs(project):
    project.pipeline(SELECT)
    res = project.flowml("run", "--dry-run")
    assert res.code == 0
    assert "will run a  (never ran)" in res.out
    assert not any((project.root / f"{n}.txt").exists() for n in ("a", "b", "c", "d", "other"))
    as_json = project.flowml("run", "--dry-run", "--json")
    assert all(r["will_run"] for r in as_json.json)
    assert not any((project.root / f"{n}.txt").exists() for n in ("a", "b", "c", "d", "other"))

    project.run_json()
    (project.root / "a.txt").unlink()
    project.flowml("run", "--dry-run")
    assert not (project.root / "a.txt").exists(), "--dry-run restored an output"


# the JSON summary and keys ----------------------------------------------------------------

KEYS = """
    name: keys
    params: {n: 3}
    steps:
      a:
        run: cat in.txt > a.txt; echo ${params.n} >> a.txt
        inputs: [in.txt]
        outputs: [a.txt]
      b:
        run: python step.py
        inputs: [a.txt]
        outputs: [models/]
"""


def _keys_project(root: Path) -> None:
    (root / "lib").mkdir(parents=True)
    (root / "in.txt").write_text("data\n")
    (root / "lib" / "__init__.py").write_text("")
    (root / "lib" / "h.py").write_text("N = 1\n")
    (root / "step.py").write_text(
        "import os\nfrom lib import h\nos.makedirs('models', exist_ok=True)\n"
        "open('models/m.txt', 'w').write(open('a.txt').read() * h.N)\n")
    (root / "pipeline.yaml").write_text(KEYS)


def test_summary_outputs_and_keys(project):
    _keys_project(project.root)
    summary = project.run_json()
    assert summary["pipeline"] == "keys" and summary["status"] == "success"
    a, b = summary["by_name"]["a"], summary["by_name"]["b"]
    for step in (a, b):
        assert HEX.match(step["cache_key"]), step
        assert isinstance(step["duration_s"], (int, float)) and step["duration_s"] >= 0
        assert all(HEX.match(d) for d in step["outputs"].values())
    assert list(a["outputs"]) == ["a.txt"]
    assert list(b["outputs"]) == ["models"]  # the folder, as declared (normalized)
    assert a["cache_key"] != b["cache_key"]
    # the digest of a.txt is a function of its bytes
    import xxhash

    assert a["outputs"]["a.txt"] == xxhash.xxh3_128_hexdigest(b"data\n3\n")


def test_cache_keys_do_not_depend_on_the_project_folder(tmp_path, project_class):
    """Two copies of one project in different folders get the same keys; a moved store keeps its hits."""
    keys = []
    for where in ("one/deep/er", "two"):
        root = tmp_path / where
        _keys_project(root)
        summary = project_class(root).run_json()
        assert summary["code"] == 0, summary["stderr"]
        keys.append({n: (s["cache_key"], s["outputs"]) for n, s in summary["by_name"].items()})
    assert keys[0] == keys[1]

    shutil.copytree(tmp_path / "two", tmp_path / "moved")
    summary = project_class(tmp_path / "moved").run_json()
    assert set(statuses(summary).values()) == {"cached"}, summary["steps"]
    assert {n: (s["cache_key"], s["outputs"]) for n, s in summary["by_name"].items()} == keys[0]


def test_an_upstream_output_deleted_outside_the_selection_is_named_as_missing(project):
    """With --from, an unselected upstream's deleted output is reported as missing, not as 'changed'."""
    project.pipeline("""\
        name: t
        steps:
          a: {run: echo a > a.txt, outputs: [a.txt]}
          b: {run: cat a.txt > b.txt, inputs: [a.txt], outputs: [b.txt]}
        """)
    assert project.run_json()["status"] == "success"
    (project.root / "a.txt").unlink()
    res = project.flowml("status", "--from", "b", "--json")
    assert res.code == 0
    assert res.json[0]["reasons"] == ["input a.txt missing (an output of a)"]


def test_the_json_summary_says_why_a_step_failed(project):
    project.pipeline("""\
        name: t
        steps:
          bad: {run: exit 3, retries: 1}
        """)
    summary = project.run_json()
    step = summary["by_name"]["bad"]
    assert (summary["code"], step["status"], step["error"], step["attempts"]) == (1, "failed", "exit code 3", 2)
    # the log is the step run's artifact, kept across both attempts
    assert step["logs"]["stderr"].endswith("/artifacts/logs/stderr.txt")
    assert "/.flowml/artifacts/" in step["logs"]["stderr"]


def test_code_is_tracked_after_cd_and_through_pythonpath(project):
    """`cd tools && python train.py` and `python -m pkg.mod` with PYTHONPATH=src find their helpers."""
    project.write("tools/helper.py", "X = 1\n")
    project.write("tools/train.py", "import helper\nopen('../o1.txt', 'w').write(str(helper.X))\n")
    project.write("src/mypkg/__init__.py", "")
    project.write("src/mypkg/util.py", "Y = 1\n")
    project.write("src/mypkg/train.py", "from mypkg import util\nopen('o2.txt', 'w').write(str(util.Y))\n")
    project.pipeline("""\
        name: t
        steps:
          a: {run: "cd tools && python train.py", outputs: [o1.txt]}
          b: {run: "python -m mypkg.train", env_vars: {PYTHONPATH: src}, outputs: [o2.txt]}
        """)
    assert project.run_json()["status"] == "success"
    project.write("tools/helper.py", "X = 2\n")
    project.write("src/mypkg/util.py", "Y = 2\n")
    plan = {s["name"]: s["reasons"] for s in project.flowml("status", "--json").json}
    assert plan == {"a": ["code tools/helper.py changed"], "b": ["code src/mypkg/util.py changed"]}
    project.run_json()
    assert (project.read("o1.txt"), project.read("o2.txt")) == ("2", "2")


def test_a_link_in_an_output_place_is_replaced_not_written_through(project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "notes.txt").write_text("important\n")
    project.pipeline("""\
        name: t
        params: {v: 1}
        steps:
          a: {run: "mkdir -p out && echo ${params.v} > out/f.txt", outputs: [out/]}
        """)
    assert project.run_json()["status"] == "success"
    assert project.run_json("-P", "v=2")["status"] == "success"
    shutil.rmtree(project.root / "out")
    (project.root / "out").symlink_to(outside)
    summary = project.run_json()
    assert summary["by_name"]["a"]["status"] == "cached"
    assert (outside / "notes.txt").read_text() == "important\n" and not (outside / "f.txt").exists()
    assert not (project.root / "out").is_symlink() and project.read("out/f.txt") == "1\n"
    (project.root / "out" / "sub").symlink_to(outside)
    assert project.run_json("-P", "v=2")["by_name"]["a"]["status"] == "cached"
    assert sorted(p.name for p in outside.iterdir()) == ["notes.txt"]
    assert not (project.root / "out" / "sub").exists()


def test_an_upstream_output_rewritten_while_a_step_runs_is_not_cached(project):
    """A second run rewrites a.txt while b (of the first run) reads it: b's entry must not be recorded."""
    project.pipeline("""\
        name: t
        params: {v: 1}
        steps:
          a: {run: "echo ${params.v} > a.txt", outputs: [a.txt]}
          b: {run: "touch started; while [ ! -f go ]; do sleep 0.05; done; cat a.txt > b.txt", inputs: [a.txt],
              outputs: [b.txt]}
        """)
    first = project.start("run", "--json", "-P", "v=1", stdout=subprocess.PIPE)
    project.wait_for("started")
    assert project.run_json("-P", "v=2", "--target", "a")["status"] == "success"
    (project.root / "go").touch()  # b finishes only now: the rewrite surely happened while it ran
    out, _ = first.communicate(timeout=30)
    assert any("changed while it ran" in w for w in json.loads(out)["warnings"])
    summary = project.run_json("-P", "v=1")
    assert summary["by_name"]["b"]["status"] == "ran", "no entry ties b.txt to the wrong a.txt"
    assert project.read("b.txt") == "1\n"


def test_status_reports_an_input_that_cannot_be_hashed(project):
    os.mkfifo(project.root / "pipe")
    project.pipeline("""\
        name: t
        steps:
          a: {run: "echo x > o.txt", inputs: [pipe], outputs: [o.txt]}
        """)
    res = project.flowml("status", "--json", timeout=30)
    assert res.code == 0
    assert res.json[0]["status"] == "failed" and "neither a regular file nor a folder" in res.json[0]["reasons"][0]
