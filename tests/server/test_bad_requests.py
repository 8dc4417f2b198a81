"""Bad requests get MLflow-style 4xx replies, never a 500: what a careless or hostile client sends."""

from __future__ import annotations

import httpx
import pytest

API = "/api/2.0/mlflow"


@pytest.fixture(scope="module")
def run_id(server):
    exp = httpx.post(server.url + f"{API}/experiments/create", json={"name": "bad-requests"}).json()["experiment_id"]
    return httpx.post(server.url + f"{API}/runs/create", json={"experiment_id": exp}).json()["run"]["info"]["run_id"]


@pytest.mark.parametrize("path, body, code", [
    ("/runs/search", {"experiment_ids": ["0"], "order_by": [1, {"x": 1}]}, "INVALID_PARAMETER_VALUE"),
    ("/logged-models/search", {"experiment_ids": ["x"]}, "INVALID_PARAMETER_VALUE"),
    ("/logged-models/search", {"experiment_ids": ["0"], "max_results": -5}, "INVALID_PARAMETER_VALUE"),
    ("/logged-models", {"experiment_id": "0", "source_run_id": "nope"}, "RESOURCE_DOES_NOT_EXIST"),
])
def test_malformed_values_are_4xx(server, run_id, path, body, code):
    reply = httpx.post(server.url + API + path, json={"run_id": run_id, **body})
    assert 400 <= reply.status_code < 500 and reply.json()["error_code"] == code, reply.text


def test_an_infinite_step_is_refused(server, run_id):
    body = '{"run_id": "%s", "key": "m", "value": 1, "timestamp": 1, "step": 1e999}' % run_id
    reply = httpx.post(server.url + f"{API}/runs/log-metric", content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 400 and reply.json()["error_code"] == "INVALID_PARAMETER_VALUE", reply.text


def test_deeply_nested_json_is_refused(server):
    reply = httpx.post(server.url + f"{API}/runs/search", content=b"[" * 200_000,
                       headers={"Content-Type": "application/json"})
    assert reply.status_code == 400 and reply.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_a_chunked_body_over_the_limit_is_413(server):
    def chunks():
        for _ in range(70):  # 70 MiB, over the 64 MiB cap, with no Content-Length to check
            yield b" " * (1024 * 1024)

    reply = httpx.post(server.url + f"{API}/runs/search", content=chunks(), timeout=60)
    assert reply.status_code == 413 and reply.json()["error_code"] == "REQUEST_TOO_LARGE"
