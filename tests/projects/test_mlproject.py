"""MLflow projects through ``flowml run DIR``: a folder with an MLproject runs its entry point
as a one-step pipeline, with typed parameters filled into the command shell-quoted, recorded
as the run's params and MLflow's project tags, cached like any step; bad values and a bad
file are errors at the MLproject's line before anything runs; python_env makes a uv
environment, conda_env and docker_env map onto the plugins' kinds."""

from __future__ import annotations

import json
import sys

import pytest

import flowml.environments
from flowml.errors import SpecError
from flowml.projects.source import open_project
from flowml.tracking.client import FlowmlClient

MLPROJECT = """\
    name: tutorial
    entry_points:
      main:
        parameters:
          alpha: float
          l1_ratio: {type: float, default: 0.1}
          epochs: {type: int, default: 3}
          label: {type: string, default: first try}
          data: {type: path, default: data.csv}
        command: "python train.py {alpha} {l1_ratio} --epochs {epochs} --label {label} --data {data}"
      report:
        parameters:
          source: {type: uri, default: "s3://bucket/wine.csv"}
        command: python train.py report {source}
    """
TRAIN = """\
    import json, os, sys
    try:
        import flowtiny
        value = flowtiny.VALUE
    except ImportError:
        value = None
    json.dump({"argv": sys.argv[1:], "flowtiny": value}, open(os.environ["RECEIVED"], "w"))
    """


@pytest.fixture
def example(project):
    """``mlflow-example/`` beside the folder flowml runs in; its script writes what it received
    to ``received.json`` there (outside the project, so the project's files stay the same)."""
    project.write("mlflow-example/MLproject", MLPROJECT)
    project.write("mlflow-example/train.py", TRAIN)
    project.write("mlflow-example/data.csv", "a,b\n1,2\n")
    return project


def received(project) -> dict:
    return json.loads(project.read("received.json"))


def run(project, *args, env=None):
    return project.run_json("./mlflow-example", *args, env={"RECEIVED": str(project.root / "received.json"),
                                                            **(env or {})})


def runs_by_type(project) -> dict[str, object]:
    client = FlowmlClient(f"sqlite:///{project.root}/mlflow-example/.flowml/flowml.db")
    experiment = client.get_experiment_by_name("tutorial")
    return {r.data.tags["flowml.type"]: r for r in client.search_runs([experiment.experiment_id])}


def test_an_entry_point_runs_with_typed_quoted_params_recorded_and_cached(example):
    first = run(example, "-P", "alpha=0.4", "-P", "extra=x y")
    assert first["code"] == 0, first["stderr"]
    data = str(example.root / "mlflow-example" / "data.csv")
    assert received(example)["argv"] == ["0.4", "0.1", "--epochs", "3", "--label", "first try", "--data", data,
                                         "--extra", "x y"]
    runs = runs_by_type(example)
    step = runs["step"]
    # values as MLflow logs them: shell-quoted as they went into the command
    assert step.data.params == {"alpha": "0.4", "l1_ratio": "0.1", "epochs": "3", "label": "'first try'",
                                "data": data, "extra": "'x y'"}
    assert step.data.tags["mlflow.project.entryPoint"] == "main" and step.data.tags["mlflow.project.env"] == "local"
    assert step.data.tags["flowml.step"] == "main" and runs["pipeline"].data.params["alpha"] == "0.4"

    (example.root / "received.json").unlink()
    again = run(example, "-P", "alpha=0.4", "-P", "extra=x y")
    assert again["by_name"]["main"]["status"] == "cached" and not (example.root / "received.json").exists()
    status = example.flowml("status", "--json", "mlflow-example", "-P", "alpha=0.5", "-P", "extra=x y")
    assert status.code == 0 and status.json[0]["reasons"] == ["param alpha 0.4 -> 0.5"], status.out + status.err

    other = run(example, "-P", "alpha=0.5", "-P", "extra=x y")  # another value: another key
    assert other["by_name"]["main"]["status"] == "ran" and received(example)["argv"][0] == "0.5"
    example.write("mlflow-example/data.csv", "a,b\n3,4\n")  # a project file (and a path parameter) changed
    edited = run(example, "-P", "alpha=0.5", "-P", "extra=x y")
    assert edited["by_name"]["main"]["status"] == "ran", edited["by_name"]["main"]


