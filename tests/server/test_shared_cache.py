"""A team's cache through a tracking server: a second clone of a project, with an empty
``.flowml/``, gets cache hits and restored outputs without running the steps."""

from __future__ import annotations

import os

PIPELINE = """\
name: shared
steps:
  prepare:
    run: "echo ran >> ../runs.log; python -c \\"open('data.txt','w').write('x' * 1000)\\""
    outputs: [data.txt]
  train:
    run: "echo ran >> ../runs.log; mkdir -p model && cp data.txt model/weights.bin && echo 0.9 > model/score"
    inputs: [data.txt]
    outputs: [model/]
"""


def clone(root, name, project_class):
    folder = root / name
    folder.mkdir()
    (folder / "pipeline.yaml").write_text(PIPELINE)
    return project_class(folder)


def test_a_second_clone_restores_from_the_server_without_running(server, tmp_path, project_class):
    env = {"FLOWML_TRACKING_URI": server.url}
    first = clone(tmp_path, "one", project_class)
    summary = first.run_json(env=env)
    assert summary["code"] == 0, summary["stderr"]
    assert {s["status"] for s in summary["steps"]} == {"ran"}

    second = clone(tmp_path, "two", project_class)
    again = second.run_json(env=env)
    assert again["code"] == 0, again["stderr"]
    assert {s["name"]: s["status"] for s in again["steps"]} == {"prepare": "cached", "train": "cached"}
    assert (tmp_path / "runs.log").read_text() == "ran\nran\n", "a step ran on the second clone"
    assert second.read("data.txt") == "x" * 1000
    assert second.read("model/weights.bin") == "x" * 1000 and second.read("model/score") == "0.9\n"
    # the cache hits are recorded on the server, pointing at the first clone's runs
    assert again["by_name"]["train"]["source_run_id"] == summary["by_name"]["train"]["run_id"]


def test_a_corrupted_object_on_the_server_is_not_restored(server, tmp_path, project_class):
    env = {"FLOWML_TRACKING_URI": server.url}
    first = clone(tmp_path, "one", project_class)
    first.pipeline(PIPELINE.replace("name: shared", "name: corrupt").replace("1000", "999"))
    assert first.run_json(env=env)["code"] == 0
    for dirpath, _dirs, files in os.walk(server.artifacts):
        if "flowml-objects" in dirpath:
            for name in files:
                os.chmod(os.path.join(dirpath, name), 0o644)
                with open(os.path.join(dirpath, name), "w") as fh:
                    fh.write("tampered")
    second = clone(tmp_path, "two", project_class)
    second.pipeline(PIPELINE.replace("name: shared", "name: corrupt").replace("1000", "999"))
    again = second.run_json(env=env)
    assert again["code"] == 0, again["stderr"]
    assert {s["status"] for s in again["steps"]} == {"ran"}  # nothing tampered was restored
    assert second.read("data.txt") == "x" * 999
