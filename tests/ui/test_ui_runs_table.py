"""The experiments list and an experiment's runs table, in the browser."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.ui.conftest import XSS, experiment_id, shot


def test_experiments_page_lists_runs_and_searches_by_name(ui, ui_url):
    ui.goto(ui_url + "/")
    rows = ui.locator("#experiments tbody tr")
    expect(rows.filter(has_text="quickstart")).to_have_count(1)
    expect(rows.filter(has_text="sweep").locator("td.num")).to_have_text("4")
    shot(ui, "experiments")
    ui.fill("input[name=q]", "SWE")
    ui.press("input[name=q]", "Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("sweep")


def test_runs_table_shows_pipeline_runs_as_trees_with_cache_hits(ui, ui_url):
    ui.goto(f"{ui_url}/experiments/{experiment_id(ui_url, 'quickstart')}")
    pipelines = ui.locator("#runs tbody tr.depth-0")
    expect(pipelines).to_have_count(3)
    newest = pipelines.first  # the third run: every step restored from the cache
    steps = ui.locator(f"#runs tbody tr[data-parent='{newest.get_attribute('data-run')}']")
    expect(steps).to_have_count(6)
    expect(steps.locator(".badge.state-cached")).to_have_count(5)  # all but register, which always checks the registry
    expect(steps.filter(has_text="register").locator(".badge")).to_have_text("ran")
    shot(ui, "runs-quickstart")
    newest.locator("button.toggle").click()
    expect(steps.first).to_be_hidden()
    newest.locator("button.toggle").click()
    expect(steps.first).to_be_visible()


def test_sorting_by_a_metric_column_orders_the_rows(ui, ui_url):
    ui.goto(f"{ui_url}/experiments/{experiment_id(ui_url, 'sweep')}")
    header = ui.locator("#runs th[data-column='metrics.loss'] a")
    header.click()
    expect(ui.locator("#runs th[data-column='metrics.loss']")).to_have_attribute("aria-sort", "descending")
    column = _column(ui, "metrics.loss")
    values = [float(v) for v in column if v]
    assert values == sorted(values, reverse=True) and len(values) == 4
    ui.locator("#runs th[data-column='metrics.loss'] a").click()
    expect(ui.locator("#runs th[data-column='metrics.loss']")).to_have_attribute("aria-sort", "ascending")
    values = [float(v) for v in _column(ui, "metrics.loss") if v]
    assert values == sorted(values)


def test_filter_narrows_runs_and_explains_a_malformed_filter(ui, ui_url):
    ui.goto(f"{ui_url}/experiments/{experiment_id(ui_url, 'sweep')}")
    ui.fill("#filter", "params.optimizer = 'sgd'")
    ui.press("#filter", "Enter")
    expect(ui.locator("#runs tbody tr")).to_have_count(1)
    expect(ui.locator("#runs tbody tr")).to_contain_text("lr=0.1")
    ui.fill("#filter", "metrics.loss >> 3")
    ui.press("#filter", "Enter")
    error = ui.locator("#filter-error")
    expect(error).to_be_visible()
    expect(ui.locator("#filter")).to_have_attribute("aria-invalid", "true")
    assert "metrics.loss" in error.inner_text() or "expected" in error.inner_text()
    shot(ui, "runs-filter-error")


def test_a_run_named_with_markup_shows_as_text(ui, ui_url):
    ui.goto(f"{ui_url}/experiments/{experiment_id(ui_url, 'sweep')}")
    expect(ui.get_by_text(XSS, exact=True).first).to_be_visible()
    assert ui.locator("#runs img").count() == 0  # the name was not parsed as an element


def test_selecting_runs_enables_compare(ui, ui_url):
    ui.goto(f"{ui_url}/experiments/{experiment_id(ui_url, 'sweep')}")
    compare = ui.locator("#compare-button")
    expect(compare).to_be_disabled()
    boxes = ui.locator("#runs tbody input[name=runs]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    expect(compare).to_be_enabled()
    expect(ui.locator("#selected-count")).to_have_text("2 selected")


def test_pages_of_runs_follow_the_sort_order(ui, ui_url):
    ui.goto(f"{ui_url}/experiments/{experiment_id(ui_url, 'grid')}?size=25&sort=metrics.score&desc=0")
    expect(ui.locator(".toolbar")).to_contain_text("1–25 of 60")
    assert [float(v) for v in _column(ui, "metrics.score")] == list(range(25))
    ui.click("a[rel=next]")
    expect(ui.locator(".toolbar")).to_contain_text("26–50 of 60")
    assert [float(v) for v in _column(ui, "metrics.score")] == list(range(25, 50))
    ui.click("a[rel=prev]")
    expect(ui.locator(".toolbar")).to_contain_text("1–25 of 60")


def test_an_unknown_experiment_is_a_404_page(ui_url):
    reply = httpx.get(f"{ui_url}/experiments/987654")
    assert reply.status_code == 404 and reply.headers["content-type"].startswith("text/html")
    assert "987654" in reply.text


def _column(ui, ident: str) -> list[str]:
    headers = ui.locator("#runs thead th")
    idents = [headers.nth(i).get_attribute("data-column") for i in range(headers.count())]
    index = idents.index(ident)
    return [t.strip() for t in ui.locator(f"#runs tbody tr td:nth-child({index + 1})").all_inner_texts()]


def test_sorted_by_a_metric_rows_keep_the_sort_and_the_forms_keep_the_state(ui, ui_url):
    ui.goto(f"{ui_url}/experiments/{experiment_id(ui_url, 'quickstart')}?sort=metrics.accuracy&desc=1")
    values = [float(v) for v in _column(ui, "metrics.accuracy") if v]
    assert len(values) == 3 and values == sorted(values, reverse=True)  # no tree regrouping the rows
    expect(ui.locator("#runs tbody tr .step-of").first).to_be_visible()
    ui.select_option("#page-size", "25")
    ui.click(".page-size button")
    assert "sort=metrics.accuracy" in ui.url and "size=25" in ui.url
    ui.click("details.columns summary")
    ui.click(".column-chooser button")
    assert "sort=metrics.accuracy" in ui.url


def test_a_page_link_that_is_not_a_token_starts_from_the_first_page(ui_url):
    reply = httpx.get(f"{ui_url}/experiments/{experiment_id(ui_url, 'grid')}", params={"start": "garbage", "size": 25})
    assert reply.status_code == 200 and "1–25 of 60" in reply.text and "filter-error" not in reply.text
