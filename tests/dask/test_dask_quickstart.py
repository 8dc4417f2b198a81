"""The quickstart example (examples/quickstart: prepare, train over a matrix of three, evaluate,
register) run unchanged with ``flowml run --executor dask`` against the module's cluster and
server (conftest.py), and compared with a local run of the same files.

The project is run once for the module: each test checks one thing of that run.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("distributed")
pytest.importorskip("sklearn")
pytest.importorskip("skops")

from flowml.tracking.client import FlowmlClient  # noqa: E402
from flowml.tracking.stores import default_uri  # noqa: E402
from tests.dask.conftest import dask_run  # noqa: E402

pytestmark = pytest.mark.slow  # the example twice (on the cluster and locally): about 25 s here

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quickstart"
STEPS = {"prepare", "train[max_depth=2]", "train[max_depth=4]", "train[max_depth=8]", "evaluate", "register"}
SAME_BYTES = ["data/train.csv", "data/test.csv", "metrics.json",
              *(f"models/depth-{d}/{f}" for d in (2, 4, 8) for f in ("model.pkl", "params.json")),
              *(f"best_model/{f}" for f in ("info.json", "input_example.json", "serving_input_example.json",
                                            "requirements.txt", "python_env.yaml", "conda.yaml"))]
MOMENT = ("model_uuid", "utc_time_created")  # what differs between any two saves of one model


def copy_example(project_class, folder: Path):
    """The example's committed files (what a fresh clone holds: no outputs, no store) in ``folder``."""
    listed = subprocess.run(["git", "ls-files", "."], cwd=EXAMPLE, capture_output=True, text=True, check=True)
    for rel in listed.stdout.split():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(EXAMPLE / rel, folder / rel)
    return project_class(folder)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, project_class, cluster, server):
    """The example run on the cluster (with the steps each worker ran for it), and run locally
    in a copy of its own with a local store."""
    remote = copy_example(project_class, tmp_path_factory.mktemp("quickstart-dask"))
    remote.env = {"FLOWML_TRACKING_URI": server.url}
    before = cluster.executed()
    summary = dask_run(remote, cluster)
    ran = {folder: keys - before[folder] for folder, keys in cluster.executed().items()}
    local = copy_example(project_class, tmp_path_factory.mktemp("quickstart-local"))
    local_summary = local.run_json(env={"FLOWML_TRACKING_URI": ""})  # its own store in .flowml/
    return {"remote": remote, "summary": summary, "ran": ran, "local": local, "local_summary": local_summary}


def test_every_step_runs_on_the_workers(runs):
    summary = runs["summary"]
    assert summary["code"] == 0, summary["stderr"]
    assert {name: s["status"] for name, s in summary["by_name"].items()} == dict.fromkeys(STEPS, "ran")
    ran = runs["ran"]
    assert sum(len(keys) for keys in ran.values()) == len(STEPS)  # one task per step, none on the client
    assert all(ran.values()), ran  # the three train steps at once: both workers had some


def test_the_outputs_equal_a_local_runs(runs, server):
    remote, local = runs["remote"], runs["local"]
    assert runs["local_summary"]["code"] == 0, runs["local_summary"]["stderr"]
    for rel in SAME_BYTES:
        assert _digest(remote.root / rel) == _digest(local.root / rel), rel
    assert _mlmodel(remote.root) == _mlmodel(local.root)
    assert _predictions(remote.root) == _predictions(local.root)  # model.skops: same model, other zip dates
    stores = ((server.url, runs["summary"]), (default_uri(str(local.root)), runs["local_summary"]))
    metrics = [FlowmlClient(uri).get_run(summary["by_name"]["evaluate"]["run_id"]).data.metrics
               for uri, summary in stores]
    assert metrics[0] == metrics[1] and set(metrics[0]) == {"accuracy", "best_max_depth", "f1_macro"}


def test_the_model_is_registered_on_the_server(runs, server, monkeypatch):
    from flowml.registry import RegistryClient

    version = RegistryClient(server.url).get_model_version_by_alias("wine", "candidate")
    assert version.run_id == runs["summary"]["by_name"]["register"]["run_id"]
    assert version.tags["flowml.model_step"] == "evaluate"
    monkeypatch.setenv("FLOWML_TRACKING_URI", server.url)
    assert _predictions(runs["local"].root, "models:/wine@candidate") == _predictions(runs["local"].root)


def test_a_rerun_is_all_cache_hits_and_submits_nothing(runs, cluster):
    remote = runs["remote"]
    before = cluster.transitions()
    again = dask_run(remote, cluster)
    assert again["code"] == 0, again["stderr"]
    assert {name: s["status"] for name, s in again["by_name"].items()} == dict.fromkeys(STEPS, "cached")
    assert cluster.transitions() == before


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _mlmodel(root: Path) -> dict:
    import yaml

    described = yaml.safe_load((root / "best_model" / "MLmodel").read_text())
    return {k: v for k, v in described.items() if k not in MOMENT}


def _predictions(root: Path, model: str | None = None) -> list[int]:
    """A model's predictions on the project's test set (its best model unless ``model``)."""
    import numpy as np

    import flowml.pyfunc

    table = np.genfromtxt(root / "data" / "test.csv", delimiter=",", names=True)
    features = np.column_stack([table[n] for n in table.dtype.names if n != "target"])
    return [int(p) for p in flowml.pyfunc.load_model(str(model or root / "best_model")).predict(features)]
