"""What ``flowml run TARGET`` finds at TARGET (units of flowml.projects.source): a pipeline.yaml
before an MLproject, an MLproject file named in any case, ``#subdir`` on a local folder, and
a subfolder that would leave the project refused."""

from __future__ import annotations

import pytest

from flowml.errors import SpecError
from flowml.projects.source import open_project


def test_a_folder_runs_its_pipeline_yaml_else_its_mlproject(tmp_path, monkeypatch):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "mlproject").write_text("name: x\n")  # MLflow matches the name in any case
    found = open_project(str(tmp_path / "proj"))
    assert found.mlproject == str(tmp_path / "proj" / "mlproject") and found.pipeline is None
    assert found.entry_point == "main" and found.name == "proj" and not found.fetched

    monkeypatch.chdir(tmp_path / "proj")  # a bare `flowml run` by an MLproject runs it
    assert open_project("pipeline.yaml").mlproject == str(tmp_path / "proj" / "mlproject")
    assert open_project("mlproject", entry_point="train").entry_point == "train"  # the file itself

    (tmp_path / "proj" / "pipeline.yaml").write_text("name: x\n")
    found = open_project(str(tmp_path / "proj"))
    assert found.pipeline == str(tmp_path / "proj" / "pipeline.yaml") and found.mlproject is None


def test_a_local_subfolder_and_one_that_leaves_the_project(tmp_path):
    (tmp_path / "repo" / "models" / "train").mkdir(parents=True)
    (tmp_path / "repo" / "models" / "train" / "MLproject").write_text("name: x\n")
    found = open_project(f"{tmp_path / 'repo'}#models/train")
    assert found.folder == str(tmp_path / "repo" / "models" / "train") and found.mlproject
    for bad in ("../elsewhere", "/etc", "a/../../b"):
        with pytest.raises(SpecError, match="must name a folder inside the project"):
            open_project(f"{tmp_path / 'repo'}#{bad}")


def test_a_missing_file_is_left_to_the_pipeline_loader(tmp_path):
    found = open_project(str(tmp_path / "nothing.yaml"))
    assert found.pipeline == str(tmp_path / "nothing.yaml") and found.mlproject is None
