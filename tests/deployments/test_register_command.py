"""`flowml registry register`, the command a pipeline's register: step runs, used by hand."""

from __future__ import annotations


def test_registering_the_same_content_twice_returns_the_same_version(project, line_model):
    line_model(project.root / "model", 3.0)
    first = project.flowml("registry", "register", "model", "--name", "lines", "--alias", "candidate", "--json")
    assert first.code == 0, first.err
    again = project.flowml("registry", "register", "model", "--name", "lines", "--json")
    assert again.code == 0, again.err
    assert again.json["model_version"]["version"] == first.json["model_version"]["version"] == "1"
    assert first.json["model_version"]["aliases"] == ["candidate"]
    (project.root / "model" / "extra.txt").write_text("changed")
    assert project.flowml("registry", "register", "model", "--name", "lines").out.strip() == "lines version 2"


def test_a_folder_without_a_model_is_bad_input(project):
    (project.root / "empty").mkdir()
    res = project.flowml("registry", "register", "empty", "--name", "lines")
    assert res.code == 2 and "not a model directory" in res.err and "Traceback" not in res.err


def _predict(project, uri: str) -> str:
    project.write("in.csv", "x\n2.0\n")
    res = project.flowml("models", "predict", "-m", uri, "-i", "in.csv", "-o", "out.csv")
    assert res.code == 0, res.err
    return project.read("out.csv")


def test_a_version_keeps_the_files_registered_when_the_folder_changes(project, line_model):
    line_model(project.root / "model", 3.0)
    first = project.flowml("registry", "register", "model", "--name", "lines", "--json")
    assert first.code == 0, first.err
    source = first.json["model_version"]["source"]
    assert source.startswith("models:/m-") and str(project.root / "model") not in source
    served = _predict(project, "models:/lines/1")
    import shutil

    shutil.rmtree(project.root / "model")
    line_model(project.root / "model", 5.0)  # the workspace folder overwritten by another model
    assert project.flowml("registry", "register", "model", "--name", "lines").out.strip() == "lines version 2"
    assert _predict(project, "models:/lines/1") == served
    assert _predict(project, "models:/lines/2") != served
