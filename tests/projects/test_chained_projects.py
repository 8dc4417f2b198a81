"""Chained projects: a ``project:`` step runs another project's MLproject entry point as one
step of a pipeline. A git repository made here (tag v2) holds a feature project whose entry
point writes to a path parameter; the pipeline chains it, then a ``run:`` step reads its
output. The step is cached on the commit the version resolves to and the typed parameters,
its outputs restore like any step's, a moved tag reruns it, and what it names wrongly is bad
input at its line in pipeline.yaml before anything runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flowml.tracking.client import FlowmlClient

MLPROJECT = """\
name: features
entry_points:
  main:
    parameters:
      rows: {type: int, default: 10}
      out: string
    command: "python prep.py {rows} {out}"
  scale:
    parameters:
      factor: float
      source: path
      out: string
    command: "python scale.py {factor} {source} {out}"
"""
PREP = """\
import os, sys
rows, out = int(sys.argv[1]), sys.argv[2]
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w") as fh:
    fh.write(f"{VERSION} rows={rows} cwd={os.path.basename(os.getcwd())}\\n")
"""
SCALE = """\
import sys
factor, source, out = float(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(out, "w") as fh:
    fh.write(f"{factor * len(open(source).read())}\\n")
"""
PIPELINE = """\
name: chain
params: {rows: 1000}
steps:
  prep:
    project:
      uri: "file://REPO#prep"
      version: v2
      entry_point: main
      parameters: {rows: "${params.rows}", out: data/features.txt}
    outputs: [data/features.txt]
  train:
    run: python -c "import shutil; shutil.copy('data/features.txt', 'model.txt')"
    inputs: [data/features.txt]
    outputs: [model.txt]
"""


def git(folder, *args) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=folder, env=env, check=True, capture_output=True, text=True).stdout.strip()


def commit(repo, version: str, comment: str = "") -> str:
    """Commit prep.py writing ``version``, and point tag v2 at it."""
    (repo / "prep" / "prep.py").write_text(f"VERSION = {version!r}{comment}\n" + PREP)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"{version}{comment}")
    git(repo, "tag", "-f", "v2")
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repos") / "features"
    (repo / "prep").mkdir(parents=True)
    (repo / "prep" / "MLproject").write_text(MLPROJECT)
    (repo / "prep" / "scale.py").write_text(SCALE)
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "one")
    return repo


@pytest.fixture
def chain(project, repo, tmp_path_factory):
    """The chaining workspace, with its git projects cached in a folder of this test's."""
    project.pipeline(PIPELINE.replace("REPO", str(repo)))
    project.env = {"FLOWML_PROJECTS_DIR": str(tmp_path_factory.mktemp("projects-cache"))}
    return project


def run(project, *args) -> dict:
    return project.run_json(*args, env=project.env)


def statuses(summary) -> dict[str, str]:
    return {name: step["status"] for name, step in summary["by_name"].items()}


def status(project, *args) -> list[str]:
    res = project.flowml("status", *args, env=project.env)
    assert res.code == 0, res.err
    return res.out.splitlines()


def step_runs(project) -> list:
    client = FlowmlClient(f"sqlite:///{project.root}/.flowml/flowml.db")
    experiment = client.get_experiment_by_name("chain")
    runs = client.search_runs([experiment.experiment_id], "tags.`flowml.step` = 'prep'")
    return sorted(runs, key=lambda r: r.info.start_time)


def test_a_chained_project_runs_is_cached_and_reruns_when_its_parameters_or_commit_change(chain, repo):
    first = run(chain)
    assert first["code"] == 0, first["stderr"]
    assert statuses(first) == {"prep": "ran", "train": "ran"}
    assert chain.read("model.txt") == "one rows=1000 cwd=prep\n"  # ran in its checkout's folder, wrote here
    (prep_run,) = step_runs(chain)
    tags, params = prep_run.data.tags, prep_run.data.params
    assert tags["mlflow.source.git.commit"] == git(repo, "rev-parse", "v2")
    assert tags["mlflow.source.git.repoURL"] == f"file://{repo}" and tags["flowml.source.git.subdir"] == "prep"
    assert tags["mlflow.source.name"] == f"file://{repo}#prep" and tags["mlflow.project.entryPoint"] == "main"
    assert tags["mlflow.project.env"] == "local" and tags["flowml.type"] == "step"
    assert params == {"rows": "1000", "out": "data/features.txt"}

    again = run(chain)
    assert statuses(again) == {"prep": "cached", "train": "cached"}, again["stderr"]
    (chain.root / "data" / "features.txt").unlink()  # a cache hit restores its output
    restored = run(chain)
    assert statuses(restored) == {"prep": "cached", "train": "cached"}
    assert chain.read("data/features.txt") == "one rows=1000 cwd=prep\n"

    assert status(chain, "-P", "rows=5") == ["will run prep  (param rows 1000 -> 5)",
                                             "will run train  (upstream prep will run)"]
    other = run(chain, "-P", "rows=5")
    assert statuses(other) == {"prep": "ran", "train": "ran"} and chain.read("model.txt") == "one rows=5 cwd=prep\n"
    assert statuses(run(chain, "-P", "rows=5")) == {"prep": "cached", "train": "cached"}
    assert statuses(run(chain)) == {"prep": "cached", "train": "cached"}  # rows=1000's entry is still there

    old = git(repo, "rev-parse", "v2")
    new = commit(repo, "one", "  # same output")  # the tag moves; the project writes the same bytes
    assert status(chain) == [f"will run prep  (project file://{repo}#prep: v2 is now commit {new[:12]} "
                             f"(was {old[:12]}))", "will run train  (upstream prep will run)"]
    moved = run(chain)
    assert statuses(moved) == {"prep": "ran", "train": "cached"}, moved["stderr"]  # early cutoff downstream
    commit(repo, "two")
    assert statuses(run(chain)) == {"prep": "ran", "train": "ran"}
    assert chain.read("model.txt") == "two rows=1000 cwd=prep\n"


def test_a_folder_project_is_keyed_on_its_files_and_takes_workspace_paths(project):
    """A local folder next to the pipeline (no git): its files are its revision; a ``path``
    parameter and a value naming a declared input are the pipeline's paths."""
    project.write("features/MLproject", MLPROJECT)
    project.write("features/scale.py", SCALE)
    project.write("work/raw.txt", "abcd")
    project.write("work/pipeline.yaml", """\
        name: chain
        steps:
          scale:
            project: {uri: ../features, entry_point: scale, parameters: {factor: 2, source: raw.txt, out: out/x.txt}}
            inputs: [raw.txt]
            outputs: [out/x.txt]
        """)
    work = project.root / "work"
    first = project.run_json("work", env={})
    assert first["code"] == 0 and statuses(first) == {"scale": "ran"}, first["stderr"]
    assert (work / "out" / "x.txt").read_text() == "8.0\n"
    assert statuses(project.run_json("work")) == {"scale": "cached"}

    (work / "pipeline.yaml").write_text((work / "pipeline.yaml").read_text().replace("factor: 2,", "factor: 2.0,"))
    assert statuses(project.run_json("work")) == {"scale": "cached"}  # 2 and 2.0 are one float

    project.write("features/scale.py", SCALE.replace("factor *", "factor * 10 *"))
    res = project.flowml("status", "work")
    assert res.out.splitlines() == ["will run scale  (project ../features: its files changed)"], res.err
    assert statuses(project.run_json("work")) == {"scale": "ran"} and (work / "out" / "x.txt").read_text() == "80.0\n"

    (work / "raw.txt").write_text("abcdef")
    assert project.flowml("status", "work").out.splitlines() == ["will run scale  (input raw.txt changed)"]


@pytest.mark.parametrize("edits, expected", [
    ([("entry_point: main", "entry_point: mian")],
     "pipeline.yaml:8:20: steps.prep.project.entry_point: no entry point 'mian' in "),
    ([("version: v2", "version: v9")],
     "pipeline.yaml:7:16: steps.prep.project.version: no branch, tag or commit 'v9' in file://REPO (branches and "
     "tags: main, v2)"),
    ([('rows: "${params.rows}"', "rows: many")],
     "pipeline.yaml:9:26: steps.prep.project.parameters.rows: expected a whole number (type int), got 'many', for "
     "entry point 'main'"),
    ([(", out: data/features.txt", "")],
     "pipeline.yaml:9:19: steps.prep.project.parameters: parameter 'out' of entry point 'main' has no default: give "
     "it a value under parameters"),
    ([("#prep", "#nope")], "pipeline.yaml:6:12: steps.prep.project.uri: no folder nope at "),
    ([("steps:", "environments: {other: {python: {}}}\nsteps:"), ("    outputs: [data/f", "    env: other\n    outputs: [data/f")],
     "pipeline.yaml:11:10: steps.prep.env: a project: step runs in the environment its project declares"),
])
def test_what_the_step_names_wrongly_is_bad_input_at_its_line(chain, repo, edits, expected):
    text = chain.read("pipeline.yaml")
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    chain.pipeline(text)
    res = chain.flowml("run", env=chain.env)
    assert res.code == 2 and "Traceback" not in res.err, res.err
    assert expected.replace("REPO", str(repo)) in res.err, res.err
    assert not (chain.root / "data").exists() and not (chain.root / ".flowml").exists()  # nothing ran or was made


@pytest.mark.parametrize("folder, files, expected", [
    ("pipe", {"pipeline.yaml": "name: p\nsteps:\n  a: {run: 'true'}\n"}, "holds a pipeline.yaml, not an MLproject"),
    ("boxed", {"MLproject": "name: boxed\ndocker_env: {image: 'busybox'}\nentry_points:\n  main: {command: 'true'}\n"},
     "a project with a docker_env cannot be chained yet"),
])
def test_a_pipeline_project_or_a_docker_env_is_not_chained(chain, repo, folder, files, expected):
    if folder == "boxed":
        pytest.importorskip("flowml_docker")
    (repo / folder).mkdir()
    for name, text in files.items():
        (repo / folder / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", folder)
    chain.pipeline(chain.read("pipeline.yaml").replace("version: v2", "version: main").replace("#prep", f"#{folder}"))
    res = chain.flowml("run", env=chain.env)
    assert res.code == 2 and "Traceback" not in res.err, res.err
    assert "pipeline.yaml:6:12: steps.prep.project.uri: " in res.err and expected in res.err, res.err


def test_the_dag_shows_a_chained_step_and_its_data_edge(chain):
    res = chain.flowml("dag", env=chain.env)
    assert res.code == 0 and res.out.splitlines() == ["prep", "train  <- prep"], res.err


def test_a_chained_project_runs_in_its_own_python_env(project, project_uv):
    """Its python_env becomes a uv environment holding a package flowml's own lacks, made when
    the step runs; its run says so."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    project.write("tiny/python_env.yaml", f'python: "{version}"\ndependencies: [flowtiny==1.0]\n')
    project.write("tiny/MLproject", "name: tiny\npython_env: python_env.yaml\nentry_points:\n"
                                    "  main: {parameters: {out: string}, command: 'python tiny.py {out}'}\n")
    project.write("tiny/tiny.py", "import sys, flowtiny\nopen(sys.argv[1], 'w').write(str(flowtiny.VALUE))\n")
    project.write("work/pipeline.yaml", """\
        name: chain
        steps:
          tiny: {project: {uri: ../tiny, parameters: {out: value.txt}}, outputs: [value.txt]}
        """)
    res = project.run_json("work", env=project_uv.vars)
    assert res["code"] == 0 and statuses(res) == {"tiny": "ran"}, res["stderr"]
    assert (project.root / "work" / "value.txt").read_text() == "1" and len(project_uv.environments()) == 1
    client = FlowmlClient(f"sqlite:///{project.root}/work/.flowml/flowml.db")
    (run_,) = client.search_runs([client.get_experiment_by_name("chain").experiment_id], "tags.`flowml.step` = 'tiny'")
    assert run_.data.tags["mlflow.project.env"] == "uv" and run_.data.tags["flowml.environment"] == "python_env"
    assert statuses(project.run_json("work", env=project_uv.vars)) == {"tiny": "cached"}


def _opened(folder, remote=False):
    from flowml.dag import build_dag, compile_plan
    from flowml.projects.chain import open_chained
    from flowml.spec.load import load_pipeline

    return open_chained(compile_plan(build_dag(load_pipeline(str(folder)))), remote)[0]


def test_a_matrix_fans_a_project_step_out_and_a_remote_executor_refuses_it(project, monkeypatch):
    project.write("features/MLproject", MLPROJECT)
    project.write("work/pipeline.yaml", """\
        name: chain
        steps:
          prep:
            matrix: {rows: [1, 2]}
            project: {uri: ../features, parameters: {rows: "${matrix.rows}", out: "f/${matrix.rows}.txt"}}
            outputs: ["f/${matrix.rows}.txt"]
        """)
    monkeypatch.chdir(project.root / "work")
    chained = _opened(project.root / "work")
    assert {name: c.command for name, c in chained.items()} == {
        f"prep[rows={n}]": f"python prep.py {n} {project.root / 'work' / 'f' / f'{n}.txt'}" for n in (1, 2)}
    assert {c.folder for c in chained.values()} == {str(project.root / "features")}
    assert chained["prep[rows=2]"].key == {"entry_point": "main", "parameters": {"rows": 2, "out": "f/2.txt"}}

    from flowml.errors import SpecError

    with pytest.raises(SpecError) as caught:
        _opened(project.root / "work", remote=True)
    (problem,) = caught.value.problems  # once for the step, not per node
    assert str(problem).startswith("pipeline.yaml:5:20: steps.prep.project.uri: a project: step runs where its project "
                                   "is checked out"), str(problem)
