"""``${...}`` interpolation: typed whole values, YAML-like splicing, shell variables and ``$${``."""

from __future__ import annotations

import pytest

from flowml.spec.expand import expand, node_name
from flowml.spec.interpolate import Ref, RefSyntaxError, format_value, parse_ref, refs_in, substitute
from flowml.spec.load import load_pipeline

VALUES = {"n": 3, "flag": True, "off": False, "lr": 0.1, "name": "wine", "alphas": [0.1, 1], "big": 1.5e-05}


def resolve(ref: Ref):
    if ref.namespace == "steps":
        return {"rmse": 0.25}[ref.name]
    return VALUES[ref.name]


# -- whole-value references keep the type ------------------------------------------------------

@pytest.mark.parametrize("name, expected", [("n", 3), ("flag", True), ("off", False), ("lr", 0.1),
                                            ("name", "wine"), ("alphas", [0.1, 1])])
def test_whole_value_keeps_type(name, expected):
    out = substitute(f"${{params.{name}}}", resolve)
    assert out == expected
    assert type(out) is type(expected)


def test_whole_value_with_spaces_inside_braces():
    assert substitute("${ params.n }", resolve) == 3


def test_whole_value_in_lists_and_dicts():
    assert substitute(["${params.n}", "x${params.n}"], resolve) == [3, "x3"]
    assert substitute({"A": "${params.flag}", "B": "v=${params.flag}"}, resolve) == {"A": True, "B": "v=true"}


def test_non_strings_pass_through():
    assert substitute(5, resolve) == 5
    assert substitute(None, resolve) is None
    assert substitute("no refs here", resolve) == "no refs here"


# -- splicing formats values like YAML ---------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("--flag ${params.flag}", "--flag true"),
    ("--flag ${params.off}", "--flag false"),
    ("--lr ${params.lr}", "--lr 0.1"),
    ("--n ${params.n}", "--n 3"),
    ("${params.name}-${params.n}", "wine-3"),
    ("--alphas ${params.alphas}", "--alphas [0.1,1]"),
    ("models/${params.lr}/", "models/0.1/"),
])
def test_splicing(text, expected):
    assert substitute(text, resolve) == expected


@pytest.mark.parametrize("value, text", [(True, "true"), (False, "false"), (None, "null"), (0.1, "0.1"), (2, "2"),
                                         (1.0, "1.0"), ("s", "s"), ([1, "a"], '[1,"a"]')])
def test_format_value(value, text):
    assert format_value(value) == text


# -- the shell's own ${VAR} and the $${ escape ------------------------------------------------

@pytest.mark.parametrize("text", ["${HOME}", "echo ${HOME}/x", "echo ${PATH:-/bin}", "cd ${TMPDIR} && ls"])
def test_shell_variables_are_left_alone(text):
    assert substitute(text, resolve) == text
    assert list(refs_in(text)) == []


def test_shell_variable_next_to_a_param():
    assert substitute("${HOME}/${params.name}", resolve) == "${HOME}/wine"


def test_double_dollar_is_a_literal():
    assert substitute("echo $${x}", resolve) == "echo ${x}"
    assert substitute("echo $${params.n} ${params.n}", resolve) == "echo ${params.n} 3"
    assert substitute("$${params.n}", resolve) == "${params.n}", "an escaped whole value is not a reference"
    assert list(refs_in("$${params.n}")) == []


def test_double_dollar_kept_while_steps_are_pending():
    """A first pass that keeps ``steps`` references keeps the escape, so the final pass unescapes once."""
    first = substitute("echo $${x} ${params.n} ${steps.ev.metrics.rmse}", resolve, keep=("steps",))
    assert first == "echo $${x} 3 ${steps.ev.metrics.rmse}"
    assert substitute(first, resolve) == "echo ${x} 3 0.25"


def test_steps_reference_kept_as_whole_value():
    assert substitute("${steps.ev.metrics.rmse}", resolve, keep=("steps",)) == "${steps.ev.metrics.rmse}"
    assert substitute("${steps.ev.metrics.rmse}", resolve) == 0.25


# -- parsing references ----------------------------------------------------------------------

