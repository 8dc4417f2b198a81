"""Metric charts in the browser, and the history endpoint they draw from over real HTTP."""

from __future__ import annotations

import math

import httpx
import pytest
from playwright.sync_api import expect

from tests.ui.conftest import XSS, experiment_id, shot


def sweep_runs(url: str) -> dict[str, str]:
    """The sweep experiment's runs: name -> id."""
    reply = httpx.post(f"{url}/api/2.0/mlflow/runs/search",
                       json={"experiment_ids": [experiment_id(url, "sweep")], "max_results": 100})
    return {run["info"]["run_name"]: run["info"]["run_id"] for run in reply.json()["runs"]}


def chart_url(url: str, runs: list[str], metrics: list[str], **settings) -> str:
    query = httpx.QueryParams([("runs", r) for r in runs] + [("metrics", m) for m in metrics] + list(settings.items()))
    return f"{url}/charts?{query}"


def paths(ui, kind: str) -> list[str]:
    return ui.locator(f"section.chart[data-key=loss] path.line.{kind}").evaluate_all("ps => ps.map(p => p.getAttribute('d'))")


def test_loss_of_two_runs_is_overlaid_and_hover_shows_both_values(ui, ui_url):
    runs = sweep_runs(ui_url)
    ui.goto(chart_url(ui_url, [runs["lr=0.01"], runs["lr=0.1"]], ["loss"]))
    chart = ui.locator("section.chart[data-key=loss]")
    expect(chart.locator("path.line.raw")).to_have_count(2)
    assert all(d.count("L") > 250 for d in paths(ui, "raw"))  # 300 steps each, none thinned out
    expect(ui.locator("#legend li")).to_have_text(["lr=0.01", "lr=0.1"])
    box = chart.locator("rect.overlay").bounding_box()
    ui.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
    tip = chart.locator(".chart-tip")
    expect(tip).to_be_visible()
    expect(tip.locator(".tip-head")).to_contain_text("step")
    expect(tip.locator(".tip-row .tip-name")).to_have_text(["lr=0.01", "lr=0.1"])
    step = int(tip.locator(".tip-head").inner_text().split()[-1])
    values = [float(v) for v in tip.locator(".tip-value").all_inner_texts()]
    expected = [2.0 * math.exp(-lr * 40 * step / 100) + 0.01 * (step % 7) for lr in (0.01, 0.1)]
    assert values == pytest.approx(expected, rel=1e-4)
    expect(chart.locator("line.crosshair")).to_have_attribute("visibility", "visible")
    shot(ui, "charts-loss-hover")


def test_log_scale_and_smoothing_change_the_drawn_paths(ui, ui_url):
    runs = sweep_runs(ui_url)
    ui.goto(chart_url(ui_url, [runs["lr=0.01"], runs["lr=0.1"]], ["loss"]))
    expect(ui.locator("section.chart[data-key=loss] path.line.raw")).to_have_count(2)
    linear = paths(ui, "raw")
    ui.check("#log-scale")
    expect(ui.locator("section.chart .axis-title").first).to_contain_text("log scale")
    logged = paths(ui, "raw")
    assert logged != linear and len(logged) == 2
    assert "log=1" in ui.url  # the address keeps the setting
    ui.locator("#smoothing").fill("0.9")
    chart = ui.locator("section.chart[data-key=loss]")
    expect(chart.locator("path.line.smooth")).to_have_count(2)
    expect(chart.locator("path.line.raw.faint")).to_have_count(2)  # the raw line stays, faint, under the smoothed one
    smoothed = paths(ui, "smooth")
    assert smoothed != paths(ui, "raw")
    assert _roughness(smoothed[0]) < _roughness(paths(ui, "raw")[0]) / 3  # the sawtooth is smoothed away
    ui.locator("#smoothing").fill("0")
    expect(chart.locator("path.line.smooth")).to_have_count(0)
    shot(ui, "charts-log-scale")


