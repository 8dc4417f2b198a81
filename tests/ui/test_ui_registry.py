"""The registry's pages in the browser: the models list, a model's aliases and description set
from the page (through MLflow's REST routes), a version's lineage, and the roles of --auth."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.ui.conftest import XSS, PageProblems, experiment_id, shot

API = "/api/2.0/mlflow"
WRITE_ROUTE = "/ajax-api/2.0/mlflow/registered-models/alias"


def _alias(url: str, alias: str, **auth) -> httpx.Response:
    return httpx.get(f"{url}{API}/registered-models/alias", params={"name": "wine", "alias": alias}, **auth)


def _version(url: str, number: int) -> dict:
    reply = httpx.get(f"{url}{API}/model-versions/get", params={"name": "wine", "version": number})
    reply.raise_for_status()
    return reply.json()["model_version"]


def test_models_page_lists_wine_with_its_alias_and_searches_by_name(ui, ui_url):
    ui.goto(f"{ui_url}/models")
    wine = ui.locator("#models tr[data-model='wine']")
    expect(wine).to_have_count(1)
    expect(wine.locator(".aliases")).to_contain_text("@candidate")
    newest = max(int(v["version"]) for v in httpx.get(f"{ui_url}{API}/model-versions/search",
                                                       params={"filter": "name = 'wine'"}).json()["model_versions"])
    expect(wine.locator("td.num a")).to_have_text(f"v{newest}")
    shot(ui, "registry-models")
    ui.fill("input[name=q]", "WIN")
    ui.press("input[name=q]", "Enter")
    expect(ui.locator("#models tbody tr")).to_have_count(1)
    ui.fill("input[name=q]", "w_ne")  # _ is a letter here, not LIKE's wildcard
    ui.press("input[name=q]", "Enter")
    expect(ui.locator("p.empty")).to_contain_text("No model’s name contains")
    wine_link = f"{ui_url}/models?q=wine"
    ui.goto(wine_link)
    ui.locator("#models a", has_text="wine").first.click()
    ui.wait_for_url(f"{ui_url}/models/wine")


def test_setting_an_alias_from_the_model_page(ui, ui_url):
    _set_alias(ui, ui_url, "production", "1")
    expect(ui.locator("#aliases tr[data-alias='production']")).to_contain_text("version 1")
    expect(ui.locator("#versions tr[data-version='1'] .aliases")).to_contain_text("@production")
    assert _alias(ui_url, "production").json()["model_version"]["version"] == "1"
    shot(ui, "registry-model")
    ui.goto(f"{ui_url}/models")
    expect(ui.locator("#models tr[data-model='wine'] .aliases")).to_contain_text("@production")


def test_moving_and_removing_an_alias(ui, ui_url):
    _set_alias(ui, ui_url, "staging", "1")
    row = ui.locator("#aliases tr[data-alias='staging']")
    expect(row).to_contain_text("version 1")
    _set_alias(ui, ui_url, "staging", "2")
    expect(row).to_contain_text("version 2")
    row.locator("button", has_text="Remove").click()
    expect(row).to_have_count(0)
    assert "has no alias 'staging'" in _alias(ui_url, "staging").json()["message"]


def test_a_refused_alias_shows_the_servers_message(page, ui_url):
    problems = PageProblems(page)  # not the ui fixture: the refused request is itself a console error
    page.goto(f"{ui_url}/models/wine")
    form = page.locator("form.alias-form")
    form.locator("input[name=alias]").fill("latest")
    form.locator("button").click()
    error = form.locator(".form-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("reserved")
    assert all("status of 400" in e for e in problems.errors), problems.errors
    shot(page, "registry-alias-refused")


def test_editing_the_model_and_version_descriptions(ui, ui_url):
    text = "Wine quality classifier <b>not bold</b>\nsecond line & more"
    ui.goto(f"{ui_url}/models/wine")
    ui.locator("#edit-description summary").click()
    ui.locator("#edit-description textarea").fill(text)
    ui.locator("#edit-description button").click()
    expect(ui.locator("#description")).to_have_text(text)
    assert ui.locator("#description b").count() == 0
    got = httpx.get(f"{ui_url}{API}/registered-models/get", params={"name": "wine"}).json()
    assert got["registered_model"]["description"] == text

    ui.goto(f"{ui_url}/models/wine/versions/1")
    ui.locator("#edit-description summary").click()
    ui.locator("#edit-description textarea").fill("the first quickstart model")
    ui.locator("#edit-description button").click()
    expect(ui.locator("#description")).to_have_text("the first quickstart model")
    assert _version(ui_url, 1)["description"] == "the first quickstart model"
    ui.goto(f"{ui_url}/models/wine")
    expect(ui.locator("#versions tr[data-version='1'] td.description")).to_have_text("the first quickstart model")


def test_version_page_traces_the_model_to_its_pipeline_run_and_steps(ui, ui_url):
    lineage = _version(ui_url, 1)["flowml_lineage"]
    ui.goto(f"{ui_url}/models/wine/versions/1")
    pipeline = ui.locator("#lineage-pipeline")
    expect(pipeline).to_contain_text("quickstart")
    expect(pipeline.locator("a.dag-link")).to_have_attribute("href", f"/runs/{lineage['pipeline_run_id']}/pipeline")
    run = httpx.get(f"{ui_url}{API}/runs/get", params={"run_id": lineage["pipeline_run_id"]}).json()["run"]
    assert run["info"]["experiment_id"] == experiment_id(ui_url, "quickstart")
    expect(ui.locator("#lineage-step")).to_contain_text("register")
    expect(ui.locator("#lineage-step")).to_contain_text(lineage["cache_key"])
    expect(ui.locator(f"#lineage-step a[href='/runs/{lineage['run_id']}']")).to_have_count(1)
    producer = ui.locator("#lineage-producer")
    expect(producer).to_contain_text("evaluate")
    producer_run = _version(ui_url, 1)["tags"]
    producer_run_id = next(t["value"] for t in producer_run if t["key"] == "flowml.model_run_id")
    producer_tags = httpx.get(f"{ui_url}{API}/runs/get", params={"run_id": producer_run_id}).json()["run"]["data"]["tags"]
    expect(producer).to_contain_text(next(t["value"] for t in producer_tags if t["key"] == "flowml.cache_key"))
    inputs = {r.locator("th").inner_text(): r.locator("td").inner_text()
              for r in ui.locator("#lineage-inputs tbody tr").all()}
    assert inputs == lineage["input_digests"] and "data/test.csv" in inputs
    shot(ui, "registry-version")
    pipeline.locator("a.dag-link").click()
    expect(ui.locator("#dag .node")).to_have_count(6)


def _sign_in(ui, url: str, token: str, target: str) -> None:
    ui.goto(f"{url}/login?next={target}")
    ui.fill("#token", token)
    ui.locator("form[action='/login'] button").click()
    ui.wait_for_url(f"{url}{target}")


def test_a_read_token_sees_no_write_controls_and_cannot_write(ui, auth_ui):
    url, tokens = auth_ui
    _sign_in(ui, url, tokens["read"], "/models/wine")
    expect(ui.locator("#versions tbody tr").first).to_be_visible()
    expect(ui.locator("form.api-form")).to_have_count(0)
    expect(ui.locator("#edit-description")).to_have_count(0)
    ui.goto(f"{url}/models/wine/versions/1")
    expect(ui.locator("#lineage-pipeline")).to_be_visible()
    expect(ui.locator("form.api-form")).to_have_count(0)
    shot(ui, "registry-model-read-only")
    # the page's own cookie, sent straight to the write route the forms would use
    refused = ui.request.post(url + WRITE_ROUTE, data={"name": "wine", "alias": "sneaky", "version": "1"},
                              headers={"Origin": url})
    assert refused.status == 403
    unchanged = _alias(url, "sneaky", headers={"Authorization": f"Bearer {tokens['read']}"})
    assert "has no alias 'sneaky'" in unchanged.json()["message"]


def test_a_write_token_sets_an_alias_from_the_page(ui, auth_ui):
    url, tokens = auth_ui
    _sign_in(ui, url, tokens["write"], "/models/wine")
    form = ui.locator("form.alias-form")
    form.locator("input[name=alias]").fill("reviewed")
    form.locator("select[name=version]").select_option("1")
    form.locator("button").click()
    expect(ui.locator("#aliases tr[data-alias='reviewed']")).to_contain_text("version 1")
    reply = _alias(url, "reviewed", headers={"Authorization": f"Bearer {tokens['read']}"})
    assert reply.json()["model_version"]["version"] == "1"


def test_a_model_named_with_markup_shows_as_text(ui, ui_url):
    httpx.post(f"{ui_url}{API}/registered-models/create",
               json={"name": XSS, "description": "<script>alert(2)</script>"}).raise_for_status()
    ui.goto(f"{ui_url}/models?q=onerror")
    link = ui.locator("#models td.model-name a")
    expect(link).to_have_text(XSS)
    link.click()
    expect(ui.locator("h1")).to_have_text(XSS)
    expect(ui.locator("#description")).to_have_text("<script>alert(2)</script>")
    assert ui.locator("main img").count() == 0


def test_missing_models_and_versions_get_error_pages(ui_url):
    for path, status in (("/models/no-such-model", 404), ("/models/wine/versions/999", 404),
                         ("/models/wine/versions/first", 400)):
        reply = httpx.get(ui_url + path)
        assert reply.status_code == status and "text/html" in reply.headers["content-type"], path


def _set_alias(ui, ui_url: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version`` with the model page's form."""
    ui.goto(f"{ui_url}/models/wine")
    form = ui.locator("form.alias-form")
    form.locator("input[name=alias]").fill(alias)
    form.locator("select[name=version]").select_option(version)
    form.locator("button").click()
