"""conda environments without a conda channel: a local channel of packages built here
(tests/conda/conda_channel.py), flowml's shared environment folder and rattler's package
cache pointed at test folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conda.conda_channel import make_channel


@pytest.fixture(scope="session")
def channel(tmp_path_factory) -> Path:
    return make_channel(tmp_path_factory.mktemp("conda"))


@pytest.fixture(scope="session")
def package_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("rattler-cache")


@pytest.fixture
def conda_vars(tmp_path_factory, package_cache) -> dict[str, str]:
    """A new shared environment folder for this test, rattler's package cache for the session."""
    return {"FLOWML_ENV_DIR": str(tmp_path_factory.mktemp("envs")), "RATTLER_CACHE_DIR": str(package_cache)}
