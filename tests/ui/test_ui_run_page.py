"""A run's page and its logs, in the browser and over HTTP: a quickstart step run, a pipeline
run with its steps, a cache hit pointing at the run it was restored from, the log tail and the
full log, and the hostile run's markup shown as text."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import expect

from tests.ui.conftest import XSS, experiment_id, shot


def find_runs(url: str, experiment: str, filter_string: str = "") -> list[dict]:
    """Runs of ``experiment`` matching ``filter_string``, oldest first (MLflow's REST shape)."""
    reply = httpx.post(f"{url}/api/2.0/mlflow/runs/search",
                       json={"experiment_ids": [experiment_id(url, experiment)], "filter": filter_string,
                             "max_results": 1000, "order_by": ["attributes.start_time ASC"]})
    reply.raise_for_status()
    return reply.json().get("runs", [])


def run_id(run: dict) -> str:
    return run["info"]["run_id"]


def tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def test_a_step_run_page_shows_metrics_logs_and_its_pipeline(ui, ui_url):
    evaluate = find_runs(ui_url, "quickstart", "tags.flowml.node = 'evaluate'")[0]
    parent = tags(evaluate)["mlflow.parentRunId"]
    ui.goto(f"{ui_url}/runs/{run_id(evaluate)}")
    expect(ui.locator("#run-name")).to_have_text("evaluate")
    expect(ui.locator(".run-head .badge")).to_have_text("ran")
    expect(ui.locator("#reason")).to_have_text("never ran")
    accuracy = ui.locator("#metrics tr[data-metric='accuracy']")
    expect(accuracy.locator("td").first).to_have_text(re.compile(r"^0\.9\d*$"))
    expect(accuracy.locator("td").nth(1)).to_have_text("0")  # the step of the last value
    href = accuracy.locator("a").get_attribute("href")
    assert href == f"/charts?runs={run_id(evaluate)}&metrics=accuracy"
    expect(ui.locator("#log-stdout pre.log")).to_contain_text("best max_depth=")
    expect(ui.locator("#log-stdout")).to_contain_text("Full log")
    expect(ui.locator("#parent a").first).to_have_attribute("href", f"/runs/{parent}")
    expect(ui.locator("#parent-graph")).to_have_attribute("href", f"/runs/{parent}/pipeline")
    expect(ui.locator(".crumbs a").nth(1)).to_have_text("quickstart")  # the experiment
    expect(ui.locator(".crumbs a").nth(2)).to_have_attribute("href", f"/runs/{parent}")
    expect(ui.locator("#source")).to_contain_text("pipeline.yaml")
    expect(ui.locator("#system-tags")).not_to_have_attribute("open", "")  # folded
    expect(ui.locator("#system-tags-table")).to_be_hidden()
    ui.locator("#system-tags summary").click()
    expect(ui.locator("#system-tags-table")).to_contain_text("flowml.cache_key")
    shot(ui, "run-step-evaluate")
    ui.locator("#parent a").first.click()
    expect(ui).to_have_url(f"{ui_url}/runs/{parent}")


def test_a_train_step_shows_its_params(ui, ui_url):
    train = find_runs(ui_url, "quickstart", "tags.flowml.node = 'train[max_depth=4]'")[0]
    ui.goto(f"{ui_url}/runs/{run_id(train)}")
    params = ui.locator("#params")
    expect(params.locator("tr", has_text="max_depth").locator("td")).to_have_text("4")
    expect(params.locator("tr", has_text="n_estimators").locator("td")).to_have_text("100")


def test_a_pipeline_run_lists_its_steps_with_states(ui, ui_url):
    pipelines = find_runs(ui_url, "quickstart", "tags.flowml.type = 'pipeline'")
    newest = pipelines[-1]  # every step restored from the cache but register
    ui.goto(f"{ui_url}/runs/{run_id(newest)}")
    steps = ui.locator("#children tbody tr")
    expect(steps).to_have_count(6)
    expect(steps.locator(".badge.state-cached")).to_have_count(5)
    expect(steps.filter(has_text="register").locator(".badge")).to_have_text("ran")
    expect(ui.locator("#pipeline-graph")).to_have_attribute("href", f"/runs/{run_id(newest)}/pipeline")
    expect(ui.locator("#metrics tr[data-metric='steps_cached'] td").first).to_have_text("5")
    shot(ui, "run-pipeline")
    steps.filter(has_text="prepare").locator("a").click()
    expect(ui.locator("#run-name")).to_have_text("prepare")


def test_a_cache_hit_links_to_the_run_that_made_its_outputs(ui, ui_url):
    hit = find_runs(ui_url, "quickstart", "tags.flowml.node = 'prepare' and tags.flowml.cache_hit = 'true'")[-1]
    source = tags(hit)["flowml.cache_source_run"]
    ui.goto(f"{ui_url}/runs/{run_id(hit)}")
    expect(ui.locator("#cache-hit")).to_contain_text("cache hit, restored from run")
    expect(ui.locator(".run-head .badge")).to_have_text("cached")
    ui.locator("#cache-hit a").click()
    expect(ui).to_have_url(f"{ui_url}/runs/{source}")
    expect(ui.locator(".run-head .badge")).to_have_text("ran")


def test_the_log_tail_shows_the_last_lines_as_text_and_the_full_log_all(ui, ui_url):
    hostile = find_runs(ui_url, "sweep", "attributes.run_name LIKE '%onerror%'")[0]
    ui.goto(f"{ui_url}/runs/{run_id(hostile)}")
    expect(ui.get_by_role("heading", name=XSS)).to_be_visible()
    tail = ui.locator("#log-stdout pre.log")
    text = tail.inner_text()
    assert text.splitlines()[0] == f"line 301 {XSS}" and text.splitlines()[-1] == f"line 500 {XSS}"
    assert "line 300 " not in text
    expect(ui.locator("#log-stdout .log-head")).to_contain_text("last 200 lines")
    assert ui.locator("main img").count() == 0  # neither the name, the params nor the log made an element
    expect(ui.locator("#params td")).to_have_text(XSS)
    expect(ui.locator("#tags td")).to_have_text("<script>alert(2)</script>")
    assert tail.evaluate("e => e.scrollTop > 0")  # opened at its end
    shot(ui, "run-hostile")
    ui.locator("#log-stdout a", has_text="Full log").click()
    log = ui.locator("#log")
    expect(log).to_contain_text(f"line 1 {XSS}\n")
    expect(log).to_contain_text(f"line 500 {XSS}")
    expect(ui.locator("#log-range")).to_contain_text("bytes 0–")
    shot(ui, "run-log-full")


def test_the_full_log_pages_through_a_window_at_a_time(ui_url):
    hostile = find_runs(ui_url, "sweep", "attributes.run_name LIKE '%onerror%'")[0]
    base = f"{ui_url}/runs/{run_id(hostile)}/logs/stdout"
    end = httpx.get(base, params={"end": 40}).text
    assert "line 1 " in end and "line 2 " not in end  # a window never starts inside a line
    later = httpx.get(base, params={"start": 30})
    assert later.status_code == 200 and 'id="log-prev"' in later.text
    assert httpx.get(f"{ui_url}/runs/{run_id(hostile)}/logs/secrets").status_code == 404


def test_a_missing_run_is_a_not_found_page(ui_url):
    reply = httpx.get(f"{ui_url}/runs/0123456789abcdef0123456789abcdef")
    assert reply.status_code == 404 and reply.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in reply.text and "0123456789abcdef0123456789abcdef" in reply.text


def test_a_deleted_run_says_so_and_odd_values_do_not_break_pages(ui_url):
    """Any writer may send a timestamp far outside the calendar or an infinite duration tag:
    the home page, the runs table and the run page must still answer."""
    api = f"{ui_url}/api/2.0/mlflow"
    experiment = httpx.post(f"{api}/experiments/create", json={"name": "odd-values"}).json()["experiment_id"]
    odd = httpx.post(f"{api}/runs/create", json={"experiment_id": experiment, "start_time": 10**16}).json()["run"]
    odd_id = odd["info"]["run_id"]
    httpx.post(f"{api}/runs/set-tag", json={"run_id": odd_id, "key": "flowml.duration_s", "value": "inf"})
    httpx.post(f"{api}/runs/log-metric", json={"run_id": odd_id, "key": "m", "value": 1, "timestamp": 10**16})
    for path in ("/", f"/experiments/{experiment}", f"/runs/{odd_id}"):
        assert httpx.get(ui_url + path).status_code == 200, path
    gone = httpx.post(f"{api}/runs/create", json={"experiment_id": experiment}).json()["run"]["info"]["run_id"]
    httpx.post(f"{api}/runs/delete", json={"run_id": gone})
    page = httpx.get(f"{ui_url}/runs/{gone}")
    assert page.status_code == 200 and "state-deleted" in page.text