def test_other_entry_points_and_scripts_run_by_name(example):
    report = run(example, "-e", "report")
    assert report["code"] == 0, report["stderr"]
    assert received(example)["argv"] == ["report", "s3://bucket/wine.csv"]
    script = run(example, "-e", "train.py", "-P", "seed=7")  # a project's .py file is an entry point too
    assert script["code"] == 0, script["stderr"]
    assert received(example)["argv"] == ["--seed", "7"] and "train_py" in script["by_name"]


@pytest.mark.parametrize("args, where, message", [
    (["-P", "alpha=abc"], "MLproject:5:7: entry_points.main.parameters.alpha", "-P alpha=abc: expected a number"),
    ([], "MLproject:5:7", "parameter 'alpha' of entry point 'main' has no default: give it a value with -P alpha="),
    (["-P", "alpha=1", "-P", "epochs=1.5"], "MLproject:7:7", "expected a whole number (type int), got '1.5'"),
    (["-P", "alpha=1", "-P", "data=nope.csv"], "MLproject:9:7", "no such file or folder"),
    (["-e", "report", "-P", "source=wine.csv"], "MLproject:13:7", "expected a URI with a scheme"),
    (["-e", "reprot"], "command line: -e reprot", "no entry point 'reprot' in mlflow-example/MLproject; did you mean 'report'?"),
])
def test_bad_values_are_errors_at_the_mlproject_line_and_nothing_runs(example, args, where, message):
    res = example.flowml("run", "mlflow-example", *args, env={"RECEIVED": str(example.root / "received.json")})
    assert res.code == 2 and "Traceback" not in res.err, res.err
    assert where in res.err and message in res.err, res.err
    assert not (example.root / "received.json").exists() and not (example.root / "mlflow-example" / ".flowml").exists()


def load(folder, entry_point="main", overrides=("alpha=1",)):
    return open_project(str(folder), entry_point=entry_point).load(list(overrides))


def problems_of(folder, **kw) -> str:
    with pytest.raises(SpecError) as caught:
        load(folder, **kw)
    return str(caught.value)


@pytest.mark.parametrize("old, new, expected", [
    ("alpha: float", "alpha: flaot", "MLproject:5:14: entry_points.main.parameters.alpha: unknown parameter type "
                                     "'flaot'; did you mean 'float'?"),
    ("entry_points:", "entry_point:", "MLproject:2:1: entry_point: unknown key 'entry_point'; did you mean "
                                      "'entry_points'?"),
    ("{alpha} {l1_ratio}", "{alpha} {l1}", "MLproject:10:14: entry_points.main.command: '{l1}' is not a "
                                           "parameter of entry point 'main'"),
    ("{alpha} {l1_ratio}", "{alpha:.2f}", "a value is inserted as it is, without conversion or format"),
    ("name: tutorial\n", "name: tutorial\npython_env: nope.yaml\n", "MLproject:2:13: python_env: python_env "
                                                                     "file 'nope.yaml' not found"),
])
def test_a_bad_file_is_an_error_at_its_line(example, old, new, expected):
    path = example.root / "mlflow-example" / "MLproject"
    path.write_text(path.read_text().replace(old, new))
    assert expected in problems_of(path.parent)


