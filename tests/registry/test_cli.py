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


@pytest.fixture
def in_process(wine, monkeypatch):
    """``flowml ARGS`` run in this process by click's runner, in the project (fast enough for a
    long sequence of commands); returns its output and checks that it succeeded."""
    import json

    from click.testing import CliRunner

    from flowml.cli import cli
    from flowml.tracking import stores

    monkeypatch.chdir(wine.root)
    monkeypatch.setattr(stores, "_stores", {})
    monkeypatch.delenv("FLOWML_TRACKING_URI", raising=False)

    def run(*args: str):
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return json.loads(result.output) if "--json" in args else result.output

    yield run
    for opened in stores._stores.values():
        opened.close()


def test_alias_tag_stage_and_delete(wine, in_process):
    assert in_process("registry", "alias", "wine", "production", "1") == "wine@production -> version 1\n"
    in_process("registry", "tag", "wine/1", "checked", "yes")
    in_process("registry", "tag", "wine", "team", "fraud")
    assert "now in stage Staging" in in_process("registry", "stage", "wine/1", "staging")
    version = in_process("registry", "describe", "wine/1", "--json")["model_version"]
    assert (version["aliases"], version["tags"], version["current_stage"]) == \
        (["production"], [{"key": "checked", "value": "yes"}], "Staging")
    in_process("registry", "alias", "wine", "production", "--delete")
    in_process("registry", "tag", "wine", "team", "--delete")
    model = in_process("registry", "describe", "wine", "--json")["registered_model"]
    assert model["aliases"] == [{"alias": "candidate", "version": "2"}] and model["tags"] == []
    in_process("registry", "delete", "wine/1")
    refused = wine.flowml("registry", "delete", "wine")  # no terminal to ask on: --yes is needed
    assert refused.code == 2 and "--yes" in refused.err and "1 version" in refused.err
    in_process("registry", "delete", "wine", "--yes")
    assert in_process("registry", "list", "--json") == {"registered_models": []}


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
        (project.root / "model").mkdir()
        for content in ("one", "two"):
            (project.root / "model" / "MLmodel").write_text(content)
            made = project.flowml("registry", "register", "model", "-n", "wine", "--alias", "candidate", "--json",
                                  "--tracking-uri", server.url)
            assert made.code == 0, made.err
        source = made.json["model_version"]["source"]
        assert made.json["model_version"]["version"] == "2" and source.startswith("models:/m-")
        copied = list(server.artifacts.rglob(f"{source.split('/')[-1]}/artifacts/MLmodel"))
        assert [p.read_text() for p in copied] == ["two"]  # the server holds the files, not a client's path
        shown = project.flowml("registry", "describe", "wine/1", "--tracking-uri", server.url)
        assert shown.code == 0 and "models:/m-" in shown.out, shown.err
        assert project.flowml("registry", "alias", "wine", "prod", "1", "--tracking-uri", server.url).code == 0
        listed = project.flowml("registry", "list", "--json", env={"FLOWML_TRACKING_URI": server.url}).json
        assert listed["registered_models"][0]["aliases"] == [{"alias": "candidate", "version": "2"},
                                                              {"alias": "prod", "version": "1"}]
        assert not (project.root / ".flowml").exists()  # nothing went to an embedded store
    finally:
        server.stop()
