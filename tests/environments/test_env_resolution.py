"""The stored resolutions of python (uv) environments: a stored one is read back only while
everything it depends on is unchanged, uv's resolver settings and the interpreter's file
included (a patch upgrade in place keeps the path but not the version)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from flowml.environments.uv.resolve import RESOLVER_VARS, resolve

VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture
def uv_vars(uv_env, monkeypatch):
    for name, value in uv_env.vars.items():
        monkeypatch.setenv(name, value)
    for name in RESOLVER_VARS:
        monkeypatch.delenv(name, raising=False)
    return uv_env


def test_uv_resolver_settings_are_part_of_what_a_resolution_depends_on(uv_vars, tmp_path, monkeypatch):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("flowtiny\n")
    folder = str(uv_vars.folder)
    first = resolve(str(requirements), VERSION, str(tmp_path), folder)
    assert "flowtiny==2.0" in first.lock
    assert resolve(str(requirements), VERSION, str(tmp_path), folder) == first
    assert uv_vars.calls("pip compile") == 1
    monkeypatch.setenv("UV_RESOLUTION", "lowest")  # changes what is picked: resolved again
    assert "flowtiny==1.0" in resolve(str(requirements), VERSION, str(tmp_path), folder).lock
    assert uv_vars.calls("pip compile") == 2
    for name, value in [("UV_PRERELEASE", "allow"), ("UV_INDEX_STRATEGY", "unsafe-best-match")]:
        monkeypatch.setenv(name, value)
        resolve(str(requirements), VERSION, str(tmp_path), folder)
    assert uv_vars.calls("pip compile") == 4


def test_an_interpreter_replaced_at_the_same_path_is_asked_again(uv_vars, tmp_path):
    """An upgrade in place (a new patch release over /usr/bin/python3.11) keeps the path: the
    stored resolution is not trusted once the interpreter's file changed."""
    subprocess.run([sys._base_executable, "-m", "venv", "--copies", "--without-pip", str(tmp_path / "py")], check=True)
    python = str(tmp_path / "py" / "bin" / "python")
    first = resolve(None, python, str(tmp_path), str(uv_vars.folder))
    assert first.python.executable == python
    assert resolve(None, python, str(tmp_path), str(uv_vars.folder)) == first
    assert uv_vars.calls("python find") == 1
    os.utime(python, ns=(os.stat(python).st_atime_ns, os.stat(python).st_mtime_ns + 10**9))  # replaced
    assert resolve(None, python, str(tmp_path), str(uv_vars.folder)) == first
    assert uv_vars.calls("python find") == 2
