"""Environment kinds from plugins: a package that registers a kind under the
``flowml.environments`` entry-point group is found (the core never names it), its ``wrap`` and
``process_env`` shape the step's process and its fingerprint enters the step's cache key."""

from __future__ import annotations

import os

PLUGIN = """\
import os

from flowml.environments import Environment


class StubConda(Environment):
    def fingerprint(self):
        with open(os.path.join(self.root, self.config["file"])) as fh:
            return "stub-" + fh.read().strip()

    def process_env(self, env):
        env["STUB_ENV"] = self.name
        return env

    def wrap(self, argv):
        return ["env", "STUB_WRAPPED=1", *argv]
"""

PIPELINE = """\
name: plugged
environments:
  legacy: {conda: {file: environment.yml}}
steps:
  inside:
    run: echo "$STUB_ENV $STUB_WRAPPED" > inside.txt
    env: legacy
    outputs: [inside.txt]
  outside:
    run: echo "${STUB_ENV:-none}" > outside.txt
    outputs: [outside.txt]
"""


def _install_plugin(folder) -> dict[str, str]:
    """A plugin distribution on PYTHONPATH: its module and a dist-info with the entry point."""
    (folder / "stub_conda.py").write_text(PLUGIN)
    info = folder / "flowml_stub_conda-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: flowml-stub-conda\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[flowml.environments]\nconda = stub_conda:StubConda\n")
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}


def test_a_kind_registered_by_a_plugin_runs_steps_and_keys_their_cache(project, tmp_path_factory):
    plugin = _install_plugin(tmp_path_factory.mktemp("plugin"))
    project.pipeline(PIPELINE)
    project.write("environment.yml", "dependencies: [python=3.11]\n")
    first = project.run_json("--no-track", env=plugin)
    assert first["code"] == 0, first["stderr"]
    assert project.read("inside.txt").split() == ["legacy", "1"] and project.read("outside.txt").strip() == "none"

    project.write("environment.yml", "dependencies: [python=3.12]\n")  # the environment's fingerprint changes
    second = project.run_json("--no-track", env=plugin)
    assert {n: s["status"] for n, s in second["by_name"].items()} == {"inside": "ran", "outside": "cached"}
    assert "environment legacy changed" in second["by_name"]["inside"]["reason"]


def _hide_installed(folder, name: str = "flowml-conda") -> dict[str, str]:
    """A distribution of the same name without entry points, first on PYTHONPATH: importlib.metadata
    reads only the first distribution of a name, so the installed plugin's kind disappears."""
    info = folder / f"{name.replace('-', '_')}-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0\n")
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}


def test_without_the_plugin_the_kind_names_the_package_to_install(project, tmp_path_factory):
    project.pipeline(PIPELINE)
    project.write("environment.yml", "dependencies: [python=3.11]\n")
    res = project.flowml("run", env=_hide_installed(tmp_path_factory.mktemp("hidden")))
    assert res.code == 2 and "Traceback" not in res.err
    assert "pipeline.yaml:3:" in res.err and "environment kind 'conda' is not available" in res.err
    assert "pip install flowml-conda" in res.err
