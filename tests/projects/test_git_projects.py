"""Git projects through ``flowml run URI#subdir --version REV``: a repository made here (a tag,
then newer commits on main and on a branch) is cloned into the projects cache and run at the
revision asked for, with the repository, commit and subfolder recorded on the runs; a bad
revision or subfolder is bad input; concurrent runs of one URI share one clone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from flowml.tracking.client import FlowmlClient

MLPROJECT = """\
name: wine
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
    command: "python train.py {alpha}"
"""
TRAIN = """\
import json, os, sys
json.dump({"code": CODE, "argv": sys.argv[1:], "cwd": os.getcwd()}, open(os.environ["RECEIVED"], "w"))
"""
PIPELINE = "name: pipe\nsteps:\n  hello: {run: python hello.py}\n"
HELLO = "import json, os\njson.dump({'code': 'pipeline'}, open(os.environ['RECEIVED'], 'w'))\n"


def git(folder, *args) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=folder, env=env, check=True, capture_output=True, text=True).stdout.strip()


def commit(repo, code: str, message: str) -> str:
    (repo / "sub" / "train.py").write_text(f"CODE = {code!r}\n" + TRAIN)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@dataclass
class Repo:
    path: Path
    commits: dict[str, str]  # the code each commit runs -> its sha


@pytest.fixture
def repo(tmp_path_factory) -> Repo:
    """main: v1 (tagged v1.2), then v2; branch feature: v2, then feature."""
    repo = tmp_path_factory.mktemp("repos") / "project"
    (repo / "sub").mkdir(parents=True)
    (repo / "pipe").mkdir()
    (repo / "sub" / "MLproject").write_text(MLPROJECT)
    (repo / "pipe" / "pipeline.yaml").write_text(PIPELINE)
    (repo / "pipe" / "hello.py").write_text(HELLO)
    git(repo, "init", "-q", "-b", "main")
    commits = {"v1": commit(repo, "v1", "first")}
    git(repo, "tag", "v1.2")
    commits["v2"] = commit(repo, "v2", "second")
    git(repo, "checkout", "-q", "-b", "feature")
    commits["feature"] = commit(repo, "feature", "third")
    git(repo, "checkout", "-q", "main")
    return Repo(repo, commits)


@pytest.fixture
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("projects-cache")


def flowml_run(project, cache, *args, received="received.json"):
    env = {"FLOWML_PROJECTS_DIR": str(cache), "RECEIVED": str(project.root / received)}
    return project.run_json(*args, env=env)


def received(project, name="received.json") -> dict:
    return json.loads(project.read(name))


def step_run(project):
    """The latest step run, recorded in the store of the folder flowml ran in."""
    client = FlowmlClient(f"sqlite:///{project.root}/.flowml/flowml.db")
    experiment = client.get_experiment_by_name("wine")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags["flowml.type"] == "step"]
    return max(runs, key=lambda r: r.info.start_time)


def test_a_tag_of_a_file_uri_runs_the_old_code_and_records_the_source(project, repo, cache):
    uri = f"file://{repo.path}"
    first = flowml_run(project, cache, f"{uri}#sub", "--version", "v1.2", "-P", "alpha=0.4")
    assert first["code"] == 0, first["stderr"]
    got = received(project)
    assert got["code"] == "v1" and got["argv"] == ["0.4"]
    assert got["cwd"].startswith(str(cache)) and got["cwd"].endswith(os.path.join(repo.commits["v1"], "sub"))
    tags = step_run(project).data.tags
    assert {k: tags.get(k) for k in ("mlflow.source.name", "mlflow.source.git.repoURL", "mlflow.source.git.commit",
                                     "flowml.source.git.subdir", "mlflow.project.entryPoint", "mlflow.source.type")} == {
        "mlflow.source.name": f"{uri}#sub", "mlflow.source.git.repoURL": uri,
        "mlflow.source.git.commit": repo.commits["v1"], "flowml.source.git.subdir": "sub",
        "mlflow.project.entryPoint": "main", "mlflow.source.type": "PROJECT"}
    assert "mlflow.source.git.branch" not in tags  # a tag is not a branch

    again = flowml_run(project, cache, f"{uri}#sub", "--version", "v1.2", "-P", "alpha=0.4")
    assert again["by_name"]["main"]["status"] == "cached", again["stderr"]

    repo.path.rename(repo.path.with_name("moved"))  # unreachable now: the copy fetched before serves
    offline = flowml_run(project, cache, f"{uri}#sub", "--version", "v1.2", "-P", "alpha=0.4")
    assert offline["by_name"]["main"]["status"] == "cached", offline["stderr"]
    assert f"warning: cannot fetch {uri}" in offline["stderr"] and "using the copy fetched before" in offline["stderr"]


def test_the_default_branch_a_named_branch_a_commit_and_new_commits(project, repo, cache):
    uri = f"file://{repo.path}#sub"
    assert flowml_run(project, cache, uri)["code"] == 0
    assert received(project)["code"] == "v2" and step_run(project).data.tags["mlflow.source.git.branch"] == "main"

    assert flowml_run(project, cache, uri, "--version", "feature")["code"] == 0
    assert received(project)["code"] == "feature"
    assert step_run(project).data.tags["mlflow.source.git.branch"] == "feature"

    by_path = flowml_run(project, cache, f"{repo.path}#sub", "--version", repo.commits["v1"])  # a local path, a commit
    assert by_path["code"] == 0, by_path["stderr"]
    assert received(project)["code"] == "v1"

    newest = commit(repo.path, "v3", "fourth")  # the repository moves on: the next run fetches it
    assert flowml_run(project, cache, uri)["code"] == 0
    assert received(project)["code"] == "v3" and step_run(project).data.tags["mlflow.source.git.commit"] == newest

    pipeline = flowml_run(project, cache, f"file://{repo.path}#pipe")  # a pipeline.yaml in the repository
    assert pipeline["code"] == 0 and received(project)["code"] == "pipeline", pipeline["stderr"]


@pytest.mark.parametrize("target, version, message", [
    ("file://{repo}#sub", "v1.3", "--version v1.3: no branch, tag or commit 'v1.3' in file://{repo}; did you mean "
                                  "'v1.2'? (branches and tags: feature, main, v1.2)"),
    ("file://{repo}#nope", "v1.2", "no folder nope at "),
    ("file://{repo}#../elsewhere", None, "'#../elsewhere' must name a folder inside the project"),
    ("{plain}", "v1.2", "is not a git repository; --version picks a branch, tag or commit of one"),
])
def test_a_bad_revision_or_folder_is_bad_input(project, repo, cache, target, version, message):
    plain = repo.path.parent / "plain"
    plain.mkdir()
    (plain / "MLproject").write_text(MLPROJECT)
    target, message = (s.format(repo=repo.path, plain=plain) for s in (target, message))
    res = project.flowml("run", target, *(["--version", version] if version else []),
                         env={"FLOWML_PROJECTS_DIR": str(cache), "RECEIVED": str(project.root / "received.json")})
    assert res.code == 2 and "Traceback" not in res.err, res.err
    assert message in res.err, res.err
    assert not (project.root / "received.json").exists()


def test_a_subdir_that_is_a_link_out_of_the_repository_is_refused(project, repo, cache, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "MLproject").write_text(MLPROJECT)
    (repo.path / "escape").symlink_to(outside)
    commit(repo.path, "v3", "a link out")
    res = project.flowml("run", f"file://{repo.path}#escape", env={"FLOWML_PROJECTS_DIR": str(cache)})
    assert res.code == 2 and "'#escape' leads out of the repository" in res.err and "Traceback" not in res.err, res.err
    assert not (outside / ".flowml").exists()


def test_a_repository_that_cannot_be_cloned_is_a_failure_not_a_traceback(project, cache):
    res = project.flowml("run", "https://127.0.0.1:9/nothing.git", env={"FLOWML_PROJECTS_DIR": str(cache)})
    assert res.code == 1 and "Traceback" not in res.err, res.err
    assert "error: cannot clone https://127.0.0.1:9/nothing.git: " in res.err
    (entry,) = cache.iterdir()
    assert not (entry / "repo.git").exists() and not [p for p in entry.iterdir() if p.name.startswith(".tmp")]


def test_concurrent_runs_of_one_uri_share_one_clone(project, repo, cache):
    env = {**os.environ, "CI": "1", "FLOWML_PROJECTS_DIR": str(cache)}
    procs = [subprocess.Popen([sys.executable, "-m", "flowml", "run", f"file://{repo.path}#sub", "--no-track",
                               "-P", f"alpha={alpha}"], cwd=project.root, stderr=subprocess.PIPE, text=True,
                              env={**env, "RECEIVED": str(project.root / f"received-{alpha}.json")})
             for alpha in (1, 2)]
    for proc in procs:
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    assert [received(project, f"received-{a}.json")["argv"] for a in (1, 2)] == [["1"], ["2"]]
    (entry,) = cache.iterdir()  # one folder for the URI: one mirror, one work tree, nothing half-made
    assert sorted(p.name for p in entry.iterdir()) == ["commits", "lock", "repo.git", "uri"]
    assert sorted(p.name for p in (entry / "commits").iterdir()) == [repo.commits["v2"], repo.commits["v2"] + ".ready"]
