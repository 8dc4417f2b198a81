"""Bad input, through the CLI: one message with file:line:column, the field path and what was
expected (with a did-you-mean where a name is misspelt), exit code 2, no traceback, and
nothing written (no ``.flowml/`` store, no outputs).
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest


@dataclass
class Case:
    id: str
    yaml: str | None  # None: no pipeline file at all
    expect: tuple = ()  # substrings of stderr; a tuple inside means "any of these"
    where: str | None = None  # "pipeline.yaml:LINE:COL" (or "pipeline.yaml" when no line applies)
    field: str | None = None  # dotted field path shown in the message
    args: tuple = ()  # extra CLI arguments after the command
    command: str = "run"
    files: dict = dataclasses.field(default_factory=dict)  # extra files of the project


PARAMS_PIPELINE = """\
name: t
params: {n: 1, alpha: 0.5}
steps:
  a:
    run: echo ${params.n}
"""

CASES = [
    # -- YAML itself ------------------------------------------------------------------------
    Case("yaml-syntax", """\
name: t
steps:
  a:
    run: echo: hi
""", ("invalid YAML", "mapping values are not allowed"), "pipeline.yaml:4:14"),
    Case("duplicate-key", """\
name: t
steps:
  a:
    run: echo hi
  a:
    run: echo ho
""", ("duplicate key 'a'",), "pipeline.yaml:5:3", "steps.a"),
    Case("duplicate-nested-key", """\
name: t
steps:
  a:
    run: echo hi
    outputs: [x]
    outputs: [y]
""", ("duplicate key 'outputs'",), "pipeline.yaml:6:5", "steps.a.outputs"),
    Case("yaml-unknown-tag", """\
name: t
steps:
  a:
    run: !foo echo
""", ("!foo",), "pipeline.yaml:4:10"),
    Case("yaml-python-tag", """\
name: t
steps:
  a:
    run: !!python/name:os.system
""", ("python/name:os.system",), "pipeline.yaml:4:10"),
    Case("yaml-bad-int-tag", """\
name: t
steps:
  a:
    run: echo
    retries: !!int abc
""", ("abc",), "pipeline.yaml:5:14"),
    Case("yaml-control-character", "name: t\x00\nsteps: {}\n", ("control characters",), "pipeline.yaml"),
    Case("missing-file", None, ("no such pipeline file",), "pipeline.yaml"),
    Case("empty-file", "", ("expected a mapping",), "pipeline.yaml:1:1"),
    Case("yaml-list", "- a\n- b\n", ("expected a mapping",), "pipeline.yaml:1:1"),
    # -- unknown keys and wrong types -----------------------------------------------------------
    Case("unknown-top-level-key", """\
name: t
step:
  a:
    run: echo hi
""", ("unknown key 'step'", "did you mean 'steps'?"), "pipeline.yaml:2:1", "step"),
    Case("unknown-step-key", """\
name: t
steps:
  train:
    run: echo hi
    retrys: 2
""", ("unknown key 'retrys'", "did you mean 'retries'?"), "pipeline.yaml:5:5", "steps.train.retrys"),
    Case("wrong-type-retries", """\
name: t
steps:
  train:
    run: echo hi
    retries: two
""", ("expected", "integer", "'two'"), "pipeline.yaml:5:14", "steps.train.retries"),
    Case("run-as-mapping", """\
name: t
steps:
  a:
    run: {cmd: echo}
""", ("expected a shell command string or a non-empty list of arguments", "got a mapping"),
         "pipeline.yaml:4:10", "steps.a.run"),
    Case("no-action", """\
name: t
steps:
  a:
    inputs: [x]
""", ("expected exactly one of run, project, register or deploy", "found none"), "pipeline.yaml:4:5", "steps.a"),
    Case("two-actions", """\
name: t
steps:
  a:
    run: echo
    deploy: {model: m}
""", ("expected exactly one of run, project, register or deploy", "found run, deploy"),
         "pipeline.yaml:4:5", "steps.a"),
    Case("bad-timeout", """\
name: t
steps:
  a:
    run: echo hi
    timeout: 10 minutes
""", ("expected a positive duration", "'10 minutes'"), "pipeline.yaml:5:14", "steps.a.timeout"),
    Case("cache-number", """\
