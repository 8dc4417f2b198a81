"""``flowml registry`` end to end, as a subprocess in a project folder (the embedded store),
and against a tracking server with ``--tracking-uri``."""

from __future__ import annotations

import subprocess
import sys

import pytest

REGISTER = """\
import sys
from flowml.registry import RegistryClient

rc = RegistryClient(sys.argv[1] if len(sys.argv) > 1 else None)
lineage = {"step": "train", "run_id": "a" * 32, "pipeline_run_id": "b" * 32, "cache_key": "k" * 64,
           "input_digests": {"data/train.csv": "d-train", "src/train.py": "d-code"}}
for content in ("one", "two"):
    open("model/MLmodel", "w").write(content)
    print(rc.register("model", "wine", lineage=lineage, alias="candidate").version)
"""


def _with_wine(project):
    """``project`` with the model wine in its embedded store: versions 1 and 2, alias candidate on 2."""
    project.write("register.py", REGISTER)
    (project.root / "model").mkdir()
    proc = subprocess.run([sys.executable, "register.py"], cwd=project.root, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and proc.stdout.split() == ["1", "2"], proc.stderr
    return project


@pytest.fixture
def wine(project):
    return _with_wine(project)


@pytest.fixture(scope="module")
def untouched_wine(project_class, tmp_path_factory):
    """The same, shared by the tests that change nothing."""
    return _with_wine(project_class(tmp_path_factory.mktemp("wine")))


def test_list_versions_and_describe_with_lineage(wine):
    listed = wine.flowml("registry", "list")
    assert listed.code == 0, listed.err
    assert "wine" in listed.out and "candidate -> 2" in listed.out
    as_json = wine.flowml("registry", "list", "--filter", "name LIKE 'w%'", "--json").json
    assert [m["name"] for m in as_json["registered_models"]] == ["wine"]
    versions = wine.flowml("registry", "versions", "wine", "--json").json["model_versions"]
    assert [v["version"] for v in versions] == ["2", "1"] and versions[0]["aliases"] == ["candidate"]
    shown = wine.flowml("registry", "describe", "wine/1")
    assert shown.code == 0, shown.err
    for expected in ("train", "a" * 32, "b" * 32, "k" * 64, "data/train.csv", "d-train", "src/train.py", "d-code"):
        assert expected in shown.out
    described = wine.flowml("registry", "describe", "wine/2", "the better one", "--json").json["model_version"]
    assert described["description"] == "the better one"
    assert described["flowml_lineage"]["input_digests"] == {"data/train.csv": "d-train", "src/train.py": "d-code"}
    model = wine.flowml("registry", "describe", "wine", "Wine quality")
    assert model.code == 0 and "Wine quality" in model.out


def test_alias_tag_stage_and_delete(wine):
    assert wine.flowml("registry", "alias", "wine", "production", "1").code == 0
    assert wine.flowml("registry", "tag", "wine/1", "checked", "yes").code == 0
    assert wine.flowml("registry", "tag", "wine", "team", "fraud").code == 0
    assert wine.flowml("registry", "stage", "wine/1", "staging").code == 0
    version = wine.flowml("registry", "describe", "wine/1", "--json").json["model_version"]
    assert (version["aliases"], version["tags"], version["current_stage"]) == \
        (["production"], [{"key": "checked", "value": "yes"}], "Staging")
    assert wine.flowml("registry", "alias", "wine", "production", "--delete").code == 0
    assert wine.flowml("registry", "tag", "wine", "team", "--delete").code == 0
    model = wine.flowml("registry", "describe", "wine", "--json").json["registered_model"]
    assert model["aliases"] == [{"alias": "candidate", "version": "2"}] and model["tags"] == []
    assert wine.flowml("registry", "delete", "wine/1").code == 0
    refused = wine.flowml("registry", "delete", "wine")  # no terminal to ask on: --yes is needed
    assert refused.code == 2 and "--yes" in refused.err and "1 version" in refused.err
    assert wine.flowml("registry", "delete", "wine", "--yes").code == 0
    assert wine.flowml("registry", "list", "--json").json == {"registered_models": []}


@pytest.mark.parametrize("args, message", [
    (("describe", "wien"), "did you mean 'wine'"),
    (("describe", "wine/9"), "has no version 9"),
    (("describe", "wine/x"), "expected NAME[/VERSION]"),
    (("alias", "wine", "latest", "1"), "reserved"),
    (("alias", "wine", "prod"), "give a VERSION"),
    (("tag", "wine/1", "k"), "give a VALUE"),
    (("stage", "wine", "production"), "expected NAME/VERSION"),
    (("stage", "wine/1", "live"), "invalid stage 'live'"),
    (("list", "--filter", "name < 'a'"), "position 5"),
])
def test_bad_input_is_one_line_and_exit_code_2(untouched_wine, args, message):
    res = untouched_wine.flowml("registry", *args)
    assert res.code == 2, res.err
    assert message in res.err and "Traceback" not in res.err


def test_against_a_tracking_server(project, server_factory, tmp_path):
    server = server_factory(tmp_path / "server")
    try:
        project.write("register.py", REGISTER)
        (project.root / "model").mkdir()
        proc = subprocess.run([sys.executable, "register.py", server.url], cwd=project.root, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0 and proc.stdout.split() == ["1", "2"], proc.stderr
        shown = project.flowml("registry", "describe", "wine/1", "--tracking-uri", server.url)
        assert shown.code == 0 and "d-train" in shown.out and "pipeline run" in shown.out, shown.err
        assert project.flowml("registry", "alias", "wine", "prod", "1", "--tracking-uri", server.url).code == 0
        listed = project.flowml("registry", "list", "--json", env={"FLOWML_TRACKING_URI": server.url}).json
        assert listed["registered_models"][0]["aliases"] == [{"alias": "candidate", "version": "2"},
                                                              {"alias": "prod", "version": "1"}]
        assert not (project.root / ".flowml").exists()  # nothing went to an embedded store
    finally:
        server.stop()
