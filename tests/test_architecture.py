"""The layers hold (import-linter) and start-up stays light."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HEAVY = ["pydantic", "networkx", "sqlalchemy", "pandas", "sklearn", "rich", "yaml", "tenacity"]


def test_import_linter_contracts_hold():
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("lint-imports (import-linter) is not on PATH")
    proc = subprocess.run([exe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " 0 broken" in proc.stdout, proc.stdout


@pytest.mark.parametrize("module", ["flowml.cli", "flowml"])
def test_startup_imports_nothing_heavy(module):
    code = (f"import {module}, sys; print(sorted(m for m in sys.modules if m.split('.')[0] in {set(HEAVY)!r}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", f"{module} imports at start-up: {proc.stdout.strip()}"


def test_help_exits_zero(project):
    res = project.flowml("--help")
    assert res.code == 0, res.err
    for command in ("run", "status", "dag", "schema"):
        assert command in res.out
    assert not (project.root / ".flowml").exists()
