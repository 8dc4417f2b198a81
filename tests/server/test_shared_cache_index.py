"""The cache index and pipeline runs through a flowml server: ``flowml run`` with
``FLOWML_TRACKING_URI=http://...`` records its parent and child runs on the server and its cache
entries in the server's index, where every machine pointing at the server finds them.

On SQLite and on PostgreSQL as the server's store. Each test's pipeline has code of its own
(a token in its scripts), so that its cache keys are its own on the module's server.
test_shared_cache.py has more on a second clone restoring outputs from the server.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from flowml.cache.hashing import Content
from flowml.cache.index import CacheIndex, Entry
from flowml.tracking.rest import RestStore


PIPELINE = """\
    name: {name}
    params: {{alpha: 0.5}}
    steps:
      prepare:
        run: python prepare.py
        inputs: [raw.txt]
        outputs: [clean.txt]
      train:
        matrix: {{depth: [2, 4]}}
        run: python train.py ${{matrix.depth}} ${{params.alpha}}
        inputs: [clean.txt]
        outputs: ["model-${{matrix.depth}}.txt"]
        metrics: "metrics-${{matrix.depth}}.json"
    """
PREPARE = "print('preparing')\nopen('clean.txt', 'w').write(open('raw.txt').read().upper())\n"
TRAIN = """\
import json, sys
import flowml
depth, alpha = sys.argv[1], float(sys.argv[2])
for epoch in range(50):
    flowml.log_metric("loss", 1.0 / (epoch + 1) / alpha, step=epoch)
open(f"model-{depth}.txt", "w").write(depth)
json.dump({"rmse": int(depth) * alpha}, open(f"metrics-{depth}.json", "w"))
"""


@pytest.fixture
def remote(backend):
    store = RestStore(backend.url)
    yield store
    store.close()


def make_project(project_class, root: Path, token: str):
    """The pipeline, with ``token`` in its name and in its scripts (so in its cache keys)."""
    project = project_class(root)
    project.pipeline(PIPELINE.format(name=f"wine-{token}"))
    project.write("prepare.py", f"# {token}\n{PREPARE}")
    project.write("train.py", f"# {token}\n{TRAIN}")
    project.write("raw.txt", "grapes\n")
    return project


@pytest.fixture
def wine(project_class, tmp_path):
    return make_project(project_class, tmp_path / "clone-a", uuid.uuid4().hex[:8])


def run(project, backend, *args):
    summary = project.run_json(*args, env={"FLOWML_TRACKING_URI": backend.url})
    assert summary["code"] == 0, summary["stderr"]
    return summary


def test_a_pipeline_run_is_recorded_on_the_server(wine, backend, remote):
    summary = run(wine, backend)
    assert not (wine.root / ".flowml" / "flowml.db").exists()  # no local store: everything went to the server
    parent = remote.get_run(summary["run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["flowml.type"] == "pipeline"
    assert parent.data.params == {"alpha": "0.5"}
    assert parent.data.metrics["steps_ran"] == 3
    assert remote.get_experiment(parent.info.experiment_id).name == summary["pipeline"]
    children = {c.data.tags["flowml.node"]: c for c in remote.child_runs(parent.info.run_id)}
    assert sorted(children) == ["prepare", "train[depth=2]", "train[depth=4]"]
    for name, child in children.items():
        step = summary["by_name"][name]
        assert child.info.run_id == step["run_id"] and child.info.status == "FINISHED"
        assert child.data.tags["flowml.cache_key"] == step["cache_key"]
    train = children["train[depth=4]"]
    assert train.data.params == {"alpha": "0.5", "depth": "4"}
    assert train.data.metrics["rmse"] == 2.0
    # logged from inside the step, buffered there, all on the server when the step ended
    assert [m.step for m in remote.get_metric_history(train.info.run_id, "loss")] == list(range(50))


def test_cache_entries_are_in_the_servers_index(wine, backend, remote):
    summary = run(wine, backend)
    for name, step in summary["by_name"].items():
        record = remote.get_cache_entry(step["cache_key"])
        assert record is not None, name
        assert record.node == name and record.run_id == step["run_id"]
        assert {path: content["digest"] for path, content in json.loads(record.outputs).items()} == step["outputs"]
    index = CacheIndex(backend.url, str(wine.root))  # as the cache layer reads it
    entry = index.get(summary["by_name"]["train[depth=2]"]["cache_key"])
    assert entry.metrics == {"rmse": 1.0} and set(entry.outputs) == {"model-2.txt", "metrics-2.json"}


def test_a_second_run_in_the_same_folder_is_a_no_op(wine, backend, remote):
    first = run(wine, backend)
    exp_id = remote.get_run(first["run_id"]).info.experiment_id
    before = remote.search_runs([exp_id])[0]
    again = run(wine, backend)
    assert again["run_id"] is None
    assert {s["status"] for s in again["steps"]} == {"cached"}
    assert len(remote.search_runs([exp_id])[0]) == len(before) == 4
    changed = run(wine, backend, "-P", "alpha=0.25")  # train reruns; prepare is a hit, recorded as such
    assert changed["by_name"]["prepare"]["status"] == "cached"
    hit = remote.get_run(changed["by_name"]["prepare"]["run_id"])
    assert hit.data.tags["flowml.cache_hit"] == "true"
    assert hit.data.tags["flowml.cache_source_run"] == first["by_name"]["prepare"]["run_id"]


def test_the_cache_index_api_over_http(backend, tmp_path):
    index = CacheIndex(backend.url, str(tmp_path))
    key = uuid.uuid4().hex
    content = Content("ab" * 16)
    entry = Entry(key, "node", {"command": "x"}, {"out.txt": content}, {"acc": 0.5}, 1.25, None)
    assert index.get(key) is None
    index.put("pipe", entry)
    got = index.get(key)
    assert (got.key, got.node, got.manifest, got.metrics, got.duration_s) == (key, "node", {"command": "x"},
                                                                              {"acc": 0.5}, 1.25)
    assert got.outputs["out.txt"].digest == content.digest
    assert index.output_digests({key}) == {content.digest}
    assert content.digest in index.output_digests()
    assert index.drop_except({key}, dry_run=True) >= 0
    assert index.get(key) is not None


def test_gc_works_against_a_shared_index_and_refuses_to_drop_entries_there(wine, backend):
    run(wine, backend)
    res = wine.flowml("gc", "--dry-run", env={"FLOWML_TRACKING_URI": backend.url})
    assert res.code == 0, res.err
    assert "would remove 0 superseded entries, 0 objects" in res.out
    res = wine.flowml("gc", "--superseded", env={"FLOWML_TRACKING_URI": backend.url})
    assert res.code == 1 and "shared" in res.err


def test_a_second_clone_gets_cache_hits_and_outputs_from_the_server(wine, backend, remote, project_class, tmp_path):
    first = run(wine, backend)
    token = first["pipeline"].split("-", 1)[1]
    clone = make_project(project_class, tmp_path / "clone-b", token)
    second = run(clone, backend)
    assert not list(wine.root.glob("mlflow-artifacts*"))  # artifacts went to the server, not to a local folder
    assert {s["status"] for s in second["steps"]} == {"cached"}
    assert (clone.root / "model-4.txt").read_text() == "4"
    hit = remote.get_run(second["by_name"]["train[depth=4]"]["run_id"])
    assert hit.data.tags["flowml.cache_source_run"] == first["by_name"]["train[depth=4]"]["run_id"]