def test_parse_ref_forms():
    assert parse_ref("params.alpha") == Ref("params", "alpha", text="params.alpha")
    assert parse_ref("matrix.max_depth").namespace == "matrix"
    ref = parse_ref("steps.evaluate.metrics.rmse")
    assert (ref.namespace, ref.step, ref.name) == ("steps", "evaluate", "rmse")
    ref = parse_ref("steps.train[alpha=0.1].metrics.acc")
    assert (ref.step, ref.name) == ("train[alpha=0.1]", "acc")
    assert parse_ref("HOME") is None


@pytest.mark.parametrize("inner, words", [
    ("param.alpha", ["unknown reference", "did you mean 'params'?"]),
    ("matrx.a", ["unknown reference", "did you mean 'matrix'?"]),
    ("params.a.b", ["malformed reference", "params.NAME"]),
    ("steps.a.rmse", ["malformed reference", "steps.STEP.metrics.NAME"]),
    ("matrix.", ["malformed reference", "matrix.NAME"]),
])
def test_parse_ref_rejects(inner, words):
    with pytest.raises(RefSyntaxError) as exc:
        parse_ref(inner)
    for word in words:
        assert word in str(exc.value)


def test_refs_in_nested_values():
    refs = list(refs_in({"a": ["${params.n}", "x ${matrix.k} ${HOME}"], "b": "${steps.s.metrics.m}"}))
    assert [(r.namespace, r.name) for r in refs] == [("params", "n"), ("matrix", "k"), ("steps", "m")]


# -- through a loaded pipeline: matrix values keep their type, commands get text ------------------

def test_matrix_value_from_param_keeps_type(project):
    path = project.pipeline("""\
        name: t
        params: {alpha: 0.5, depth: 3, flag: true}
        steps:
          train:
            matrix: {alpha: [0.1, "${params.alpha}"], depth: ["${params.depth}"]}
            run: python train.py --alpha ${matrix.alpha} --depth ${matrix.depth} --flag ${params.flag} --home ${HOME}
            outputs: ["models/${matrix.alpha}/"]
        """)
    nodes = expand(load_pipeline(str(path)))
    assert [n.name for n in nodes] == ["train[alpha=0.1,depth=3]", "train[alpha=0.5,depth=3]"]
    second = nodes[1]
    assert second.matrix == {"alpha": 0.5, "depth": 3}
    assert type(second.matrix["alpha"]) is float and type(second.matrix["depth"]) is int
    assert second.run == "python train.py --alpha 0.5 --depth 3 --flag true --home ${HOME}"
    assert second.outputs == ["models/0.5"]
    assert second.params_used == {"alpha": 0.5, "depth": 3, "flag": True}


def test_argv_run_keeps_whole_value_types(project):
    path = project.pipeline("""\
        name: t
        params: {n: 3}
        steps:
          a:
            run: [python, x.py, "${params.n}", "--n=${params.n}"]
        """)
    node = expand(load_pipeline(str(path)))[0]
    assert node.run[2:] == [3, "--n=3"] or node.run[2:] == ["3", "--n=3"]


def test_override_flows_into_commands_and_names(project):
    path = project.pipeline("""\
        name: t
        params: {alpha: 0.5}
        steps:
          train:
            matrix: {alpha: ["${params.alpha}"]}
            run: echo ${params.alpha}
        """)
    node = expand(load_pipeline(str(path), ["alpha=0.3"]))[0]
    assert node.name == "train[alpha=0.3]" == node_name("train", {"alpha": 0.3})
    assert node.run == "echo 0.3"


def test_a_spliced_value_is_substituted_once_even_if_it_looks_like_a_reference():
    """The first pass (steps refs kept) escapes a value's own ${...}; the final pass writes it as is."""
    params = {"msg": "${params.msg}x", "ref": "${a.b}"}

    def resolve(ref):
        return params[ref.name]

    first = substitute("echo ${params.msg} ${params.ref} ${steps.s.metrics.m}", resolve, keep=("steps",))
    final = substitute(first, lambda ref: 0.5)
    assert final == "echo ${params.msg}x ${a.b} 0.5"
    assert substitute(substitute("${params.ref}", resolve, keep=("steps",)), resolve) == "${a.b}"
