"""The DAG: edges from data (folders cover what is under them) and needs, matrix fan-out,
selection, and the text / DOT / Mermaid drawings through the CLI."""

from __future__ import annotations

import re

import pytest

from flowml.dag import build_dag, compile_plan, render_dot, render_mermaid, render_text, select
from flowml.errors import SpecError
from flowml.spec.load import load_pipeline


def dag_of(project, text: str, overrides=()):
    return build_dag(load_pipeline(str(project.pipeline(text)), list(overrides)))


def edges(dag) -> set[tuple[str, str]]:
    return set(dag.graph.edges)


# -- edges from data ------------------------------------------------------------------------------

def test_file_edges_and_independent_steps(project):
    project.write("data/raw.csv", "x\n")
    dag = dag_of(project, """\
        name: t
        steps:
          prepare:
            run: echo
            inputs: [data/raw.csv]
            outputs: [data/train.csv, data/test.csv]
          train:
            run: echo
            inputs: [data/train.csv]
            outputs: [model.pkl]
          evaluate:
            run: echo
            inputs: [model.pkl, data/test.csv]
            metrics: metrics.json
          lint:
            run: echo
        """)
    assert edges(dag) == {("prepare", "train"), ("train", "evaluate"), ("prepare", "evaluate")}
    assert dag.order() == ["prepare", "train", "evaluate", "lint"]
    assert dag.producers["data/train.csv"] == "prepare"
    assert dag.producers["metrics.json"] == "evaluate", "the metrics file is an output"
    assert "data/raw.csv" not in dag.producers


def test_folder_output_covers_files_under_it(project):
    dag = dag_of(project, """\
        name: t
        steps:
          fetch:
            run: echo
            outputs: [data/]
          train:
            run: echo
            inputs: [data/sub/train.csv]
        """)
    assert edges(dag) == {("fetch", "train")}
    assert compile_plan(dag).producers["train"] == {"data/sub/train.csv": "fetch"}


def test_folder_input_waits_for_writers_under_it(project):
    dag = dag_of(project, """\
        name: t
        steps:
          a:
            run: echo
            outputs: [models/a.pkl]
          b:
            run: echo
            outputs: [models/b/]
          other:
            run: echo
            outputs: [models2/c.pkl, models.txt]
          report:
            run: echo
            inputs: [models/]
        """)
    assert edges(dag) == {("a", "report"), ("b", "report")}, "models2/ and models.txt are not under models/"
    assert compile_plan(dag).producers["report"] == {"models": "a, b"}


def test_prefix_of_a_name_is_not_a_folder(project):
    project.write("data/train.csv.bak", "")
    dag = dag_of(project, """\
        name: t
        steps:
          a:
            run: echo
            outputs: [data/train.csv]
          b:
            run: echo
            inputs: [data/train.csv.bak]
            outputs: [data/train]
        """)
    assert edges(dag) == set()


def test_paths_are_normalized(project):
    dag = dag_of(project, """\
        name: t
        steps:
          a:
            run: echo
            outputs: [./out/]
          b:
            run: echo
            inputs: [out/../out/x.txt]
        """)
    assert edges(dag) == {("a", "b")}
    assert dag.nodes["a"].outputs == ["out"] and dag.nodes["b"].inputs == ["out/x.txt"]


def test_needs_edges(project):
    dag = dag_of(project, """\
        name: t
        steps:
          setup:
            run: echo
          a:
            run: echo
            needs: [setup]
          b:
            run: echo
            needs: [setup, a]
        """)
    assert edges(dag) == {("setup", "a"), ("setup", "b"), ("a", "b")}


def test_steps_reference_adds_an_edge(project):
    dag = dag_of(project, """\
        name: t
        steps:
          evaluate:
            run: echo
            metrics: m.json
          register:
            run: echo ${steps.evaluate.metrics.rmse}
            when: ${steps.evaluate.metrics.rmse} < 0.8
        """)
    assert edges(dag) == {("evaluate", "register")}


def test_input_that_exists_needs_no_writer(project):
    project.write("data/raw.csv", "x\n")
    dag = dag_of(project, """\
        name: t
        steps:
          a:
            run: echo
            inputs: [data/raw.csv, data/]
        """)
    assert list(dag.nodes) == ["a"]


def test_missing_input_suggests_an_output(project):
    with pytest.raises(SpecError) as exc:
        dag_of(project, """\
            name: t
            steps:
              prepare:
                run: echo
                outputs: [data/train.csv]
              train:
                run: echo
                inputs: [data/trian.csv]
            """)
    [problem] = exc.value.problems
    assert (problem.line, problem.column, problem.field) == (8, 14, "steps.train.inputs[0]")
    assert "did you mean 'data/train.csv'?" in problem.message


