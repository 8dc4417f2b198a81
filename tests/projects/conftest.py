"""Fixtures of the project-source tests: a uv setup offline (the environments tests' wheels,
plus a stand-in ``pip`` wheel for MLflow's ``build_dependencies: [pip]``)."""

from __future__ import annotations

import pytest

from tests.environments.conftest import UvEnv, build_wheel, uv_cache  # noqa: F401 (a fixture)


@pytest.fixture(scope="session")
def project_wheels(tmp_path_factory):
    folder = tmp_path_factory.mktemp("project-wheels")
    build_wheel(folder, "flowtiny", "1.0", "VALUE = 1\n")
    build_wheel(folder, "pip", "99.0", "STAND_IN = True\n")
    return folder


@pytest.fixture
def project_uv(tmp_path_factory, project_wheels, uv_cache) -> UvEnv:
    return UvEnv(tmp_path_factory.mktemp("uvenv"), project_wheels, uv_cache)
