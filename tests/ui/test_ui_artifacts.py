"""A run's artifacts: the tree on the run page, the preview of each kind (text, JSON, YAML,
CSV as a table, MLmodel, images), the raw file's headers, and the hostile run's files, which
must stay text (or a sandboxed image) however they are opened; traversal is refused."""

from __future__ import annotations

import http.client
import json
import os
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect

from tests.ui.conftest import XSS, PageProblems, shot
from tests.ui.test_ui_run_page import find_runs, run_id

SANDBOX = "default-src 'none'; sandbox"


@pytest.fixture(scope="module")
def hostile(ui_url) -> str:
    return run_id(find_runs(ui_url, "sweep", "attributes.run_name LIKE '%onerror%'")[0])


@pytest.fixture(scope="module")
def register(ui_url) -> str:
    """The first register step: it saved the model (MLmodel, YAML and JSON files) as artifacts."""
    return run_id(find_runs(ui_url, "quickstart", "tags.flowml.node = 'register'")[0])


def test_the_tree_opens_folders_and_leads_to_a_model_preview(ui, ui_url, register):
    ui.goto(f"{ui_url}/runs/{register}")
    tree = ui.locator("#artifacts ul.tree").first
    expect(tree.locator("li.folder summary", has_text="model")).to_be_visible()
    ui.locator("#artifacts a.name", has_text="MLmodel").click()
    expect(ui).to_have_url(f"{ui_url}/runs/{register}/artifacts/model/MLmodel")
    expect(ui.locator(".artifact-head .badge")).to_have_text("mlmodel")
    expect(ui.locator("#flavors h3")).to_have_text(["python_function", "sklearn"])
    expect(ui.locator("#sig-inputs tbody tr")).to_have_count(1)
    expect(ui.locator("#sig-inputs td").nth(1)).to_have_text("tensor float64")
    expect(ui.locator("#sig-inputs td").nth(2)).to_have_text("shape (any, 13)")
    expect(ui.locator("#sig-outputs td").nth(1)).to_have_text("tensor int64")
    expect(ui.locator("#mlmodel-ids")).to_contain_text("model_uuid")
    expect(ui.locator("#mlmodel-rest")).to_contain_text("saved_input_example_info")
    expect(ui.locator(".artifact-tree li.file.current a.name")).to_have_text("MLmodel")  # the tree marks it
    expect(ui.locator(".crumbs a", has_text="model")).to_have_attribute("href", f"/runs/{register}/artifacts/model")
    shot(ui, "artifact-mlmodel")


def test_json_is_pretty_printed_and_yaml_shown_as_text(ui, ui_url, register):
    ui.goto(f"{ui_url}/runs/{register}/artifacts/model/input_example.json")
    expect(ui.locator(".artifact-head .badge")).to_have_text("json")
    text = ui.locator("#text-preview").inner_text()
    raw = httpx.get(f"{ui_url}/runs/{register}/files/model/input_example.json").text
    lines = text.splitlines()  # a row of the example per line, whatever the file's own layout
    assert lines[0] == "[" and lines[-1] == "]" and all(line.startswith("  [") for line in lines[1:-1])
    assert json.loads(text) == json.loads(raw)
    shot(ui, "artifact-json")
    ui.goto(f"{ui_url}/runs/{register}/artifacts/model/conda.yaml")
    expect(ui.locator(".artifact-head .badge")).to_have_text("yaml")
    expect(ui.locator("#text-preview")).to_contain_text("dependencies:")
    shot(ui, "artifact-yaml")


def test_a_folder_page_lists_its_files_and_a_binary_file_gets_a_download(ui, ui_url, register):
    ui.goto(f"{ui_url}/runs/{register}/artifacts/model")
    listing = ui.locator("#listing tbody tr")
    expect(listing.filter(has_text="model.skops")).to_have_count(1)
    shot(ui, "artifact-folder")
    listing.filter(has_text="model.skops").locator("a").first.click()
    expect(ui.locator("#binary")).to_be_visible()
    download = f"/runs/{register}/files/model/model.skops?download=1"
    expect(ui.locator("#download-link")).to_have_attribute("href", download)


def test_csv_is_a_table_and_markup_in_it_stays_text(ui, ui_url, hostile):
    ui.goto(f"{ui_url}/runs/{hostile}/artifacts/table.csv")
    expect(ui.locator("#csv-table thead th")).to_have_text(["#", "name", "value"])
    expect(ui.locator("#csv-table tbody td").nth(1)).to_have_text(XSS)
    assert ui.locator("#artifact-view img").count() == 0
    shot(ui, "artifact-csv")