@pytest.mark.parametrize("outputs, words", [
    (("out.txt", "out.txt"), ["steps 'a' and 'b' both write 'out.txt'"]),
    (("models/", "models/x/y.txt"), ["'models/x/y.txt' written by 'b' lies inside 'models' written by 'a'"]),
    (("models/x/y.txt", "models/"), ["'models'", "'a'", "'b'"]),
])
def test_overlapping_outputs(project, outputs, words):
    with pytest.raises(SpecError) as exc:
        dag_of(project, f"""\
            name: t
            steps:
              a:
                run: echo
                outputs: ["{outputs[0]}"]
              b:
                run: echo
                outputs: ["{outputs[1]}"]
            """)
    for word in words:
        assert word in str(exc.value)


@pytest.mark.parametrize("output", ["../outside.txt", ".flowml/x", "."])
def test_outputs_must_stay_in_the_project(project, output):
    with pytest.raises(SpecError) as exc:
        dag_of(project, f"""\
            name: t
            steps:
              a:
                run: echo
                outputs: ["{output}"]
            """)
    assert "steps.a.outputs[0]" in str(exc.value)


def test_cycle_names_its_path(project):
    with pytest.raises(SpecError) as exc:
        dag_of(project, """\
            name: t
            steps:
              a:
                run: echo
                inputs: [c.txt]
                outputs: [a.txt]
              b:
                run: echo
                inputs: [a.txt]
                outputs: [b.txt]
              c:
                run: echo
                inputs: [b.txt]
                outputs: [c.txt]
            """)
    text = str(exc.value)
    assert re.search(r"cycle: (a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c)", text), text


def test_a_step_reading_inside_its_own_output_is_refused(project):
    """Outputs are cleared before a step runs, so such an input would be deleted under it."""
    with pytest.raises(SpecError, match=r"pipeline.yaml:5:14: steps.a.inputs\[0\]: input 'state/x.json' lies inside "
                                        "this step's own output 'state'"):
        dag_of(project, """\
            name: t
            steps:
              a:
                run: echo
                inputs: [state/x.json]
                outputs: [state/]
            """)


def test_a_step_reading_a_folder_that_holds_its_output_is_not_a_cycle(project):
    project.write("models/old.txt", "")
    dag = dag_of(project, """\
        name: t
        steps:
          a:
            run: echo
            inputs: [models/]
            outputs: [models/best/]
        """)
    assert edges(dag) == set()


# -- matrix fan-out -----------------------------------------------------------------------------------

MATRIX = """\
name: t
params: {alpha: 0.1}
steps:
  prepare:
    run: echo
    outputs: [data/train.csv]
  train:
    matrix: {alpha: [0.1, "${params.alpha}", 1.0]}
    run: python train.py --alpha ${matrix.alpha}
    inputs: [data/train.csv]
    outputs: ["models/${matrix.alpha}/"]
  evaluate:
    run: echo
    inputs: [models/]
    outputs: [report.txt]
"""


def test_matrix_fans_out_and_duplicates_collapse(project):
    dag = dag_of(project, MATRIX)
    assert list(dag.nodes) == ["prepare", "train[alpha=0.1]", "train[alpha=1.0]", "evaluate"]
    assert dag.nodes["train[alpha=1.0]"].run == "python train.py --alpha 1.0"
    assert dag.nodes["train[alpha=1.0]"].outputs == ["models/1.0"]
    assert dag.steps_of("train") == ["train[alpha=0.1]", "train[alpha=1.0]"]


def test_matrix_override_changes_the_nodes(project):
    dag = dag_of(project, MATRIX, ["alpha=0.5"])
    assert list(dag.nodes) == ["prepare", "train[alpha=0.1]", "train[alpha=0.5]", "train[alpha=1.0]", "evaluate"]


def test_downstream_of_a_matrix_waits_for_every_node(project):
    dag = dag_of(project, MATRIX, ["alpha=0.5"])
    trains = dag.steps_of("train")
    assert set(dag.graph.predecessors("evaluate")) == set(trains)
    for t in trains:
        assert set(dag.graph.predecessors(t)) == {"prepare"}
    order = dag.order()
    assert all(order.index(t) < order.index("evaluate") for t in trains)


