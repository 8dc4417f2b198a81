"""`flowml server --auth`: bearer tokens, stored hashed, checked on every route."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

API = "/api/2.0/mlflow"


def make_token(store_uri: str, role: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "flowml", "server", "tokens", "create", "--role", role,
                           "--name", f"{role} test", "--backend-store-uri", store_uri],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def secured(tmp_path_factory, server_factory):
    server = server_factory(tmp_path_factory.mktemp("auth"), None, "--auth")
    yield server
    server.stop()


def call(server, method: str, path: str, token: str | None = None, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, server.url + path, headers=headers, timeout=10, **kw)


def test_requests_without_a_valid_token_are_refused(secured):
    for token in (None, "nonsense", "flowml_0000000000000000_wrong"):
        res = call(secured, "GET", f"{API}/experiments/get", token, params={"experiment_id": "0"})
        assert res.status_code == 401 and res.json()["error_code"] == "UNAUTHENTICATED"
        assert res.headers["www-authenticate"] == "Bearer"
    assert call(secured, "GET", "/health").status_code == 200  # for load balancers
    assert call(secured, "GET", "/api/2.0/mlflow-artifacts/artifacts").status_code == 401


def test_roles_limit_what_a_token_may_do(secured):
    read, write = make_token(secured.store_uri, "read"), make_token(secured.store_uri, "write")
    assert call(secured, "GET", f"{API}/experiments/get", read, params={"experiment_id": "0"}).status_code == 200
    assert call(secured, "POST", f"{API}/runs/search", read, json={"experiment_ids": ["0"]}).status_code == 200
    refused = call(secured, "POST", f"{API}/experiments/create", read, json={"name": "x"})
    assert refused.status_code == 403 and refused.json()["error_code"] == "PERMISSION_DENIED"
    assert call(secured, "POST", f"{API}/experiments/create", write, json={"name": "x"}).status_code == 200


def test_tokens_are_stored_hashed_and_can_be_revoked(secured):
    token = make_token(secured.store_uri, "write")
    token_id = token.split("_")[1]
    db = secured.store_uri[len("sqlite:///"):]
    assert token.split("_", 2)[2].encode() not in open(db, "rb").read()
    listed = subprocess.run([sys.executable, "-m", "flowml", "server", "tokens", "list", "--backend-store-uri",
                             secured.store_uri], capture_output=True, text=True, timeout=60).stdout
    assert token_id in listed and token not in listed
    assert call(secured, "GET", f"{API}/experiments/get", token, params={"experiment_id": "0"}).status_code == 200
    subprocess.run([sys.executable, "-m", "flowml", "server", "tokens", "revoke", token_id, "--backend-store-uri",
                    secured.store_uri], check=True, capture_output=True, timeout=60)
    assert call(secured, "GET", f"{API}/experiments/get", token, params={"experiment_id": "0"}).status_code == 401


def test_mlflow_client_authenticates_with_its_token_variable(secured, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", make_token(secured.store_uri, "write"))
    client = mlflow.MlflowClient(secured.url)
    exp = client.create_experiment("with-token")
    assert client.get_experiment(exp).name == "with-token"
