"""The web UI's tests: a store filled by running the quickstart pipeline (three times, so that
it holds runs that ran, step runs that were cache hits, and a registered model), plus a small
"sweep" experiment with metric histories and one run whose name, params, tags and artifacts
are script; `flowml ui` serving it over real HTTP; and Debian's Chromium driven by Playwright.

Every browser test goes through the ``ui`` fixture: it fails the test on any console error,
uncaught page error or dialog (an ``alert`` from injected script), and ``shot(ui, name)``
keeps a screenshot of the page under ``test-artifacts/screenshots`` (not committed).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import free_port, stop_group, wait_until_answers

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(os.environ.get("FLOWML_SCREENSHOTS", REPO / "test-artifacts" / "screenshots"))
XSS = "<img src=x onerror=alert(1)>"


def flowml(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "flowml", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "CI": "1", **(env or {})}, timeout=300)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="session")
def ui_project(tmp_path_factory) -> Path:
    """The quickstart project, run three times, plus the sweep experiment (see the module's docstring)."""
    project = tmp_path_factory.mktemp("ui") / "quickstart"
    shutil.copytree(REPO / "examples" / "quickstart", project,
                    ignore=shutil.ignore_patterns(".flowml", "models", "best_model", "metrics.json", "__pycache__",
                                                  "train.csv", "test.csv"))
    flowml("run", cwd=project)                           # every step runs
    flowml("run", "-P", "n_estimators=60", cwd=project)  # prepare is a cache hit, the rest runs
    flowml("run", cwd=project)                           # every step a cache hit, outputs restored
    _sweep(project)
    return project


def _sweep(project: Path) -> None:
    """Three runs of a made-up training loop with per-step histories, and one hostile run."""
    from flowml.tracking.client import FlowmlClient
    from flowml.tracking.entities import Metric
    from flowml.tracking.stores import resolve_uri

    client = FlowmlClient(resolve_uri(None, str(project)), str(project))
    experiment = client.create_experiment("sweep")
    for lr in (0.01, 0.05, 0.1):
        run = client.create_run(experiment, run_name=f"lr={lr}")
        run_id = run.info.run_id
        metrics = [Metric("loss", 2.0 * math.exp(-lr * 40 * step / 100) + 0.01 * (step % 7), 1_700_000_000_000 + step * 1000, step)
                   for step in range(300)]
        metrics += [Metric("accuracy", 1 - 0.5 * math.exp(-lr * 30 * step / 100), 1_700_000_000_000 + step * 1000, step)
                    for step in range(0, 300, 10)]
        client.log_batch(run_id, metrics=metrics, params={"lr": lr, "optimizer": "adam" if lr < 0.1 else "sgd"},
                         tags={"team": "vision"})
        client.set_terminated(run_id, "FINISHED")
    grid = client.create_experiment("grid")  # more runs than a page holds
    for i in range(60):
        run_id = client.create_run(grid, run_name=f"grid-{i}").info.run_id
        client.log_batch(run_id, metrics=[Metric("score", float(i), 1_700_000_000_000, 0)], params={"i": i})
        client.set_terminated(run_id, "FINISHED")
    hostile = client.create_run(experiment, run_name=XSS)
    client.log_batch(hostile.info.run_id, metrics=[Metric("loss", 1.0, 1_700_000_000_000, 0)],
                     params={"lr": XSS}, tags={"note": "<script>alert(2)</script>"})
    client.log_text(hostile.info.run_id, "<script>alert(3)</script><h1>hi</h1>", "page.html")
    client.log_text(hostile.info.run_id, f"name,value\n{XSS},1\n", "table.csv")
    client.log_text(hostile.info.run_id, '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(4)"><script>alert(5)</script></svg>',
                    "picture.svg")
    client.set_terminated(hostile.info.run_id, "FINISHED")
    import base64  # the run page's helper: an image and a long log with markup for the previews

    (project / "checker.png").write_bytes(base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAACAAAAAgAQMAAABJtOi3AAAABlBMVEX///8lY+sSTFThAAAAFElEQVR42mNg+A+ERBBEKmOgsnkA7b0/wU6R7xwAAAAASUVORK5CYII="))
    client.log_artifact(hostile.info.run_id, str(project / "checker.png"), "images")
    client.log_text(hostile.info.run_id, "".join(f"line {i} {XSS}\n" for i in range(1, 501)), "logs/stdout.txt")


def _serve(args: list[str], cwd: Path):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "flowml", *args, "--port", str(port)], cwd=cwd,
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, "CI": "1"})
    url = f"http://127.0.0.1:{port}"
    if not wait_until_answers(f"{url}/health", lambda: process.poll() is None, timeout=60):
        stop_group(process)
        pytest.fail(f"the UI server did not start: {process.stderr.read() if process.stderr else ''}")
    return process, url


@pytest.fixture(scope="session")
def ui_url(ui_project) -> str:
    """`flowml ui` on the project's store."""
    process, url = _serve(["ui"], ui_project)
    yield url
    stop_group(process)


@pytest.fixture(scope="session")
def auth_ui(ui_project, tmp_path_factory):
    """`flowml server --auth` on the same store, with a read and a write token: (url, tokens)."""
    db = f"sqlite:///{ui_project / '.flowml' / 'flowml.db'}"
    tokens = {role: flowml("server", "tokens", "create", "--role", role, "--backend-store-uri", db,
                           cwd=ui_project).stdout.strip() for role in ("read", "write")}
    process, url = _serve(["server", "--auth", "--backend-store-uri", db, "--artifacts-destination",
                           str(ui_project / ".flowml" / "artifacts")], ui_project)
    yield url, tokens
    stop_group(process)


# the browser -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


class PageProblems:
    """What went wrong in the page while a test drove it."""

    def __init__(self, page) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("dialog", self._dialog)

    def _dialog(self, dialog) -> None:
        self.errors.append(f"a {dialog.type} dialog opened: {dialog.message!r}")
        dialog.dismiss()


@pytest.fixture
def ui(page):
    """Playwright's page, failing the test on console errors, page errors and dialogs."""
    problems = PageProblems(page)
    page.set_default_timeout(10_000)
    yield page
    assert not problems.errors, problems.errors


def shot(page, name: str) -> Path:
    """Keep a full-page screenshot as a test artifact."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def experiment_id(url: str, name: str) -> str:
    import httpx

    reply = httpx.get(f"{url}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": name})
    return reply.json()["experiment"]["experiment_id"]