def test_two_axis_matrix_names_and_product(project):
    dag = dag_of(project, """\
        name: t
        steps:
          train:
            matrix: {a: [1, 2], b: [x, "y"]}
            run: echo ${matrix.a} ${matrix.b}
            outputs: ["out/${matrix.a}-${matrix.b}.txt"]
          after:
            run: echo
            needs: [train]
        """)
    names = [n for n in dag.nodes if n.startswith("train")]
    assert names == ["train[a=1,b=x]", "train[a=1,b=y]", "train[a=2,b=x]", "train[a=2,b=y]"]
    assert dag.nodes["train[a=2,b=y]"].matrix == {"a": 2, "b": "y"}
    assert set(dag.graph.predecessors("after")) == set(names), "needs: on a matrix step waits for all its nodes"


def test_matrix_nodes_writing_one_path_clash(project):
    with pytest.raises(SpecError) as exc:
        dag_of(project, """\
            name: t
            steps:
              train:
                matrix: {a: [1, 2]}
                run: echo ${matrix.a}
                outputs: [model.pkl]
            """)
    assert "'train[a=1]'" in str(exc.value) and "'train[a=2]'" in str(exc.value)


def test_matrix_bools_and_strings_in_names(project):
    dag = dag_of(project, """\
        name: t
        steps:
          s:
            matrix: {flag: [true, false], k: [a]}
            run: echo ${matrix.flag}
        """)
    assert list(dag.nodes) == ["s[flag=true,k=a]", "s[flag=false,k=a]"]
    assert dag.nodes["s[flag=true,k=a]"].run == "echo true"


def test_metrics_reference_to_one_matrix_node(project):
    dag = dag_of(project, """\
        name: t
        steps:
          train:
            matrix: {a: [1, 2]}
            run: echo
            outputs: ["m/${matrix.a}/"]
            metrics: "m/${matrix.a}/metrics.json"
          gate:
            run: echo
            when: ${steps.train[a=2].metrics.acc} > 0.5
        """)
    assert set(dag.graph.predecessors("gate")) == {"train[a=2]"}


def test_metrics_reference_to_a_whole_matrix_is_ambiguous(project):
    with pytest.raises(SpecError) as exc:
        dag_of(project, """\
            name: t
            steps:
              train:
                matrix: {a: [1, 2]}
                run: echo
                outputs: ["m/${matrix.a}/"]
                metrics: "m/${matrix.a}/metrics.json"
              gate:
                run: echo
                when: ${steps.train.metrics.acc} > 0.5
            """)
    assert "must name one node" in str(exc.value) and "train[a=1]" in str(exc.value)


# -- selection ------------------------------------------------------------------------------------

SELECT = """\
name: t
steps:
  a:
    run: echo
    outputs: [a.txt]
  b:
    run: echo
    inputs: [a.txt]
    outputs: [b.txt]
  c:
    run: echo
    inputs: [b.txt]
    outputs: [c.txt]
  side:
    run: echo
    inputs: [a.txt]
    outputs: [side.txt]
  lone:
    run: echo
"""


@pytest.mark.parametrize("targets, from_, expected", [
    ((), (), ["a", "b", "c", "side", "lone"]),
    (("b",), (), ["a", "b"]),
    (("c",), (), ["a", "b", "c"]),
    (("c", "side"), (), ["a", "b", "c", "side"]),
    (("lone",), (), ["lone"]),
    ((), ("b",), ["b", "c"]),
    ((), ("a",), ["a", "b", "c", "side"]),
    (("c",), ("b",), ["b", "c"]),
    (("side",), ("b",), []),
])
def test_select(project, targets, from_, expected):
    dag = dag_of(project, SELECT)
    assert select(dag, targets, from_) == expected


def test_select_matrix_by_step_or_node(project):
    dag = dag_of(project, MATRIX)
    assert select(dag, ["train"]) == ["prepare", "train[alpha=0.1]", "train[alpha=1.0]"]
    assert select(dag, ["train[alpha=1.0]"]) == ["prepare", "train[alpha=1.0]"]
    assert select(dag, (), ["train[alpha=0.1]"]) == ["train[alpha=0.1]", "evaluate"]


@pytest.mark.parametrize("kwargs, option", [({"targets": ["bb"]}, "--target"), ({"from_": ["bb"]}, "--from")])
def test_select_unknown(project, kwargs, option):
    dag = dag_of(project, SELECT)
    with pytest.raises(SpecError) as exc:
        select(dag, **kwargs)
    text = str(exc.value)
    assert option in text and "unknown step 'bb'" in text and "did you mean 'b'?" in text


# -- drawings -------------------------------------------------------------------------------------

