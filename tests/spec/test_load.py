"""Loading pipeline.yaml: -P coercion, durations, positions, and the validated result."""

from __future__ import annotations

import pytest

from flowml.errors import SpecError, did_you_mean
from flowml.spec.load import apply_overrides, coerce, load_pipeline
from flowml.spec.models import parse_duration
from flowml.spec.yamlsource import dotted, load_yaml

# -- -P coercion, typed by the default ---------------------------------------------------------

@pytest.mark.parametrize("text, default, expected", [
    ("true", False, True), ("false", True, False), ("yes", False, True), ("no", True, False),
    ("1", False, True), ("0", True, False), ("ON", False, True), ("Off", True, False),
    ("3", 1, 3), ("-7", 1, -7), (" 42 ", 0, 42),
    ("0.3", 0.5, 0.3), ("1", 0.5, 1.0), ("1e-3", 0.5, 0.001),
    ("hello", "x", "hello"), ("3", "x", "3"), ("true", "x", "true"), ("", "x", ""),
    ("[1, 2]", [0], [1, 2]), ("[a, b]", ["x"], ["a", "b"]), ("[]", [1], []),
])
def test_coerce(text, default, expected):
    out = coerce(text, default)
    assert out == expected
    assert type(out) is type(expected)


@pytest.mark.parametrize("text, default, words", [
    ("maybe", True, "expected true or false"),
    ("abc", 1, "expected an integer"),
    ("1.5", 1, "expected an integer"),
    ("high", 0.5, "expected a number"),
    ("1", [1], "expected a list"),
    ("[1, 2", [1], "expected a list"),
])
def test_coerce_rejects(text, default, words):
    with pytest.raises(ValueError) as exc:
        coerce(text, default)
    assert words in str(exc.value)
    assert repr(text) in str(exc.value)


def test_apply_overrides_types_and_keeps_others():
    defaults = {"n": 1, "alpha": 0.5, "flag": False, "name": "a", "xs": [1]}
    out = apply_overrides(defaults, ["n=5", "flag=true", "name=b=c", "xs=[2, 3]"])
    assert out == {"n": 5, "alpha": 0.5, "flag": True, "name": "b=c", "xs": [2, 3]}
    assert defaults["n"] == 1, "the defaults are not modified"


def test_apply_overrides_reports_every_problem():
    with pytest.raises(SpecError) as exc:
        apply_overrides({"n": 1, "alpha": 0.5}, ["n=abc", "alpah=1", "oops"])
    text = str(exc.value)
    assert exc.value.exit_code == 2
    assert "command line: -P n=abc: expected an integer (the default is 1), got 'abc'" in text
    assert "-P alpah=1: unknown param 'alpah'; did you mean 'alpha'?" in text
    assert "-P oops: expected -P key=value" in text
    assert len(exc.value.problems) == 3


# -- durations ------------------------------------------------------------------------------

@pytest.mark.parametrize("value, seconds", [
    (90, 90.0), (2.5, 2.5), ("30s", 30.0), ("10m", 600.0), ("1h30m", 5400.0), ("1h", 3600.0),
    ("500ms", 0.5), ("1m30s", 90.0), ("1.5h", 5400.0), ("2m500ms", 120.5),
])
def test_parse_duration(value, seconds):
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["10 minutes", "soon", "", "0s", 0, -5, True, "10x", "m", [1], "1d"])
def test_parse_duration_rejects(value):
    with pytest.raises(ValueError) as exc:
        parse_duration(value)
    assert "expected a positive duration" in str(exc.value)


def test_timeout_is_seconds_on_the_step(project):
    path = project.pipeline("""\
        name: t
        steps:
          a: {run: echo, timeout: 1h30m}
          b: {run: echo, timeout: 90}
          c: {run: echo, timeout: 500ms}
          d: {run: echo}
        """)
    steps = load_pipeline(str(path)).spec.steps
    assert [steps[s].timeout for s in "abcd"] == [5400.0, 90.0, 0.5, None]


# -- yaml with positions ----------------------------------------------------------------------

