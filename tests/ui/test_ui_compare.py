"""The compare page in the browser (and its answers for too few or unknown runs over HTTP)."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.ui.conftest import XSS, experiment_id, shot
from tests.ui.test_ui_charts import sweep_runs


def compare_url(url: str, runs: list[str], **extra) -> str:
    return f"{url}/compare?{httpx.QueryParams([('runs', r) for r in runs] + list(extra.items()))}"


def three(url: str) -> tuple[dict[str, str], list[str]]:
    runs = sweep_runs(url)
    return runs, [runs[f"lr={lr}"] for lr in (0.01, 0.05, 0.1)]


def test_three_sweep_runs_side_by_side_with_differences_marked(ui, ui_url):
    runs, ids = three(ui_url)
    ui.goto(compare_url(ui_url, ids))
    table = ui.locator("#compare")
    headers = table.locator("thead th.run a")
    expect(headers).to_have_text(["lr=0.01", "lr=0.05", "lr=0.1"])
    assert headers.evaluate_all("links => links.map(a => a.getAttribute('href'))") == [f"/runs/{i}" for i in ids]
    params = table.locator("#compare-params")
    expect(params.locator("tr[data-key=lr]")).to_have_class("diff")
    expect(params.locator("tr[data-key=lr] td")).to_have_text(["0.01", "0.05", "0.1"])
    expect(params.locator("tr[data-key=optimizer]")).to_have_class("diff")
    expect(params.locator("tr[data-key=optimizer] td.changed")).to_have_text(["sgd"])  # the one unlike the first run
    expect(table.locator("#compare-tags tr[data-key=team]")).to_have_class("same")
    expect(table.locator("#compare-metrics tr[data-key=loss]")).to_have_class("diff")
    shot(ui, "compare-sweep")
    ui.check("#only-diff")
    expect(table.locator("#compare-tags tr[data-key=team]")).to_be_hidden()
    expect(params.locator("tr[data-key=lr]")).to_be_visible()
    assert "diff=1" in ui.url
    ui.uncheck("#only-diff")
    expect(table.locator("#compare-tags tr[data-key=team]")).to_be_visible()


def test_the_scatter_plot_has_a_mark_per_run_on_numeric_or_categorical_axes(ui, ui_url):
    runs, ids = three(ui_url)
    ui.goto(compare_url(ui_url, ids))
    scatter = ui.locator("#scatter")
    expect(scatter.locator("circle.mark")).to_have_count(3)
    expect(ui.locator("#scatter-x")).to_have_value("params.lr")  # the first param that differs
    expect(ui.locator("#scatter-y")).to_have_value("metrics.accuracy")  # the first metric that differs
    xs = scatter.locator("circle.mark").evaluate_all("cs => cs.map(c => Number(c.getAttribute('cx')))")
    assert xs == sorted(xs) and xs[1] - xs[0] < xs[2] - xs[1]  # lr 0.01, 0.05, 0.1 on a numeric axis
    mark = scatter.locator(f"circle.mark[data-run='{runs['lr=0.05']}']")
    mark.hover()
    tip = scatter.locator(".chart-tip")
    expect(tip.locator(".tip-head")).to_have_text("lr=0.05")
    expect(tip.locator(".tip-kv").first).to_contain_text("0.05")
    shot(ui, "compare-scatter")
    ui.select_option("#scatter-x", "params.optimizer")
    expect(scatter.locator("circle.mark")).to_have_count(3)
    expect(scatter.locator(".ticks text").filter(has_text="adam")).to_have_count(1)  # a category per value
    expect(scatter.locator(".ticks text").filter(has_text="sgd")).to_have_count(1)
    ui.select_option("#scatter-y", "metrics.loss")
    expect(scatter.locator("text.axis-title").nth(1)).to_have_text("loss")


def test_a_hostile_run_compares_as_text(ui, ui_url):
    runs, ids = three(ui_url)
    ui.goto(compare_url(ui_url, [runs[XSS], ids[2]]))
    expect(ui.locator("#compare thead th.run a").first).to_have_text(XSS)
    expect(ui.locator("#compare-params tr[data-key=lr] td").first).to_have_text(XSS)
    expect(ui.locator("#compare-tags tr[data-key=note] td").first).to_have_text("<script>alert(2)</script>")
    scatter = ui.locator("#scatter")
    expect(ui.locator("#scatter-y")).to_have_value("metrics.accuracy")  # which the hostile run lacks:
    expect(scatter.locator("circle.mark")).to_have_count(1)
    expect(ui.locator("#scatter-note")).to_contain_text(f"Not plotted (no lr or accuracy to place them by): {XSS}")
    ui.select_option("#scatter-y", "metrics.loss")
    expect(scatter.locator("circle.mark")).to_have_count(2)
    assert XSS in scatter.locator(".ticks title").all_text_contents()  # lr is categorical: the value is a tick
    assert XSS in scatter.locator("text.mark-label").all_text_contents()
    assert ui.locator("img").count() == 1  # the brand logo only
    shot(ui, "compare-hostile")


def test_compare_selected_in_the_runs_table_opens_the_comparison(ui, ui_url):
    ui.goto(f"{ui_url}/experiments/{experiment_id(ui_url, 'sweep')}")
    for name in ("lr=0.01", "lr=0.05", "lr=0.1"):
        ui.locator("#runs tbody tr", has_text=name).locator("input[name=runs]").check()
    ui.click("#compare-button")
    expect(ui.locator("h1")).to_have_text("Compare 3 runs")
    expect(ui.locator("#scatter circle.mark")).to_have_count(3)


def test_too_few_or_unknown_runs_are_explained(ui, ui_url):
    runs, ids = three(ui_url)
    reply = httpx.get(compare_url(ui_url, [ids[0]]))
    assert reply.status_code == 400 and "Compare needs at least two runs" in reply.text
    reply = httpx.get(compare_url(ui_url, []))
    assert reply.status_code == 400 and "No runs were chosen" in reply.text
    reply = httpx.get(compare_url(ui_url, ["0" * 32, "<b>x</b>"]))
    assert reply.status_code == 404 and "0" * 32 in reply.text and "&lt;b&gt;x&lt;/b&gt;" in reply.text
    ui.goto(compare_url(ui_url, [ids[0], "f" * 32, ids[1]]))
    expect(ui.locator("#unknown-runs")).to_contain_text("f" * 32)
    expect(ui.locator("#compare thead th.run")).to_have_count(2)  # the runs that exist are still compared
    shot(ui, "compare-unknown-run")
