"""python (uv) environments through ``flowml run`` and ``flowml env``: a step runs with the
environment's interpreter and packages and nothing of flowml's own virtualenv; projects with the
same requirements share one environment; changing the requirements reruns exactly the steps
that use it; concurrent runs create it once; an interrupted creation leaves nothing that passes
for an environment; bad input is reported before anything is made."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

PROBE = """\
import importlib.util, json, os, sys
try:
    import flowtiny
    value = flowtiny.VALUE
except ImportError:
    value = None
print(json.dumps({"executable": sys.executable, "prefix": sys.prefix, "virtual_env": os.environ.get("VIRTUAL_ENV"),
                  "flowtiny": value, "flowml": importlib.util.find_spec("flowml") is not None,
                  "click": importlib.util.find_spec("click") is not None, "path": os.environ["PATH"].split(os.pathsep)}))
"""

PIPELINE = """\
name: {name}
environments:
  train: {{python: {{requirements: requirements.txt, version: "{version}"}}}}
  other: {{python: {{requirements: other.txt}}}}
steps:
  fit:
    run: python probe.py > fit.json
    env: train
    outputs: [fit.json]
  score:
    run: python probe.py > score.json
    env: train
    outputs: [score.json]
  extra:
    run: python probe.py > extra.json
    env: other
    outputs: [extra.json]
  local:
    run: python probe.py > local.json
    outputs: [local.json]
