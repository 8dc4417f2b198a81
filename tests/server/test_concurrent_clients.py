"""32 clients logging at once through one server lose nothing, on SQLite and on PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

API = "/api/2.0/mlflow"
CLIENTS = 32
TOTAL = 100_000
PER_CLIENT = TOTAL // CLIENTS  # 3,125: three batches of 1,000 and one of 125


def log_from_one_client(url: str, experiment_id: str, index: int) -> str:
    with httpx.Client(base_url=url, timeout=60) as http:
        run = http.post(f"{API}/runs/create", json={"experiment_id": experiment_id, "run_name": f"c{index}"})
        run_id = run.json()["run"]["info"]["run_id"]
        for start in range(0, PER_CLIENT, 1000):
            metrics = [{"key": "m", "value": float(i), "timestamp": 1, "step": i}
                       for i in range(start, min(start + 1000, PER_CLIENT))]
            reply = http.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": metrics})
            assert reply.status_code == 200, reply.text
        http.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "client", "value": str(index)})
        return run_id


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_32_clients_logging_100000_metrics_lose_none(backend, tmp_path, server_factory, request):
    store_uri = request.getfixturevalue("pg_database") if backend == "postgresql" else None
    server = server_factory(tmp_path, store_uri)
    try:
        experiment_id = httpx.post(server.url + f"{API}/experiments/create", json={"name": "load"}).json()["experiment_id"]
        with ThreadPoolExecutor(CLIENTS) as pool:
            run_ids = list(pool.map(lambda i: log_from_one_client(server.url, experiment_id, i), range(CLIENTS)))
        assert len(set(run_ids)) == CLIENTS
        total = 0
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for index, run_id in enumerate(run_ids):
                history = http.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "m"}).json()
                steps = [m["step"] for m in history["metrics"]]
                assert steps == list(range(PER_CLIENT))
                total += len(steps)
                run = http.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]
                assert run["data"]["params"] == [{"key": "client", "value": str(index)}]
        assert total == PER_CLIENT * CLIENTS
    finally:
        server.stop()
