"""python (uv) environments with local requirements, through ``flowml run``: a package folder
named relative to the requirements file (``../mypkg``, ``-e ./mypkg``, ``-e .``) and a relative
``--find-links`` install from any folder; editing the package makes a new environment and
reruns exactly the steps that use it, with the new code; an editable package is never shared
with another project's folder of the same content; the project's own outputs beside an
``-e .`` package do not count as its source."""

from __future__ import annotations

import json
from pathlib import Path

from tests.environments.conftest import build_wheel, write_local_package

PROBE = """\
import json, sys
import mypkg
out = {"value": mypkg.VALUE, "file": mypkg.__file__, "prefix": sys.prefix}
try:
    import flowlocal
    out["local"] = flowlocal.LOCAL
except ImportError:
    pass
print(json.dumps(out))
"""

PIPELINE = """\
name: {name}
environments:
  train: {{python: {{requirements: {requirements}}}}}
steps:
  fit:
    run: python probe.py > fit.json
    env: train
    outputs: [fit.json]
  plain:
    run: echo plain > plain.txt
    outputs: [plain.txt]
"""


def make(project, requirements_path: str, requirements: str, name: str = "demo"):
    project.pipeline(PIPELINE.format(name=name, requirements=requirements_path))
    project.write("probe.py", PROBE)
    project.write(requirements_path, requirements)
    return project


def run(project, uv_env, *args):
    summary = project.run_json(*args, env=uv_env.vars)
    assert summary["code"] == 0, summary["stderr"]
    return {name: step["status"] for name, step in summary["by_name"].items()}


def fit(project) -> dict:
    return json.loads(project.read("fit.json"))


def test_a_relative_package_and_find_links_install_and_an_edit_reruns_the_step(project, uv_env):
    # the requirements file sits in a subfolder: its paths are read against that folder
    make(project, "env/requirements.txt", "--find-links ./wheels\nflowlocal==1.0\n../mypkg\n")
    (project.root / "env" / "wheels").mkdir()
    build_wheel(project.root / "env" / "wheels", "flowlocal", "1.0", "LOCAL = 1\n")  # not in pip's wheelhouse
    write_local_package(project.root / "mypkg", "mypkg", "VALUE = 1\n")
    assert run(project, uv_env) == {"fit": "ran", "plain": "ran"}
    first = fit(project)
    assert first["value"] == 1 and first["local"] == 1
    assert first["file"].startswith(first["prefix"])  # installed, not read from the source folder
    lock = (Path(first["prefix"]) / "requirements.lock").read_text()
    assert str(project.root / "mypkg") in lock and "./wheels" not in lock.replace(str(project.root), "")
    compiles = uv_env.calls("pip compile")
    assert run(project, uv_env) == {"fit": "cached", "plain": "cached"}
    assert uv_env.calls("pip compile") == compiles  # the package unchanged: nothing resolved again

    project.write("mypkg/mypkg/__init__.py", "VALUE = 2\n")
    plan = {r["name"]: r for r in project.flowml("status", "--json", env=uv_env.vars).json}
    assert plan["fit"]["will_run"] and not plan["plain"]["will_run"]
    assert any("environment train changed" in reason for reason in plan["fit"]["reasons"])
    assert run(project, uv_env) == {"fit": "ran", "plain": "cached"}
    second = fit(project)
    assert second["value"] == 2 and second["prefix"] != first["prefix"]


def test_an_editable_package_is_its_projects_own_and_an_edit_reruns_the_step(project_class, tmp_path, uv_env):
    first, second = (make(project_class(tmp_path / n), "requirements.txt", "-e ./mypkg\n", n) for n in ("one", "two"))
    for p in (first, second):  # the same files in two folders
        write_local_package(p.root / "mypkg", "mypkg", "VALUE = 1\n")
        assert run(p, uv_env)["fit"] == "ran"
    assert fit(first)["prefix"] != fit(second)["prefix"]
    for p in (first, second):
        assert fit(p)["file"] == str(p.root / "mypkg" / "mypkg" / "__init__.py")  # editable: the source itself

    first.write("mypkg/mypkg/__init__.py", "VALUE = 2\n")
    assert run(first, uv_env) == {"fit": "ran", "plain": "cached"}
    assert fit(first)["value"] == 2
    assert run(second, uv_env) == {"fit": "cached", "plain": "cached"}
    assert run(first, uv_env, "--force-all")["fit"] == "ran" and fit(first)["value"] == 2


def test_the_projects_own_outputs_do_not_change_an_editable_project_package(project, uv_env):
    """``-e .``: the pipeline's folder is the package; a step writing new bytes each run must
    not make a new environment, while an edit of the code does."""
    make(project, "requirements.txt", "-e .\n")
    write_local_package(project.root, "mypkg", "VALUE = 1\n")
    project.pipeline(PIPELINE.format(name="self", requirements="requirements.txt").replace(
        "echo plain > plain.txt", "python -c 'import uuid; print(uuid.uuid4())' > plain.txt"))
    assert run(project, uv_env) == {"fit": "ran", "plain": "ran"}
    project.write("data/notes.txt", "data beside the code\n")
    assert run(project, uv_env) == {"fit": "cached", "plain": "cached"}
    project.write("mypkg/__init__.py", "VALUE = 3\n")
    assert run(project, uv_env) == {"fit": "ran", "plain": "cached"}
    assert fit(project)["value"] == 3
