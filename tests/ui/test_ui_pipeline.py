"""A pipeline run's page: the DAG of the quickstart's runs in the browser, and over HTTP."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from playwright.sync_api import expect

from tests.ui.conftest import XSS, experiment_id, shot

STEPS = {"prepare", "train[max_depth=2]", "train[max_depth=4]", "train[max_depth=8]", "evaluate", "register"}
API = "/api/2.0/mlflow"


def _search(url: str, experiment: str, filter: str, order: str = "attributes.start_time ASC") -> list[dict]:
    reply = httpx.post(f"{url}{API}/runs/search", json={"experiment_ids": [experiment], "filter": filter,
                                                         "order_by": [order], "max_results": 100})
    reply.raise_for_status()
    return reply.json().get("runs", [])


def _tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


@pytest.fixture(scope="module")
def pipelines(ui_url) -> list[dict]:
    """The quickstart's three pipeline runs, oldest first."""
    found = _search(ui_url, experiment_id(ui_url, "quickstart"), "tags.flowml.type = 'pipeline'")
    assert len(found) == 3
    return found


def _steps(url: str, pipeline: dict) -> dict[str, dict]:
    """A pipeline run's step runs by node name."""
    children = _search(url, pipeline["info"]["experiment_id"],
                       f"tags.mlflow.parentRunId = '{pipeline['info']['run_id']}'")
    return {_tags(c)["flowml.node"]: c for c in children}


def test_newest_run_draws_every_step_with_cache_hits_and_edges_and_a_click_opens_the_step(ui, ui_url, pipelines):
    newest = pipelines[-1]
    ui.goto(f"{ui_url}/runs/{newest['info']['run_id']}/pipeline")
    nodes = ui.locator("#dag .node")
    expect(nodes).to_have_count(6)
    assert {n.get_attribute("data-node") for n in nodes.all()} == STEPS
    expect(ui.locator("#dag .node.state-cached")).to_have_count(5)  # register always checks the registry
    expect(ui.locator("#dag .node[data-node='register']")).to_have_class(re.compile(r"\bstate-ran\b"))
    expect(ui.locator("#dag .edge")).to_have_count(8)
    expect(ui.locator("#dag .edge[data-source='prepare'][data-target='evaluate']")).to_have_count(1)
    expect(ui.locator("#no-summary")).to_have_count(0)

    steps = _steps(ui_url, newest)
    evaluate = ui.locator("#dag .node[data-node='evaluate']")
    evaluate.hover()
    detail = ui.locator("#node-info .node-detail:visible")
    expect(detail).to_have_count(1)
    expect(detail).to_contain_text("restored best_model")
    expect(detail).to_contain_text(_tags(steps["evaluate"])["flowml.cache_key"])
    expect(ui.locator("#steps tr.active")).to_have_attribute("data-node", "evaluate")
    shot(ui, "pipeline-dag-cached")

    evaluate.click()
    ui.wait_for_url(f"{ui_url}/runs/{steps['evaluate']['info']['run_id']}")


def test_first_run_shows_its_critical_path_with_its_total(ui, ui_url, pipelines):
    first = pipelines[0]
    ui.goto(f"{ui_url}/runs/{first['info']['run_id']}/pipeline")
    expect(ui.locator("#dag .node.state-ran")).to_have_count(6)
    hops = [h.inner_text() for h in ui.locator("#critical-path .hop").all()]
    durations = {name: float(_tags(run)["flowml.duration_s"]) for name, run in _steps(ui_url, first).items()}
    slowest_train = max((n for n in durations if n.startswith("train")), key=durations.get)
    assert hops == ["prepare", slowest_train, "evaluate", "register"]
    total = float(ui.locator("#critical-total").get_attribute("data-seconds"))
    assert total == pytest.approx(sum(durations[h] for h in hops), abs=0.01)
    expect(ui.locator("#dag .node.critical")).to_have_count(4)
    expect(ui.locator("#dag .edge.critical")).to_have_count(3)
    expect(ui.locator("#time-saved")).to_have_text("none")
    shot(ui, "pipeline-dag-first")


def test_runs_with_cache_hits_show_the_time_they_saved(ui, ui_url, pipelines):
    second, third = pipelines[1], pipelines[2]
    ui.goto(f"{ui_url}/runs/{third['info']['run_id']}/pipeline")
    saved = float(ui.locator("#time-saved").get_attribute("data-seconds"))
    metrics = {m["key"]: m["value"] for m in third["data"]["metrics"]}
    assert saved > 0 and saved == pytest.approx(metrics["time_saved_s"], abs=0.001)
    expect(ui.locator("#step-counts [data-state='cached']")).to_have_text("5 cached")
    expect(ui.locator("#steps tr[data-node='prepare'] td.num").nth(1)).not_to_be_empty()  # its saved duration
    ui.goto(f"{ui_url}/runs/{second['info']['run_id']}/pipeline")  # -P n_estimators=60: only prepare was a hit
    expect(ui.locator("#dag .node.state-cached")).to_have_count(1)
    expect(ui.locator("#dag .node.state-cached")).to_have_attribute("data-node", "prepare")
    assert float(ui.locator("#time-saved").get_attribute("data-seconds")) > 0


def test_a_pipeline_still_running_is_drawn_from_its_step_runs_without_edges(ui, ui_url):
    experiment = httpx.post(f"{ui_url}{API}/experiments/create", json={"name": "pipeline-in-progress"}).json()
    parent = _create_run(ui_url, experiment["experiment_id"], "live", {"flowml.type": "pipeline"})
    done = _create_run(ui_url, experiment["experiment_id"], "prepare",
                       {"mlflow.parentRunId": parent, "flowml.type": "step", "flowml.node": "prepare",
                        "flowml.state": "ran", "flowml.duration_s": "1.5", "flowml.reason": "never ran"})
    httpx.post(f"{ui_url}{API}/runs/update", json={"run_id": done, "status": "FINISHED"}).raise_for_status()
    _create_run(ui_url, experiment["experiment_id"], "train",
                {"mlflow.parentRunId": parent, "flowml.type": "step", "flowml.node": XSS})
    ui.goto(f"{ui_url}/runs/{parent}/pipeline")
    expect(ui.locator("#no-summary")).to_contain_text("has not finished")
    expect(ui.locator("#dag .node")).to_have_count(2)
    expect(ui.locator("#dag .edge")).to_have_count(0)
    expect(ui.locator("#dag .node.state-ran")).to_have_attribute("data-node", "prepare")
    expect(ui.locator("#dag .node.state-running")).to_have_attribute("data-node", XSS)
    assert ui.locator("#dag img, #node-info img, #steps img").count() == 0  # the name stayed text
    shot(ui, "pipeline-dag-running")


def _create_run(url: str, experiment: str, name: str, tags: dict[str, str]) -> str:
    reply = httpx.post(f"{url}{API}/runs/create", json={
        "experiment_id": experiment, "run_name": name, "start_time": int(time.time() * 1000),
        "tags": [{"key": k, "value": v} for k, v in tags.items()]})
    reply.raise_for_status()
    return reply.json()["run"]["info"]["run_id"]


def test_a_run_that_is_not_a_pipeline_gets_a_404_page(ui_url):
    run = _search(ui_url, experiment_id(ui_url, "sweep"), "")[0]
    reply = httpx.get(f"{ui_url}/runs/{run['info']['run_id']}/pipeline")
    assert reply.status_code == 404
    assert "text/html" in reply.headers["content-type"] and "not a pipeline run" in reply.text
    assert httpx.get(f"{ui_url}/runs/{'0' * 32}/pipeline").status_code == 404