def test_the_metric_chooser_adds_a_chart(ui, ui_url):
    runs = sweep_runs(ui_url)
    ui.goto(chart_url(ui_url, [runs[f"lr={lr}"] for lr in (0.01, 0.05, 0.1)], ["loss"], smooth="0.5"))
    expect(ui.locator("section.chart")).to_have_count(1)
    ui.locator("#metric-chooser summary").click()
    shot(ui, "charts-metric-chooser")
    ui.get_by_label("accuracy", exact=True).check()
    expect(ui.locator("section.chart")).to_have_count(2)
    expect(ui.locator("section.chart[data-key=accuracy] path.line.raw")).to_have_count(3)
    assert ui.locator("#smoothing").input_value() == "0.5"  # the settings carried over
    shot(ui, "charts-two-metrics")


def test_relative_and_wall_time_axes(ui, ui_url):
    runs = sweep_runs(ui_url)
    ui.goto(chart_url(ui_url, [runs["lr=0.05"]], ["loss"], x="relative"))
    ticks = ui.locator("section.chart .ticks text")
    expect(ticks.filter(has_text="m")).not_to_have_count(0)  # 300 steps a second apart: minutes
    ui.select_option("#x-axis", "time")
    expect(ui.locator("section.chart .axis-title")).to_have_text("wall time")
    assert any(":" in t for t in ticks.all_text_contents())


def test_a_smoothing_that_is_not_a_number_draws_unsmoothed(ui, ui_url):
    runs = sweep_runs(ui_url)
    ui.goto(chart_url(ui_url, [runs["lr=0.05"]], ["loss"], smooth="nan"))
    expect(ui.locator("section.chart[data-key=loss] path.line.raw")).to_have_count(1)
    assert '"smooth": 0.0' in httpx.get(chart_url(ui_url, [runs["lr=0.05"]], ["loss"], smooth="nan")).text


def test_a_hostile_run_name_is_text_in_the_legend_and_tooltip(ui, ui_url):
    runs = sweep_runs(ui_url)
    ui.goto(chart_url(ui_url, [runs[XSS], runs["lr=0.1"]], ["loss"]))
    expect(ui.locator("#legend li").first).to_have_text(XSS)
    chart = ui.locator("section.chart[data-key=loss]")
    expect(chart.locator("circle.single")).to_have_count(1)  # its one value, drawn as a dot
    box = chart.locator("rect.overlay").bounding_box()
    ui.mouse.move(box["x"] + 2, box["y"] + box["height"] / 2)
    expect(chart.locator(".tip-name").first).to_have_text(XSS)
    assert ui.locator("img").count() == 1  # the brand logo only


def test_chart_selected_in_the_runs_table_opens_their_charts(ui, ui_url):
    adam = httpx.QueryParams(filter="params.optimizer = 'adam'")
    ui.goto(f"{ui_url}/experiments/{experiment_id(ui_url, 'sweep')}?{adam}")
    boxes = ui.locator("#runs tbody input[name=runs]")
    expect(boxes).to_have_count(2)
    boxes.nth(0).check()
    boxes.nth(1).check()
    ui.click("#chart-button")
    expect(ui.locator("#legend li")).to_have_count(2)
    expect(ui.locator("section.chart")).to_have_count(2)  # with no metric chosen: each one the runs have (up to 6)
    expect(ui.locator("section.chart[data-key=loss] path.line.raw")).to_have_count(2)


def test_a_chart_without_runs_says_what_to_do(ui, ui_url):
    reply = httpx.get(f"{ui_url}/charts")
    assert reply.status_code == 400 and "No runs to chart" in reply.text
    reply = httpx.get(f"{ui_url}/charts", params={"runs": ["f" * 32]})
    assert reply.status_code == 404 and "f" * 32 in reply.text


# the history endpoint ------------------------------------------------------------------