name: t
steps:
  a:
    run: echo hi
    cache: 3
""", ("expected false, true or {version: N}", "got 3"), "pipeline.yaml:5:12", "steps.a.cache"),
    Case("cache-misspelt-version", """\
name: t
steps:
  a:
    run: echo hi
    cache: {versoin: 2}
""", ("unknown key 'versoin'", "did you mean 'version'?"), "pipeline.yaml:5:13", "steps.a.cache.versoin"),
    Case("invalid-step-name", """\
name: t
steps:
  a.b:
    run: echo hi
""", ("expected a name of letters, digits", "'a.b'"), "pipeline.yaml:3:3", "steps.a.b"),
    # -- environments ------------------------------------------------------------------------
    Case("env-two-kinds", """\
name: t
environments:
  e: {python: {}, docker: {image: x}}
steps:
  a:
    run: echo hi
""", ("expected exactly one of python, conda or docker",), "pipeline.yaml:3:6", "environments.e"),
    Case("env-unknown-kind", """\
name: t
environments:
  e: {pyhton: {}}
steps:
  a:
    run: echo hi
""", ("unknown key 'pyhton'", "did you mean 'python'?"), "pipeline.yaml:3:7", "environments.e.pyhton"),
    Case("docker-without-image-or-build", """\
name: t
environments:
  e:
    docker: {gpus: 1}
steps:
  a:
    run: echo hi
""", ("expected 'image' or 'build'",), "pipeline.yaml:4:13", "environments.e.docker"),
    Case("unknown-env-name", """\
name: t
environments:
  train: {python: {requirements: r.txt}}
steps:
  a:
    run: echo hi
    env: trian
""", ("unknown environment 'trian'", "did you mean 'train'?"), "pipeline.yaml:7:10", "steps.a.env"),
    # -- references --------------------------------------------------------------------------
    Case("unknown-param", """\
name: t
params: {alpha: 0.5}
steps:
  a:
    run: echo ${params.alpah}
""", ("unknown param 'alpah'", "did you mean 'alpha'?"), "pipeline.yaml:5:10", "steps.a.run"),
    Case("unknown-param-in-inputs", """\
name: t
params: {alpha: 0.5}
steps:
  a:
    run: echo hi
    inputs: ["data/${params.alpah}.csv"]
""", ("unknown param 'alpah'", "did you mean 'alpha'?"), "pipeline.yaml:6:13", "steps.a.inputs"),
    Case("unknown-namespace", """\
name: t
params: {alpha: 0.5}
steps:
  a:
    run: echo ${param.alpha}
""", ("${param.alpha}", "did you mean 'params'?"), "pipeline.yaml:5:10", "steps.a.run"),
    Case("unknown-matrix-key", """\
name: t
steps:
  a:
    matrix: {alpha: [1, 2]}
    run: echo ${matrix.alpah}
""", ("unknown matrix key 'alpah'", "did you mean 'alpha'?"), "pipeline.yaml:5:10", "steps.a.run"),
    Case("matrix-ref-without-matrix", """\
name: t
steps:
  a:
    run: echo ${matrix.x}
""", ("${matrix.x}", "has no matrix"), "pipeline.yaml:4:10", "steps.a.run"),
    Case("unknown-step-ref", """\
name: t
steps:
  a:
    run: echo hi
    metrics: m.json
  b:
    run: echo ${steps.nope.metrics.m}
""", ("unknown step 'nope'",), "pipeline.yaml:7:10", "steps.b.run"),
    Case("misspelt-step-ref", """\
name: t
steps:
  train:
    run: echo hi
    metrics: m.json
  b:
    run: echo ${steps.trian.metrics.m}
""", ("unknown step 'trian'", "did you mean 'train'?"), "pipeline.yaml:7:10", "steps.b.run"),
    Case("step-ref-without-metrics", """\
name: t
steps:
  a:
    run: echo hi
  b:
    run: echo ${steps.a.metrics.m}
""", ("step 'a' declares no metrics",), "pipeline.yaml:6:10", "steps.b.run"),
    Case("unknown-needs", """\
name: t
steps:
  prepare:
    run: echo hi
  b:
    run: echo hi
    needs: [prepair]
