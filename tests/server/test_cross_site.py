"""Writes that another site's page makes a browser send are refused (CSRF): the server on
127.0.0.1 without --auth must not let any web page the user visits change its data."""

from __future__ import annotations

import httpx
import pytest

CREATE = "/api/2.0/mlflow/experiments/create"


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},  # a sandboxed frame or a file:// page
    {"Origin": "http://127.0.0.1:1"},  # same host, another port: another origin
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site", "Origin": "http://localhost:8080"},
], ids=["other-site", "null-origin", "other-port", "fetch-cross-site", "fetch-same-site"])
def test_a_cross_site_write_is_refused_and_changes_nothing(server, headers):
    name = f"csrf-{abs(hash(str(headers)))}"
    reply = httpx.post(server.url + CREATE, content=f'{{"name": "{name}"}}',
                       headers={"Content-Type": "text/plain", **headers})
    assert reply.status_code == 403
    assert reply.json()["error_code"] == "PERMISSION_DENIED"
    found = httpx.get(server.url + "/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": name})
    assert found.status_code == 404


def test_same_origin_writes_and_clients_without_browser_headers_pass(server):
    host = server.url.split("://", 1)[1]
    same = httpx.post(server.url + CREATE, json={"name": "csrf-same-origin"},
                      headers={"Origin": server.url, "Sec-Fetch-Site": "same-origin", "Host": host})
    assert same.status_code == 200, same.text
    plain = httpx.post(server.url + CREATE, json={"name": "csrf-plain-client"})
    assert plain.status_code == 200, plain.text


def test_cross_site_reads_are_not_refused(server):
    reply = httpx.get(server.url + "/api/2.0/mlflow/experiments/search", params={"max_results": 5},
                      headers={"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"})
    assert reply.status_code == 200