def test_an_html_artifact_is_shown_as_its_source(ui, ui_url, hostile):
    ui.goto(f"{ui_url}/runs/{hostile}/artifacts/page.html")
    expect(ui.locator("#text-preview")).to_have_text("<script>alert(3)</script><h1>hi</h1>")
    assert ui.locator("#artifact-view h1").all_inner_texts() == ["page.html"]
    shot(ui, "artifact-html-as-text")


def test_images_are_drawn_from_the_raw_route(ui, ui_url, hostile):
    ui.goto(f"{ui_url}/runs/{hostile}/artifacts/images/checker.png")
    image = ui.locator("#image-preview")
    expect(image).to_have_attribute("src", f"/runs/{hostile}/files/images/checker.png")
    ui.wait_for_function("document.getElementById('image-preview').complete")
    assert image.evaluate("img => img.naturalWidth") == 32
    shot(ui, "artifact-image")
    ui.goto(f"{ui_url}/runs/{hostile}/artifacts/picture.svg")  # drawn as an image: its script never runs
    ui.wait_for_function("document.getElementById('image-preview').complete")


def test_an_svg_opened_directly_runs_no_script(page, ui_url, hostile):
    problems = PageProblems(page)
    page.goto(f"{ui_url}/runs/{hostile}/files/picture.svg")
    page.wait_for_timeout(300)
    assert not [e for e in problems.errors if "dialog" in e], problems.errors
    assert page.evaluate("() => typeof document") == "object"  # it did load
    page.goto(f"{ui_url}/runs/{hostile}/files/page.html")
    assert page.locator("h1").count() == 0  # plain text, not a document
    assert not [e for e in problems.errors if "dialog" in e], problems.errors


@pytest.mark.parametrize("name, media_type", [
    ("page.html", "text/plain; charset=utf-8"), ("table.csv", "text/plain; charset=utf-8"),
    ("picture.svg", "image/svg+xml"), ("images/checker.png", "image/png"),
    ("logs/stdout.txt", "text/plain; charset=utf-8"),
])
def test_raw_files_are_served_inert(ui_url, hostile, name, media_type):
    reply = httpx.get(f"{ui_url}/runs/{hostile}/files/{name}")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == media_type
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["content-security-policy"] == SANDBOX
    assert "content-disposition" not in reply.headers
    download = httpx.get(f"{ui_url}/runs/{hostile}/files/{name}", params={"download": 1})
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"].startswith(f'attachment; filename="{os.path.basename(name)}"')
    assert download.headers["content-security-policy"] == SANDBOX
    assert download.content == reply.content


@pytest.mark.parametrize("path", [
    "..%2f..%2f..%2fetc%2fpasswd", "%2e%2e/%2e%2e/etc/passwd", "%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "logs/..%2f..%2f..%2f..%2fetc/passwd", "..%5c..%5cetc%5cpasswd", "%2fetc%2fpasswd",
])
@pytest.mark.parametrize("route", ["files", "artifacts"])
def test_traversal_is_refused(ui_url, hostile, route, path):
    reply = httpx.get(f"{ui_url}/runs/{hostile}/{route}/{path}")
    assert reply.status_code == 400, reply.text
    assert "root:" not in reply.text