""", ("unknown step 'prepair'", "did you mean 'prepare'?"), "pipeline.yaml:7:13", "steps.b.needs[0]"),
    Case("when-function-call", """\
name: t
steps:
  a:
    run: echo hi
    when: __import__('os')
""", ("invalid condition", "Call is not allowed"), "pipeline.yaml:5:11", "steps.a.when"),
    Case("when-unknown-name", """\
name: t
steps:
  a:
    run: echo hi
    when: foo > 1
""", ("invalid condition", "unknown name 'foo'"), "pipeline.yaml:5:11", "steps.a.when"),
    # -- the graph ---------------------------------------------------------------------------
    Case("cycle-two-steps", """\
name: t
steps:
  a:
    run: echo hi
    inputs: [b.txt]
    outputs: [a.txt]
  b:
    run: echo hi
    inputs: [a.txt]
    outputs: [b.txt]
""", ("cycle", ("a -> b -> a", "b -> a -> b")), "pipeline.yaml:", None),
    Case("cycle-three-steps-needs", """\
name: t
steps:
  a:
    run: echo hi
    needs: [c]
  b:
    run: echo hi
    needs: [a]
  c:
    run: echo hi
    needs: [b]
""", ("cycle", ("a -> b -> c -> a", "b -> c -> a -> b", "c -> a -> b -> c")), "pipeline.yaml:", None),
    Case("two-writers-same-path", """\
name: t
steps:
  first:
    run: echo hi
    outputs: [out.txt]
  second:
    run: echo hi
    outputs: [out.txt]
""", ("'first'", "'second'", "out.txt"), "pipeline.yaml:8:15", "steps.second.outputs[0]"),
    Case("writer-inside-other-output-folder", """\
name: t
steps:
  first:
    run: echo hi
    outputs: [models/]
  second:
    run: echo hi
    outputs: [models/x.txt]
""", ("'first'", "'second'", "models/x.txt", "inside"), "pipeline.yaml:8:15", "steps.second.outputs[0]"),
    Case("input-missing", """\
name: t
steps:
  prepare:
    run: echo hi
    outputs: [data/train.csv]
  train:
    run: echo hi
    inputs: [data/trian.csv]
""", ("'data/trian.csv'", "does not exist", "no step writes it", "did you mean 'data/train.csv'?"),
         "pipeline.yaml:8:14", "steps.train.inputs[0]"),
    # -- the command line --------------------------------------------------------------------
    Case("P-bad-int", PARAMS_PIPELINE, ("-P n=abc", "expected an integer", "'abc'"), args=("-P", "n=abc")),
    Case("P-unknown-key", PARAMS_PIPELINE, ("-P nn=3", "unknown param 'nn'", "did you mean 'n'?"), args=("-P", "nn=3")),
    Case("P-without-equals", PARAMS_PIPELINE, ("-P n", "expected -P key=value"), args=("-P", "n")),
    Case("target-unknown", PARAMS_PIPELINE.replace("  a:", "  train:"),
         ("--target", "unknown step 'trian'", "did you mean 'train'?"), args=("--target", "trian")),
    Case("python-env-requirements-missing", """\
name: t
environments:
  e: {python: {requirements: r.txt}}
steps:
  a:
    run: echo hi
    env: e
""", ("requirements file 'r.txt' not found", "expected a pip requirements file"), "pipeline.yaml:3:",
         "environments.e.python.requirements"),
    Case("conda-env-file-missing", """\
name: t
environments:
  e: {conda: {file: environment.yml}}
steps:
  a:
    run: echo hi
    env: e
""", ("'environment.yml' not found", "expected a conda environment file"), "pipeline.yaml:3:",
         "environments.e.conda.file"),
    Case("docker-build-folder-missing", """\
name: t
environments:
  e: {docker: {build: nosuchdir/}}
steps:
  a:
    run: echo hi
    env: e
""", ("build folder 'nosuchdir/' not found", "expected a folder with a Dockerfile"), "pipeline.yaml:3:",
         "environments.e.docker.build"),
    Case("register-step-with-outputs", """\
name: t
steps:
  a:
    register: {model: m/, name: x}
    outputs: [y]
