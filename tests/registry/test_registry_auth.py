"""The registry routes under ``flowml server --auth``: reading needs a read token (the
get-latest-versions POST included), every change a write token."""

from __future__ import annotations

import subprocess
import sys

import httpx

API = "/api/2.0/mlflow"


def _token(store_uri: str, role: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "flowml", "server", "tokens", "create", "--role", role,
                           "--name", f"registry {role}", "--backend-store-uri", store_uri],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_reads_need_read_and_writes_need_write(server_factory, tmp_path):
    server = server_factory(tmp_path, None, "--auth")
    try:
        read, write = _token(server.store_uri, "read"), _token(server.store_uri, "write")

        def call(method: str, path: str, token: str | None, **kw) -> int:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return httpx.request(method, server.url + API + path, headers=headers, timeout=10, **kw).status_code

        assert call("POST", "/registered-models/create", None, json={"name": "wine"}) == 401
        assert call("POST", "/registered-models/create", read, json={"name": "wine"}) == 403
        assert call("POST", "/registered-models/create", write, json={"name": "wine"}) == 200
        assert call("POST", "/model-versions/create", write, json={"name": "wine", "source": "mlflow-artifacts:/b/m"}) == 200
        assert call("GET", "/registered-models/search", read) == 200
        assert call("GET", "/model-versions/get", read, params={"name": "wine", "version": "1"}) == 200
        assert call("POST", "/registered-models/get-latest-versions", read, json={"name": "wine"}) == 200
        assert call("POST", "/registered-models/alias", read, json={"name": "wine", "alias": "a", "version": "1"}) == 403
        assert call("DELETE", "/registered-models/delete", read, json={"name": "wine"}) == 403
        assert call("PATCH", "/model-versions/update", read, json={"name": "wine", "version": "1"}) == 403
        assert call("DELETE", "/registered-models/delete", write, json={"name": "wine"}) == 200
    finally:
        server.stop()