def test_a_literal_dot_dot_is_refused_too(ui_url, hostile):
    """Sent byte for byte (httpx and browsers fold '/../' away before sending)."""
    where = urlsplit(ui_url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
    connection.request("GET", f"/runs/{hostile}/files/logs/../../../../../../etc/passwd")
    reply = connection.getresponse()
    body = reply.read().decode()
    assert reply.status in (400, 404) and "root:" not in body


def test_a_folder_or_a_missing_file_is_not_served(ui_url, hostile):
    assert httpx.get(f"{ui_url}/runs/{hostile}/files/logs").status_code == 400
    missing = httpx.get(f"{ui_url}/runs/{hostile}/artifacts/nope.txt")
    assert missing.status_code == 404 and "no artifact" in missing.text


# a store of its own: symbolic links and artifacts kept elsewhere ----------------------------------

@pytest.fixture
def own_app(tmp_path):
    """An app on a fresh store with a run whose artifact folder holds a file, a symbolic link
    to a file outside it, and a folder deeper than the tree reads; and a run kept on S3."""
    from flowml.server.app import create_app
    from flowml.server.config import ServerConfig
    from flowml.tracking.sql.store import SqlStore

    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = SqlStore(db, str(tmp_path / "artifacts"))
    local = store.create_run(store.create_experiment("local"), run_name="here",
                             tags={"mlflow.source.git.commit": "a" * 40, "flowml.git.dirty": "true"})
    folder = local.info.artifact_uri
    os.makedirs(os.path.join(folder, "deep", "er", "est"))
    with open(os.path.join(folder, "deep", "er", "est", "leaf.txt"), "w") as out:
        out.write("leaf\n")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", os.path.join(folder, "link.txt"))
    remote = store.create_run(store.create_experiment("remote", artifact_location="s3://bucket/path"), run_name="there")
    app = create_app(ServerConfig(db, str(tmp_path / "artifacts")), store)
    client = TestClient(app, base_url="http://127.0.0.1")
    yield client, local.info.run_id, remote.info.run_id
    client.close()


def test_a_symbolic_link_out_of_the_run_is_neither_listed_nor_served(own_app):
    client, local, _remote = own_app
    page = client.get(f"/runs/{local}")
    assert page.status_code == 200 and "link.txt" not in page.text and "leaf.txt" in page.text
    for route in ("files", "artifacts"):
        reply = client.get(f"/runs/{local}/{route}/link.txt")
        assert reply.status_code == 400 and "secret" not in reply.text.replace("secret.txt", "")


def test_git_commit_and_dirty_flag_show_on_the_run_page(own_app):
    client, local, _remote = own_app
    page = client.get(f"/runs/{local}").text
    assert 'title="' + "a" * 40 + '">' + "a" * 10 + "</span>" in page
    assert 'class="badge dirty"' in page


def test_artifacts_this_server_cannot_reach_are_explained(own_app):
    client, _local, remote = own_app
    page = client.get(f"/runs/{remote}")
    assert page.status_code == 200
    assert 'id="artifacts-unavailable"' in page.text and "s3://bucket/path" in page.text
    preview = client.get(f"/runs/{remote}/artifacts/model/MLmodel")
    assert preview.status_code == 400 and "which this server does not serve" in preview.text


# the tree, on a folder of its own -------------------------------------------------------------

def _touch(root, *paths: str) -> None:
    for path in paths:
        full = os.path.join(root, *path.split("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as out:
            out.write(path)


def test_a_small_tree_is_read_whole_and_drawn_open(tmp_path):
    from flowml.server.ui.artifacts import artifact_tree

    _touch(tmp_path, "logs/stdout.txt", "model/MLmodel", "model/sub/w.bin", "z.json")
    top, more = artifact_tree(str(tmp_path))
    assert [(e.name, e.is_dir) for e in top] == [("logs", True), ("model", True), ("z.json", False)] and more == 0
    model = top[1]
    assert model.open and [e.path for e in model.children] == ["model/MLmodel", "model/sub"]
    assert model.children[1].children[0].path == "model/sub/w.bin" and model.children[1].open


def test_a_large_tree_is_read_breadth_first_up_to_its_budget_but_always_down_to_the_current_file(tmp_path):
    from flowml.server.ui.artifacts import artifact_tree

    _touch(tmp_path, *(f"a/f{i}.txt" for i in range(50)), *(f"b/c/d/e{i}.txt" for i in range(5)), "b/x.txt")
    top, _more = artifact_tree(str(tmp_path), budget=20)
    a, b = top
    assert len(a.children) == 50 and not a.open  # read (the budget is checked between folders), but closed
    assert b.children is None  # past the budget: drawn as a link to its own page
    top, _more = artifact_tree(str(tmp_path), current="b/c/d/e3.txt", budget=20)
    b = top[1]
    assert b.open and b.children[0].open and b.children[0].children[0].open
    assert "b/c/d/e3.txt" in [e.path for e in b.children[0].children[0].children]
    assert not top[0].open


def test_a_folder_lists_its_first_entries_and_counts_the_rest(tmp_path):
    from flowml.server.ui.artifacts import read_folder

    _touch(tmp_path, *(f"many/{i:03d}.txt" for i in range(12)))
    entries, more = read_folder(str(tmp_path), "many", limit=5)
    assert [e.name for e in entries] == [f"{i:03d}.txt" for i in range(5)] and more == 7
    assert entries[0].path == "many/000.txt" and entries[0].size == len("many/000.txt")


def test_with_auth_the_files_need_a_token(auth_ui, hostile):
    url, tokens = auth_ui
    for route in ("files", "artifacts"):  # pages send the browser to sign in, and show nothing
        reply = httpx.get(f"{url}/runs/{hostile}/{route}/page.html")
        assert reply.status_code == 303 and reply.headers["location"].startswith("/login")
        assert "alert(3)" not in reply.text
    reader = {"Authorization": f"Bearer {tokens['read']}"}
    reply = httpx.get(f"{url}/runs/{hostile}/files/page.html", headers=reader)
    assert reply.status_code == 200 and reply.headers["content-security-policy"] == SANDBOX
    assert httpx.get(f"{url}/runs/{hostile}", headers=reader).status_code == 200