""", ("register: step", "writes no files", "remove 'outputs'"), "pipeline.yaml:5:", "steps.a.outputs"),
    Case("deploy-step-with-env", """\
name: t
environments:
  e: {python: {}}
steps:
  a:
    deploy: {model: "models:/x@c"}
    env: e
""", ("deploy: step", "remove 'env'"), "pipeline.yaml:7:", "steps.a.env"),
    Case("register-name-with-slash", """\
name: t
steps:
  a:
    register: {model: m/, name: a/b}
""", ("invalid registered model name 'a/b'", "cannot contain '/'"), "pipeline.yaml:4:", "steps.a.register.name",
         command="status"),
    Case("register-reserved-alias", """\
name: t
params: {a: latest}
steps:
  a:
    register: {model: m/, name: wine, alias: "${params.a}"}
""", ("'latest'", "reserved"), "pipeline.yaml:5:", "steps.a.register.alias", command="status"),
    Case("deploy-malformed-model-uri", """\
name: t
steps:
  a:
    deploy: {model: "models:/wine/1/extra"}
""", ("invalid model URI 'models:/wine/1/extra'",), "pipeline.yaml:4:", "steps.a.deploy.model"),
    Case("deploy-bad-alias-in-uri", """\
name: t
steps:
  a:
    deploy: {model: "models:/wine@no good"}
""", ("invalid alias 'no good'",), "pipeline.yaml:4:", "steps.a.deploy.model", command="status"),
    Case("deploy-name-escaping", """\
name: t
steps:
  a:
    deploy: {model: "models:/wine@c", name: ../evil}
""", ("'../evil' cannot name a deployment",), "pipeline.yaml:4:", "steps.a.deploy.name", command="status"),
    # -- the same faults through `status` and `dag` ---------------------------------------------
    Case("status-unknown-param", """\
name: t
params: {alpha: 0.5}
steps:
  a:
    run: echo ${params.alpah}
""", ("unknown param 'alpah'", "did you mean 'alpha'?"), "pipeline.yaml:5:10", "steps.a.run", command="status"),
    Case("status-cycle", """\
name: t
steps:
  a:
    run: echo hi
    needs: [b]
  b:
    run: echo hi
    needs: [a]
""", ("cycle", ("a -> b -> a", "b -> a -> b")), "pipeline.yaml:", command="status"),
    Case("status-target-unknown", PARAMS_PIPELINE, ("--target", "unknown step 'aa'", "did you mean 'a'?"),
         args=("--target", "aa"), command="status"),
    Case("dag-unknown-step-key", """\
name: t
steps:
  train:
    run: echo hi
    retrys: 2
""", ("unknown key 'retrys'", "did you mean 'retries'?"), "pipeline.yaml:5:5", "steps.train.retrys", command="dag"),
    Case("dag-two-writers", """\
name: t
steps:
  first:
    run: echo hi
    outputs: [out.txt]
  second:
    run: echo hi
    outputs: [out.txt]