"""
VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


def make(project, name="demo", requirements="flowtiny==1.0\n"):
    project.pipeline(PIPELINE.format(name=name, version=VERSION))
    project.write("probe.py", PROBE)
    project.write("requirements.txt", requirements)
    project.write("other.txt", "flowother\n")
    return project


def run(project, uv_env, *args, ok=True):
    summary = project.run_json(*args, env=uv_env.vars)
    if ok:
        assert summary["code"] == 0, summary["stderr"]
    return summary


def statuses(summary) -> dict[str, str]:
    return {name: step["status"] for name, step in summary["by_name"].items()}


def probe(project, name) -> dict:
    return json.loads(project.read(f"{name}.json"))


def test_a_step_runs_in_its_environment_and_nothing_of_flowmls_leaks_in(project, uv_env):
    make(project)
    flowml_bin = os.path.join(sys.prefix, "bin")  # flowml's virtualenv, activated as a user would
    project.run_json(env={**uv_env.vars, "VIRTUAL_ENV": sys.prefix, "PATH": flowml_bin + os.pathsep + os.environ["PATH"]})
    fit = probe(project, "fit")
    assert fit["flowtiny"] == 1  # a package flowml's own environment lacks
    assert fit["prefix"] == fit["virtual_env"] and os.path.dirname(fit["prefix"]) == str(uv_env.folder)
    assert fit["executable"].startswith(fit["prefix"] + os.sep)
    assert fit["path"][0] == os.path.join(fit["prefix"], "bin") and flowml_bin not in fit["path"]
    assert not fit["flowml"] and not fit["click"]
    extra = probe(project, "extra")
    assert extra["flowtiny"] is None and extra["prefix"] != fit["prefix"]  # the other one has only flowother
    local = probe(project, "local")  # no env: the interpreter running flowml
    assert local["flowml"] and local["flowtiny"] is None and local["prefix"] == sys.prefix
    assert uv_env.environments() == sorted(os.path.basename(p["prefix"]) for p in (fit, extra))


def test_projects_with_the_same_requirements_share_one_environment(project_class, tmp_path, uv_env):
    first = make(project_class(tmp_path / "first"), "first")
    # the same requirement written otherwise: same lock, same environment
    second = make(project_class(tmp_path / "second"), "second", requirements="# pinned\nFlowTiny == 1.0\n")
    run(first, uv_env)
    run(second, uv_env)
    assert probe(first, "fit")["prefix"] == probe(second, "fit")["prefix"]
    assert uv_env.calls("venv") == 2  # train and other, once each
    listed = first.flowml("env", "list", "--json", env=uv_env.vars).json["environments"]
    shared = next(e for e in listed if e["path"] == probe(first, "fit")["prefix"])
    assert shared["projects"] == sorted([str(first.root), str(second.root)])
    assert shared["python"].startswith(f"cpython {VERSION}.") and shared["packages"] == 1 and shared["size"] > 0


def test_changing_a_requirement_reruns_exactly_the_steps_that_use_it(project, uv_env):
    make(project)
    assert set(statuses(run(project, uv_env)).values()) == {"ran"}
    compiles = uv_env.calls("pip compile")
    assert set(statuses(run(project, uv_env)).values()) == {"cached"}
    assert uv_env.calls("pip compile") == compiles  # unchanged requirements are not resolved again

    project.write("requirements.txt", "flowtiny==2.0\n")
    plan = {r["name"]: r for r in project.flowml("status", "--json", env=uv_env.vars).json}
    assert plan["fit"]["will_run"] and plan["score"]["will_run"]
    assert any("environment train changed" in reason for reason in plan["fit"]["reasons"])
    assert not plan["extra"]["will_run"] and not plan["local"]["will_run"]
    assert statuses(run(project, uv_env)) == {"fit": "ran", "score": "ran", "extra": "cached", "local": "cached"}
    assert probe(project, "fit")["flowtiny"] == 2

    project.write("requirements.txt", "flowtiny==1.0\n")  # back: the first environment's cache entries
    back = statuses(run(project, uv_env))
    assert "ran" not in back.values(), back
    assert probe(project, "fit")["flowtiny"] == 1


def _start(project, uv_env, **extra):
    return subprocess.Popen([sys.executable, "-m", "flowml", "run", "--no-track"], cwd=project.root,
                            env={**os.environ, **uv_env.vars, **extra}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_concurrent_runs_create_the_environment_once(project_class, tmp_path, uv_env):
    projects = [make(project_class(tmp_path / f"p{i}"), f"p{i}") for i in range(2)]
    # creation made slow, so the second run arrives while the first is creating
    procs = [_start(p, uv_env, UV_TEST_SLOW="venv", UV_TEST_SLEEP="1") for p in projects]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert uv_env.calls("venv") == 2  # train and other, each made by one of the two runs
    assert len(uv_env.environments()) == 2 and uv_env.leftovers() == []
    assert probe(projects[0], "fit")["prefix"] == probe(projects[1], "fit")["prefix"]


def test_an_interrupted_creation_leaves_nothing_that_passes_for_an_environment(project, uv_env):
    make(project)
    proc = _start(project, uv_env, UV_TEST_SLOW="pip sync", UV_TEST_SLEEP="30")
    deadline = time.monotonic() + 60
    while uv_env.calls("pip sync") == 0:
        assert time.monotonic() < deadline and proc.poll() is None, "the run never reached pip sync"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # flowml and the uv it runs, mid-install
    proc.communicate()
    assert uv_env.environments() == [] and uv_env.leftovers()
    listed = project.flowml("env", "list", "--json", env=uv_env.vars).json
    assert listed["environments"] == []
    run(project, uv_env)  # the next run makes it afresh, clearing what the killed one left
    assert probe(project, "fit")["flowtiny"] == 1
    assert uv_env.leftovers() == []


@pytest.mark.parametrize("environment, files, expect, field", [
    ('{python: {requirements: requirements.txt, version: "banana"}}', {"requirements.txt": "flowtiny\n"},
     ["expected a Python version such as", "'banana'"], "environments.train.python.version"),
    ("{python: {requirements: requirements.txt, version: 3.10}}", {"requirements.txt": "flowtiny\n"},
     ['expected a quoted version such as "3.11"', "the number 3.1"], "environments.train.python.version"),
    ('{python: {requirements: requirements.txt, version: "3.99"}}', {"requirements.txt": "flowtiny\n"},
     ["no Python 3.99 on this machine"], "environments.train.python.version"),
    ("{python: {requirements: requirements.txt}}", {"requirements.txt": "flowtiny\nnosuchpackage\n"},
     ["cannot resolve requirements.txt", "nosuchpackage"], "environments.train.python.requirements"),
    ("{python: {requirements: reqs/}}", {"reqs/a.txt": "flowtiny\n"},
     ["requirements file 'reqs/' is a folder"], "environments.train.python.requirements"),
], ids=["version-not-a-version", "version-unquoted", "version-not-installed", "unresolvable", "requirements-a-folder"])
def test_bad_input_is_an_error_before_anything_is_made(project, uv_env, environment, files, expect, field):
    project.pipeline(f"name: t\nenvironments:\n  train: {environment}\nsteps:\n  a: {{run: echo hi, env: train}}\n")
    for rel, text in files.items():
        project.write(rel, text)
    before = sorted(p.name for p in project.root.iterdir())
    res = project.flowml("run", env=uv_env.vars)
    assert res.code == 2 and "Traceback" not in res.err, res.err
    assert "pipeline.yaml:3:" in res.err and field in res.err, res.err
    for text in expect:
        assert text in res.err, res.err
    assert sorted(p.name for p in project.root.iterdir()) == before  # no .flowml/
    assert uv_env.environments() == [] and uv_env.leftovers() == []


@pytest.mark.slow
def test_env_prune_removes_the_unused_and_keeps_what_a_run_holds(project_class, tmp_path, uv_env):
    gone = make(project_class(tmp_path / "gone"), "gone", requirements="flowtiny==2.0\n")
    kept = make(project_class(tmp_path / "kept"), "kept")
    run(gone, uv_env)
    run(kept, uv_env)
    envs = {e["path"]: e for e in kept.flowml("env", "list", "--json", env=uv_env.vars).json["environments"]}
    gone_env, kept_env = probe(gone, "fit")["prefix"], probe(kept, "fit")["prefix"]
    assert len(envs) == 3  # flowtiny 2.0, flowtiny 1.0, and flowother shared by both

    dry = kept.flowml("env", "prune", "--all", "--dry-run", "--json", env=uv_env.vars).json
    assert {r["action"] for r in dry} == {"would remove"} and len(dry) == 3
    assert len(uv_env.environments()) == 3

    import shutil

    shutil.rmtree(gone.root)  # no project that used flowtiny 2.0 exists any more
    pruned = kept.flowml("env", "prune", "--json", env=uv_env.vars).json
    assert [(r["key"], r["action"]) for r in pruned] == [(os.path.basename(gone_env), "removed")]
    assert not os.path.exists(gone_env) and os.path.exists(kept_env)

    # a run in progress holds the environment of its running step: --all keeps it (the run
    # makes the others when their first step starts, so those may go)
    kept.write("probe.py", PROBE + "import time, pathlib\npathlib.Path('started').touch()\n"
                                   "while not pathlib.Path('go').exists(): time.sleep(0.05)\n")
    proc = _start(kept, uv_env)
    try:
        kept.wait_for("started", timeout=60)
        held = {r["key"]: r for r in kept.flowml("env", "prune", "--all", "--json", env=uv_env.vars).json}
        running = held[os.path.basename(kept_env)]
        assert (running["action"], running["reason"]) == ("kept", "in use by a running process")
    finally:
        (kept.root / "go").touch()
        _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err  # the environments pruned meanwhile were made again for their steps
    assert os.path.exists(kept_env)
    out = kept.flowml("env", "prune", "--all", env=uv_env.vars)
    assert out.code == 0 and "removed" in out.out and "environment(s), freed" in out.out
    assert uv_env.environments() == [] and uv_env.leftovers() == []
    assert "no environments in" in kept.flowml("env", "list", env=uv_env.vars).out


def test_a_run_of_cache_hits_makes_no_environment(project, uv_env):
    """What a second machine sharing the cache wants: steps that do not run need no environment."""
    make(project)
    run(project, uv_env)
    assert project.flowml("env", "prune", "--all", env=uv_env.vars).code == 0
    assert uv_env.environments() == []
    again = run(project, uv_env)
    assert set(statuses(again).values()) == {"cached"}
    assert uv_env.environments() == []


def test_env_prune_by_age(project, uv_env):
    make(project)
    run(project, uv_env)
    month_ago = time.time() - 31 * 86400
    for env in uv_env.folder.iterdir():
        meta = env / "flowml-env.json"
        if meta.exists():
            meta.write_text(json.dumps({**json.loads(meta.read_text()), "created": month_ago}))
            for user in (env / ".flowml-users").iterdir():
                os.utime(user, (month_ago, month_ago))
    assert project.flowml("env", "prune", "--days", "40", "--json", env=uv_env.vars).json == []
    pruned = project.flowml("env", "prune", "--days", "30", "--json", env=uv_env.vars).json
    assert {r["reason"] for r in pruned} == {"not used for 30 days"} and len(pruned) == 2
    assert uv_env.environments() == []


def test_a_failed_creation_says_why_and_leaves_nothing(project, uv_env, tmp_path, wheelhouse):
    """The lock was resolved while the wheel was there; by the time the environment is made the
    index no longer has it: uv's reason, exit 1, no environment, no run recorded."""
    import shutil

    make(project)
    project.write("other.txt", "")  # this index has only flowtiny
    index = tmp_path / "index"
    index.mkdir()
    shutil.copy(wheelhouse / "flowtiny-1.0-py3-none-any.whl", index)
    variables = {**uv_env.vars, "PIP_FIND_LINKS": str(index), "UV_CACHE_DIR": str(tmp_path / "uv-cache")}
    assert project.flowml("status", env=variables).code == 0  # resolves, makes nothing
    (index / "flowtiny-1.0-py3-none-any.whl").unlink()
    res = project.flowml("run", env=variables)
    assert res.code == 1 and "Traceback" not in res.err, res.err
    assert "environment train: installing the requirements failed" in res.err and "flowtiny" in res.err, res.err
    assert uv_env.calls("venv") == 1 and uv_env.environments() == [] and uv_env.leftovers() == []