def test_render_text_lists_every_node_with_its_upstream(project):
    dag = dag_of(project, MATRIX)
    assert render_text(dag).splitlines() == [
        "prepare",
        "train[alpha=0.1]  <- prepare",
        "train[alpha=1.0]  <- prepare",
        "evaluate  <- train[alpha=0.1], train[alpha=1.0]",
    ]


def _dot_edges(text: str) -> set[tuple[str, str]]:
    return set(re.findall(r'^\s*"((?:[^"\\]|\\.)*)"\s*->\s*"((?:[^"\\]|\\.)*)"\s*;?\s*$', text, re.M))


def _mermaid_edges(text: str) -> set[tuple[str, str]]:
    labels = dict(re.findall(r'^\s*(\w+)\["(.*)"\]\s*$', text, re.M))
    found = re.findall(r"^\s*(\w+)\s*-->\s*(\w+)\s*$", text, re.M)
    return {(labels[a].replace("#quot;", '"'), labels[b].replace("#quot;", '"')) for a, b in found}


def test_dag_command_text_dot_and_mermaid(project):
    project.pipeline(MATRIX)
    expected = {("prepare", "train[alpha=0.1]"), ("prepare", "train[alpha=0.5]"), ("prepare", "train[alpha=1.0]"),
                ("train[alpha=0.1]", "evaluate"), ("train[alpha=0.5]", "evaluate"), ("train[alpha=1.0]", "evaluate")}

    text = project.flowml("dag", "-P", "alpha=0.5")
    assert text.code == 0, text.err
    lines = text.out.splitlines()
    assert [line.split("  <- ")[0] for line in lines] == [
        "prepare", "train[alpha=0.1]", "train[alpha=0.5]", "train[alpha=1.0]", "evaluate"]
    assert lines[-1] == "evaluate  <- train[alpha=0.1], train[alpha=0.5], train[alpha=1.0]"

    dot = project.flowml("dag", "--dot", "-P", "alpha=0.5")
    assert dot.code == 0, dot.err
    body = dot.out.strip()
    assert re.match(r'^(strict\s+)?digraph\s+("[^"]*"|\w+)?\s*\{', body), body
    assert body.endswith("}") and body.count("{") == body.count("}")
    assert _dot_edges(body) == expected
    for node in ("prepare", "train[alpha=0.5]", "evaluate"):
        assert f'"{node}"' in body

    mermaid = project.flowml("dag", "--mermaid", "-P", "alpha=0.5")
    assert mermaid.code == 0, mermaid.err
    first, *rest = mermaid.out.strip().splitlines()
    assert re.match(r"^(flowchart|graph) (TD|TB|LR|BT|RL)$", first)
    assert _mermaid_edges(mermaid.out) == expected
    assert not (project.root / ".flowml").exists(), "flowml dag writes nothing"


def test_dag_command_on_a_folder_and_with_needs(project):
    project.write("sub/pipeline.yaml", """\
        name: t
        steps:
          a:
            run: echo
          b:
            run: echo
            needs: [a]
        """)
    res = project.flowml("dag", "sub", "--mermaid")
    assert res.code == 0, res.err
    assert _mermaid_edges(res.out) == {("a", "b")}


QUOTED_NAME = """\
    name: t
    steps:
      s:
        matrix: {q: ['a"b']}
        run: echo
      t:
        run: echo
        needs: [s]
    """


def test_render_mermaid_escapes_quotes(project):
    out = render_mermaid(dag_of(project, QUOTED_NAME))
    assert '"s[q=a"b]"' not in out
    assert _mermaid_edges(out) == {('s[q=a"b]', "t")}


def test_render_dot_escapes_quotes(project):
    assert _dot_edges(render_dot(dag_of(project, QUOTED_NAME))) == {('s[q=a\\"b]', "t")}


def test_matrix_downstream_runs_after_all_nodes(project):
    """Through a real run: the step reading models/ sees every matrix node's output."""
    project.pipeline("""\
        name: t
        steps:
          train:
            matrix: {k: [1, 2, 3]}
            run: mkdir -p models/m${matrix.k} && echo ${matrix.k} > models/m${matrix.k}/w.txt
            outputs: ["models/m${matrix.k}/"]
          evaluate:
            run: cat models/m1/w.txt models/m2/w.txt models/m3/w.txt > report.txt
            inputs: [models/]
            outputs: [report.txt]
        """)
    summary = project.run_json("-j", "3")
    assert summary["code"] == 0, summary["stderr"]
    names = [s["name"] for s in summary["steps"]]
    assert set(names) == {"train[k=1]", "train[k=2]", "train[k=3]", "evaluate"}
    assert project.read("report.txt").split() == ["1", "2", "3"]