""", ("'first'", "'second'"), "pipeline.yaml:8:15", "steps.second.outputs[0]", command="dag"),
    Case("dag-P-unknown-key", PARAMS_PIPELINE, ("-P alhpa=1", "did you mean 'alpha'?"), args=("-P", "alhpa=1"),
         command="dag"),
]


def _snapshot(root) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, dirs, files in os.walk(root) for f in files + dirs}


@dataclass
class Outcome:
    project: object
    res: object
    before: set
    after: set


def _run(project, case: Case) -> Outcome:
    if case.yaml is not None:
        project.pipeline(case.yaml)
    for rel, text in case.files.items():
        project.write(rel, text)
    before = _snapshot(project.root)
    res = project.flowml(case.command, *case.args)
    return Outcome(project, res, before, _snapshot(project.root))


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory, project_class) -> dict[str, Outcome]:
    """Every selected case run once, a few CLI processes at a time (each in a fresh project)."""
    wanted = {item.callspec.params["case"].id: item.callspec.params["case"] for item in request.session.items
              if item.module is request.module and hasattr(item, "callspec") and "case" in item.callspec.params}
    # mktemp is not thread-safe before pytest's base folder exists: make the folders here.
    folders = {case.id: tmp_path_factory.mktemp(case.id) for case in wanted.values()}

    def one(case: Case) -> tuple[str, Outcome]:
        return case.id, _run(project_class(folders[case.id]), case)

    with ThreadPoolExecutor(max_workers=max(2, min(8, (os.cpu_count() or 2) * 2))) as pool:
        return dict(pool.map(one, wanted.values()))


def _check_message(case: Case, res) -> None:
    assert res.code == 2, f"exit {res.code}, expected 2\nstdout: {res.out}\nstderr: {res.err}"
    assert "Traceback" not in res.err and "Traceback" not in res.out, res.err
    err = res.err
    if case.where:
        assert case.where in err, f"{case.where!r} not in {err!r}"
    if case.field:
        assert case.field in err, f"field {case.field!r} not in {err!r}"
    for want in case.expect:
        if isinstance(want, tuple):
            assert any(w in err for w in want), f"none of {want!r} in {err!r}"
        else:
            assert want in err, f"{want!r} not in {err!r}"


def _check_wrote_nothing(o: Outcome) -> None:
    assert not (o.project.root / ".flowml").exists(), "a bad-input run created .flowml/"
    assert o.after == o.before, f"a bad-input run wrote {sorted(o.after - o.before)}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(outcomes, case: Case) -> None:
    o = outcomes[case.id]
    _check_message(case, o.res)
    _check_wrote_nothing(o)


def test_several_problems_are_reported_together(project) -> None:
    """Two independent faults in one file both appear, each at its own line."""
    project.pipeline("""\
        name: t
        steps:
          a:
            run: echo hi
            retrys: 2
          b:
            run: echo hi
            retries: two
        """)
    res = project.flowml("run")
    assert res.code == 2
    assert "pipeline.yaml:5:5: steps.a.retrys" in res.err
    assert "pipeline.yaml:8:14: steps.b.retries" in res.err
    assert not (project.root / ".flowml").exists()


def test_bad_input_in_a_subfolder_names_that_file(project) -> None:
    """The message names the file as the user passed it, with line and column."""
    project.write("sub/pipeline.yaml", """\
        name: t
        steps:
          a:
            run: echo hi
            timeout: soon
        """)
    res = project.flowml("run", "sub/pipeline.yaml")
    assert res.code == 2
    assert os.path.join("sub", "pipeline.yaml") + ":5:14" in res.err
    assert "steps.a.timeout" in res.err
    assert not (project.root / "sub" / ".flowml").exists() and not (project.root / ".flowml").exists()


def test_bad_input_leaves_an_existing_store_untouched(project) -> None:
    """After a good run, a bad edit exits 2 and changes no file in .flowml/ or the outputs."""
    project.pipeline("""\
        name: t
        steps:
          a:
            run: echo hi > out.txt
            outputs: [out.txt]
        """)
    assert project.flowml("run").code == 0
    store = project.root / ".flowml"
    state = {p: p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file() and not p.name.endswith(("-wal", "-shm"))}
    out_before = project.read("out.txt")
    project.pipeline("""\
        name: t
        steps:
          a:
            run: echo changed > out.txt
            outputs: [out.txt]
            retries: many
        """)
    res = project.flowml("run")
    assert res.code == 2 and "steps.a.retries" in res.err
    assert project.read("out.txt") == out_before
    after = {p: p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file() and not p.name.endswith(("-wal", "-shm"))}
    assert after == state


@pytest.mark.parametrize("output, message", [
    (".git/", "an output cannot be inside .git/, the git repository"),
    ("./", "must be a path inside the project folder"),
    ("pipeline.yaml", "output 'pipeline.yaml' would delete pipeline.yaml"),
])
def test_outputs_that_would_delete_the_project_are_refused(project, output, message) -> None:
    """Outputs are cleared before their step runs, so these would destroy what the user owns."""
    (project.root / ".git").mkdir()
    (project.root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    project.pipeline(f"""\
        name: t
        steps:
          a:
            run: echo
            outputs: ["{output}"]
        """)
    res = project.flowml("run")
    assert res.code == 2 and "Traceback" not in res.err
    assert "pipeline.yaml:5:" in res.err and message in res.err
    assert (project.root / ".git" / "HEAD").exists() and (project.root / "pipeline.yaml").exists()