def test_a_python_env_becomes_a_uv_environment_with_its_dependencies(example, project_uv):
    """MLflow's example layout (python_env.yaml with build_dependencies and dependencies) runs
    unchanged, in an environment holding a package flowml's own lacks."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    example.write("mlflow-example/python_env.yaml", f"""\
        python: "{version}"
        build_dependencies:
          - pip
        dependencies:
          - -r requirements.txt
        """)
    example.write("mlflow-example/requirements.txt", "flowtiny==1.0\n")
    text = (example.root / "mlflow-example" / "MLproject").read_text()
    (example.root / "mlflow-example" / "MLproject").write_text(text.replace("name: tutorial\n",
                                                                            "name: tutorial\npython_env: python_env.yaml\n"))
    res = run(example, "-P", "alpha=0.4", env=project_uv.vars)
    assert res["code"] == 0, res["stderr"]
    assert received(example)["flowtiny"] == 1
    assert runs_by_type(example)["step"].data.tags["mlflow.project.env"] == "uv"


class _Stub(flowml.environments.Environment):
    def fingerprint(self) -> str:
        return "stub"


@pytest.fixture
def plugins(monkeypatch):
    """``conda`` not installed, ``docker`` installed (a stub), whatever this machine has."""
    real = flowml.environments.find_plugin

    def find(group, kind, builtin=None):
        return {"conda": None, "docker": _Stub}.get(kind) if kind in ("conda", "docker") else real(group, kind, builtin)

    monkeypatch.setattr(flowml.environments, "find_plugin", find)


def test_conda_and_docker_envs_map_onto_the_plugin_kinds(example, plugins):
    folder = example.root / "mlflow-example"
    text = (folder / "MLproject").read_text()
    example.write("mlflow-example/conda.yaml", "dependencies: [python=3.11]\n")
    (folder / "MLproject").write_text(text.replace("name: tutorial\n", "name: tutorial\nconda_env: conda.yaml\n"))
    assert ("MLproject:2:12: conda_env: environment kind 'conda' is not available in this installation; "
            "install flowml-conda (pip install flowml-conda)") in problems_of(folder)

    docker = "docker_env:\n  image: myorg/train:1.4\n  environment: [[STAGE, test], [RETRIES, 3]]\n"
    (folder / "MLproject").write_text(text.replace("name: tutorial\n", "name: tutorial\n" + docker))
    pipeline = load(folder)
    assert pipeline.spec.environments["docker_env"].docker.image == "myorg/train:1.4"
    assert pipeline.spec.steps["main"].env == "docker_env"
    assert pipeline.spec.steps["main"].env_vars == {"STAGE": "test", "RETRIES": "3"}

    (folder / "MLproject").write_text(text.replace("name: tutorial\n", "name: tutorial\n" + docker.replace(
        "  environment: [[STAGE, test], [RETRIES, 3]]\n", "  volumes: [/data:/data]\n  environment: [HOME]\n")))
    found = problems_of(folder)
    assert "MLproject:4:12: docker_env.volumes: volumes are not supported" in found
    assert "MLproject:5:17: docker_env.environment[0]: expected [NAME, value]" in found


def test_a_pipeline_yaml_wins_over_an_mlproject_and_takes_no_entry_point(example):
    example.write("mlflow-example/pipeline.yaml", "name: own\nsteps:\n  s: {run: 'true'}\n")
    res = example.flowml("run", "mlflow-example", "-e", "main")
    assert res.code == 2 and "-e/--entry-point picks an entry point of an MLproject" in res.err, res.err


def test_outside_git_what_a_run_writes_into_the_project_is_not_the_next_runs_input(project):
    """MLflow's examples write outputs into their own folder; outside git those files must not
    become inputs, or every run would differ from the last and never be a cache hit."""
    project.write("writes/MLproject", "name: writes\nentry_points:\n  main:\n    parameters: {msg: {type: string, "
                                      "default: hi}}\n    command: \"echo {msg} > result.txt; date +%N > stamp.yaml.out\"\n")
    first = project.run_json("./writes")
    assert first["code"] == 0 and (project.root / "writes" / "result.txt").exists(), first["stderr"]
    again = project.run_json("./writes")
    assert again["by_name"]["main"]["status"] == "cached", again["by_name"]["main"]
    project.write("writes/helper.py", "X = 1\n")  # code added to the project: it reruns
    assert project.run_json("./writes")["by_name"]["main"]["status"] == "ran"
