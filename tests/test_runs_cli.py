"""`flowml runs list|show|compare` and `flowml experiments list`, through the CLI."""

from __future__ import annotations

import pytest

SCRIPT = """\
import sys
import flowml
flowml.set_experiment(sys.argv[1])
for name, alpha, rmse in [("a", "0.1", 0.9), ("b", "0.5", 0.7), ("<img src=x onerror=alert(1)>", "0.5", 0.6)]:
    with flowml.start_run(run_name=name) as run:
        flowml.log_params({"alpha": alpha, "layers": 3})
        flowml.log_metric("rmse", rmse)
        flowml.set_tag("team", "fraud")
        flowml.log_text("hello", "notes/readme.txt")
        print(run.info.run_id)
"""


@pytest.fixture
def logged(project):
    project.write("log.py", SCRIPT)
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "log.py", "wine"], cwd=project.root, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return project, proc.stdout.split()


def test_runs_list_json_filters_and_orders_in_mlflow_shapes(logged):
    project, ids = logged
    res = project.flowml("runs", "list", "-e", "wine", "--filter", "params.alpha = '0.5'", "--order-by",
                         "metrics.rmse ASC", "--json")
    assert res.code == 0, res.err
    runs = res.json["runs"]
    assert [r["info"]["run_id"] for r in runs] == [ids[2], ids[1]]
    assert runs[0]["data"]["metrics"][0]["key"] == "rmse" and runs[0]["data"]["metrics"][0]["value"] == 0.6
    assert {"key": "alpha", "value": "0.5"} in runs[0]["data"]["params"]


def test_runs_list_table_prints_names_as_written(logged):
    project, ids = logged
    res = project.flowml("runs", "list", "--experiment", "wine")
    assert res.code == 0, res.err
    for run_id in ids:
        assert run_id in res.out
    assert "<img src=x onerror=alert(1)>" in res.out  # no markup interpretation, no truncation
    assert "rmse" in res.out


def test_a_malformed_filter_is_bad_input_pointing_at_the_token(logged):
    project, _ = logged
    res = project.flowml("runs", "list", "--filter", "metrics.rmse < abc")
    assert res.code == 2
    assert "position 15" in res.err and "abc" in res.err and "Traceback" not in res.err


def test_unknown_experiment_and_run_are_bad_input(logged):
    project, _ = logged
    res = project.flowml("runs", "list", "-e", "wien")
    assert res.code == 2 and "no experiment named 'wien'; did you mean 'wine'?" in res.err
    res = project.flowml("runs", "show", "0" * 32)
    assert res.code == 2 and f"no run with id '{'0' * 32}'" in res.err and "Traceback" not in res.err


def test_runs_show_lists_params_metrics_tags_artifacts(logged):
    project, ids = logged
    res = project.flowml("runs", "show", ids[0], "--json")
    assert res.code == 0, res.err
    shown = res.json
    assert shown["info"]["run_name"] == "a"
    assert shown["artifacts"] == ["notes/readme.txt"]
    assert shown["children"] == []
    text = project.flowml("runs", "show", ids[0]).out
    for expected in ("alpha", "0.1", "rmse", "0.9", "team", "fraud", "notes/readme.txt", ids[0]):
        assert expected in text


def test_runs_compare_marks_what_differs(logged):
    project, ids = logged
    res = project.flowml("runs", "compare", ids[0], ids[1], "--json")
    assert res.code == 0, res.err
    data = res.json
    assert data["params"]["alpha"] == {ids[0]: "0.1", ids[1]: "0.5"}
    assert data["different"] == ["params.alpha", "metrics.rmse"]
    text = project.flowml("runs", "compare", ids[0], ids[1]).out
    marked = [line for line in text.splitlines() if line.strip().startswith("*")]
    assert len(marked) == 2 and any("params.alpha" in line for line in marked)
    assert not any("params.layers" in line for line in marked)


def test_experiments_list_counts_runs(logged):
    project, _ = logged
    res = project.flowml("experiments", "list", "--json")
    assert res.code == 0, res.err
    by_name = {e["name"]: e for e in res.json["experiments"]}
    assert by_name["wine"]["run_count"] == 3 and by_name["Default"]["run_count"] == 0
    assert "wine" in project.flowml("experiments", "list").out


def test_experiments_list_filters_and_orders(logged):
    project, _ = logged
    project.write("more.py", """\
        import flowml
        client = flowml.FlowmlClient()
        for name in ("water", "Whisky", "beer"):
            client.create_experiment(name, tags={"team": "fraud" if name == "water" else "nlp"})
        """)
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "more.py"], cwd=project.root, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    res = project.flowml("experiments", "list", "--filter", "name LIKE 'w%'", "--json")
    assert res.code == 0, res.err
    assert sorted(e["name"] for e in res.json["experiments"]) == ["water", "wine"]  # LIKE is case-sensitive
    res = project.flowml("experiments", "list", "--filter", "name ILIKE 'w%'", "--order-by", "name DESC", "--json")
    assert [e["name"] for e in res.json["experiments"]] == ["wine", "water", "Whisky"]
    assert res.json["experiments"][0]["run_count"] == 3
    res = project.flowml("experiments", "list", "--filter", "tags.team = 'fraud'", "--order-by", "experiment_id")
    assert res.code == 0, res.err
    assert "water" in res.out and "wine" not in res.out and "beer" not in res.out
    bad = project.flowml("experiments", "list", "--filter", "metrics.rmse < 1")
    assert bad.code == 2 and "position 0" in bad.err and "unknown prefix 'metrics'" in bad.err
    assert "Traceback" not in bad.err
    bad = project.flowml("experiments", "list", "--order-by", "tags.team")
    assert bad.code == 2 and "cannot be ordered on" in bad.err


def test_pipeline_runs_show_as_a_tree_with_cache_hits(project):
    project.pipeline("""\
        name: p
        steps:
          one: {run: "echo 1 > one.txt", outputs: [one.txt]}
          two: {run: "cat one.txt > two.txt", inputs: [one.txt], outputs: [two.txt]}
        """)
    first = project.run_json()
    (project.root / "two.txt").unlink()
    second = project.run_json()
    shown = project.flowml("runs", "show", second["run_id"], "--json").json
    children = {c["info"]["run_name"]: c for c in shown["children"]}
    tags = {k: {t["key"]: t["value"] for t in c["data"]["tags"]} for k, c in children.items()}
    assert tags["two"]["flowml.cache_hit"] == "true"
    assert tags["two"]["flowml.cache_source_run"] == first["by_name"]["two"]["run_id"]
    lines = project.flowml("runs", "list", "-e", "p").out.splitlines()
    parent_line = next(i for i, line in enumerate(lines) if second["run_id"] in line)
    assert "  one" in lines[parent_line + 1] and "hit" in lines[parent_line + 1]


def test_runs_list_pages_with_the_token(logged):
    project, ids = logged
    first = project.flowml("runs", "list", "-e", "wine", "-n", "2", "--json").json
    rest = project.flowml("runs", "list", "-e", "wine", "-n", "2", "--page-token", first["next_page_token"], "--json").json
    seen = [r["info"]["run_id"] for r in first["runs"] + rest["runs"]]
    assert sorted(seen) == sorted(ids) and rest["next_page_token"] is None
    bad = project.flowml("runs", "list", "--page-token", "nonsense")
    assert bad.code == 2 and "invalid page_token" in bad.err