def test_history_endpoint_gives_points_and_says_when_it_downsampled(ui_url):
    runs = sweep_runs(ui_url)
    ids = [runs["lr=0.01"], runs["lr=0.05"]]
    reply = httpx.get(f"{ui_url}/ui-api/metric-history", params={"runs": ids, "key": "loss"})
    assert reply.status_code == 200
    body = reply.json()
    assert [r["run_id"] for r in body["runs"]] == ids
    assert all(r["total"] == 300 and not r["downsampled"] and len(r["points"]) == 300 for r in body["runs"])
    step, timestamp, value = body["runs"][0]["points"][10]
    assert (step, timestamp) == (10, 1_700_000_010_000) and value == pytest.approx(2.0 * math.exp(-0.04) + 0.03)
    thinned = httpx.get(f"{ui_url}/ui-api/metric-history", params={"runs": ids, "key": "loss", "max_points": 50}).json()
    for run in thinned["runs"]:
        assert run["downsampled"] and run["total"] == 300 and len(run["points"]) <= 50
        assert run["points"][0][0] == 0 and run["points"][-1][0] == 299


def test_history_endpoint_refuses_unknown_runs_and_bad_limits(ui_url):
    runs = sweep_runs(ui_url)
    reply = httpx.get(f"{ui_url}/ui-api/metric-history", params={"runs": [runs["lr=0.1"], "0" * 32], "key": "loss"})
    assert reply.status_code == 404 and reply.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    reply = httpx.get(f"{ui_url}/ui-api/metric-history", params={"runs": [runs["lr=0.1"]], "key": "loss", "max_points": 2})
    assert reply.status_code == 400
    reply = httpx.get(f"{ui_url}/ui-api/metric-history", params={"runs": [runs["lr=0.1"]], "key": "nope"})
    assert reply.json()["runs"][0] == {"run_id": runs["lr=0.1"], "total": 0, "downsampled": False, "points": []}


@pytest.fixture(scope="module")
def long_run(ui_project) -> str:
    """A run with a 100,000-point history: a slow wave, one spike, one NaN."""
    from flowml.tracking.client import FlowmlClient
    from flowml.tracking.entities import Metric
    from flowml.tracking.stores import resolve_uri

    client = FlowmlClient(resolve_uri(None, str(ui_project)), str(ui_project))
    made = client.get_experiment_by_name("charts-long-history")  # the fixture runs again for the browser's tests
    if made:
        return client.search_runs([made.experiment_id])[0].info.run_id
    run_id = client.create_run(client.create_experiment("charts-long-history"), run_name="long").info.run_id
    values = [math.sin(step / 5000) for step in range(100_000)]
    values[61_234], values[70_000] = 25.0, math.nan
    client.log_batch(run_id, metrics=[Metric("loss", v, 1_700_000_000_000 + step, step) for step, v in enumerate(values)])
    client.set_terminated(run_id, "FINISHED")
    return run_id


def test_a_100000_point_history_answers_with_at_most_n_points(ui_url, long_run):
    """(Its speed is measured in benchmarks/bench_ui.py.)"""
    params = {"runs": [long_run], "key": "loss", "max_points": 1000}
    reply = httpx.get(f"{ui_url}/ui-api/metric-history", params=params)
    run = reply.json()["runs"][0]
    assert run["total"] == 100_000 and run["downsampled"] and len(run["points"]) <= 1000
    steps = {p[0]: p[2] for p in run["points"]}
    assert steps[61_234] == 25.0 and steps[70_000] == "NaN" and 0 in steps and 99_999 in steps


def test_a_long_history_is_drawn_downsampled(ui, ui_url, long_run):
    ui.goto(chart_url(ui_url, [long_run], ["loss"]))
    chart = ui.locator("section.chart[data-key=loss]")
    expect(chart).to_have_attribute("data-downsampled", "true")
    expect(chart.locator(".chart-note")).to_contain_text("of 100,000 points")
    shot(ui, "charts-downsampled")


def _roughness(d: str) -> float:
    """Sum of how much a path's y turns from point to point (a smoothed line turns less)."""
    ys = [float(p.split(",")[1]) for p in d.replace("M", "L").split("L") if p]
    return sum(abs(a - 2 * b + c) for a, b, c in zip(ys, ys[1:], ys[2:]))