def test_source_map_positions():
    data, smap = load_yaml("name: t\nsteps:\n  a:\n    run: echo\n    outputs: [x, y]\n", "p.yaml")
    assert data == {"name": "t", "steps": {"a": {"run": "echo", "outputs": ["x", "y"]}}}
    assert smap.locate(("steps", "a", "run")) == (4, 10)
    assert smap.locate(("steps", "a", "run"), key=True) == (4, 5)
    assert smap.locate(("steps", "a", "outputs", 1)) == (5, 18)
    assert smap.locate(("steps", "a", "nope")) == (4, 5), "an unknown path falls back to its parent"
    assert str(smap.problem(("steps", "a", "outputs", 1), "bad")) == "p.yaml:5:18: steps.a.outputs[1]: bad"


def test_dotted():
    assert dotted(("steps", "train", "outputs", 0)) == "steps.train.outputs[0]"
    assert dotted(()) == ""


def test_yaml_syntax_error_has_position():
    with pytest.raises(SpecError) as exc:
        load_yaml("a: 1\nb: c: d\n", "p.yaml")
    assert str(exc.value).startswith("p.yaml:2:")
    assert "invalid YAML" in str(exc.value)


def test_duplicate_key_is_an_error():
    with pytest.raises(SpecError) as exc:
        load_yaml("a: 1\nb: 2\na: 3\n", "p.yaml")
    assert "p.yaml:3:1: a: duplicate key 'a'" in str(exc.value)


def test_merge_keys_are_rejected():
    with pytest.raises(SpecError) as exc:
        load_yaml("base: &b {x: 1}\nother:\n  <<: *b\n", "p.yaml")
    assert "merge keys" in str(exc.value)


# -- load_pipeline ------------------------------------------------------------------------------

def test_load_pipeline_accepts_a_folder_and_applies_overrides(project):
    project.pipeline("""\
        name: wine
        params: {alpha: 0.5, n: 10, flag: false}
        environments:
          train: {python: {requirements: requirements.txt}}
        steps:
          prepare:
            run: [python, prepare.py, 3]
            outputs: [data/train.csv]
          train:
            run: python train.py --alpha ${params.alpha}
            env: train
            inputs: [data/train.csv]
            cache: {version: 2}
            retries: 2
          report:
            run: echo
            cache: false
        """)
    loaded = load_pipeline(str(project.root), ["alpha=0.3", "flag=yes"])
    assert loaded.path == str(project.root / "pipeline.yaml")
    assert loaded.root == str(project.root)
    assert loaded.params == {"alpha": 0.3, "n": 10, "flag": True}
    assert loaded.spec.params["alpha"] == 0.5, "the spec keeps the defaults"
    steps = loaded.spec.steps
    assert list(steps) == ["prepare", "train", "report"]
    assert steps["prepare"].run == ["python", "prepare.py", "3"]
    assert steps["train"].cache_version == 2 and steps["train"].retries == 2
    assert steps["report"].cache_version is None and steps["prepare"].cache_version == 0
    assert loaded.spec.environments["train"].kind == "python"


def test_load_pipeline_errors_are_spec_errors(project):
    path = project.pipeline("""\
        name: t
        steps:
          a:
            run: echo
            retries: -1
        """)
    with pytest.raises(SpecError) as exc:
        load_pipeline(str(path))
    assert exc.value.exit_code == 2
    [problem] = exc.value.problems
    assert (problem.line, problem.column, problem.field) == (5, 14, "steps.a.retries")


def test_load_pipeline_needs_itself(project):
    path = project.pipeline("""\
        name: t
        steps:
          a:
            run: echo
            needs: [a]
        """)
    with pytest.raises(SpecError) as exc:
        load_pipeline(str(path))
    assert "cannot need itself" in str(exc.value)


def test_steps_reference_only_in_runtime_fields(project):
    path = project.pipeline("""\
        name: t
        steps:
          a:
            run: echo
            metrics: m.json
          b:
            run: echo
            inputs: ["${steps.a.metrics.m}"]
        """)
    with pytest.raises(SpecError) as exc:
        load_pipeline(str(path))
    assert "steps.b.inputs" in str(exc.value) and "can only be used in run, env_vars or when" in str(exc.value)


def test_empty_steps_is_an_error(project):
    path = project.pipeline("name: t\nsteps: {}\n")
    with pytest.raises(SpecError) as exc:
        load_pipeline(str(path))
    assert "steps" in str(exc.value)


def test_did_you_mean():
    assert did_you_mean("retrys", ["retries", "run"]) == "; did you mean 'retries'?"
    assert did_you_mean("zzz", ["retries", "run"]) == ""
