"""Every kind of page, over HTTP: it answers, in HTML, with the headers that keep script out."""

from __future__ import annotations

import httpx
import pytest

from tests.ui.conftest import experiment_id


def _pages(url: str) -> dict[str, str]:
    def search(name: str, filter_string: str) -> list[str]:
        reply = httpx.post(f"{url}/api/2.0/mlflow/runs/search", json={
            "experiment_ids": [experiment_id(url, name)], "filter": filter_string, "max_results": 10})
        return [run["info"]["run_id"] for run in reply.json()["runs"]]

    pipeline = search("quickstart", "tags.`flowml.type` = 'pipeline'")[0]
    evaluate = search("quickstart", "tags.`flowml.node` = 'evaluate' and tags.`flowml.state` = 'ran'")[0]
    sweep = search("sweep", "")[:2]
    return {"home": "/", "runs table": f"/experiments/{experiment_id(url, 'quickstart')}",
            "step run": f"/runs/{evaluate}", "pipeline run": f"/runs/{pipeline}", "DAG": f"/runs/{pipeline}/pipeline",
            "artifact": f"/runs/{evaluate}/artifacts/outputs.json", "log": f"/runs/{evaluate}/logs/stdout",
            "charts": f"/charts?runs={sweep[0]}&runs={sweep[1]}", "compare": f"/compare?runs={sweep[0]}&runs={sweep[1]}",
            "models": "/models", "model": "/models/wine", "version": "/models/wine/versions/1", "sign-in": "/login"}


@pytest.fixture(scope="module")
def pages(ui_url) -> dict[str, str]:
    return _pages(ui_url)


@pytest.mark.parametrize("kind", ["home", "runs table", "step run", "pipeline run", "DAG", "artifact", "log", "charts",
                                  "compare", "models", "model", "version", "sign-in"])
def test_every_page_answers_with_the_page_headers(ui_url, pages, kind):
    reply = httpx.get(ui_url + pages[kind])
    assert reply.status_code == 200, reply.text[:300]
    assert reply.headers["content-type"].startswith("text/html")
    policy = reply.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in reply.text and " onload=" not in reply.text  # no inline script of ours
