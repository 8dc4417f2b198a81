"""The docker target when the engine refuses or the deploy is interrupted: the new container is
removed and the error is a DeploymentError. The engine is a stand-in here (Podman cannot be
made to refuse a start on demand); the image build is skipped. The interruption through the
CLI on real Podman is in test_docker_target.py."""

from __future__ import annotations

import docker.errors
import pytest

import flowml_docker.target as target_module
from flowml.deployments import DeploymentError
from flowml.deployments.records import Records


class Containers:
    """The part of ``DockerClient.containers`` the target uses; ``start`` raises ``failure``."""

    def __init__(self, failure: BaseException) -> None:
        self.failure = failure
        self.made: dict[str, Container] = {}

    def create(self, image, command, *, name, **options):
        self.made[name] = Container(self, name)
        return self.made[name]

    def get(self, ref):
        if ref not in self.made:
            raise docker.errors.NotFound(f"no container {ref}")
        return self.made[ref]


class Container:
    def __init__(self, containers: Containers, name: str) -> None:
        self.containers, self.name, self.id = containers, name, name

    def start(self):
        raise self.containers.failure

    def remove(self, force=False):
        del self.containers.made[self.name]


class Engine:
    def __init__(self, failure: BaseException) -> None:
        self.containers = Containers(failure)


class NoBuild:
    def build(self, *args, **kwargs) -> str:
        return "sha256:0"


@pytest.fixture
def engine_that_fails(monkeypatch):
    def install(failure: BaseException) -> Engine:
        fake = Engine(failure)
        monkeypatch.setattr(target_module, "engine", lambda: fake)
        monkeypatch.setattr(target_module, "DockerImageBuilder", NoBuild)
        return fake

    return install


@pytest.mark.parametrize("failure", [
    docker.errors.APIError("500 Server Error", explanation="OCI runtime error: cannot start container"),
    KeyboardInterrupt(),
], ids=["engine-error", "interrupted"])
def test_a_failed_start_leaves_no_container_and_no_record(tmp_path, engine_that_fails, failure):
    fake = engine_that_fails(failure)
    expected = KeyboardInterrupt if isinstance(failure, KeyboardInterrupt) else DeploymentError
    with pytest.raises(expected) as raised:
        target_module.DockerTarget(str(tmp_path)).deploy("lines", str(tmp_path / "m"), {"port": 8123})
    if expected is DeploymentError:
        assert f"deploying {tmp_path / 'm'} as 'lines' failed" in str(raised.value)
        assert "OCI runtime error: cannot start container" in str(raised.value)
    assert fake.containers.made == {}
    assert Records(str(tmp_path)).find("lines") is None


def test_an_engine_error_while_checking_is_a_deployment_error(tmp_path, monkeypatch):
    from flowml.deployments import Deployment

    class Refusing:
        class containers:  # noqa: N801 - the attribute the SDK's client has
            @staticmethod
            def get(ref):
                raise docker.errors.APIError("500 Server Error", explanation="database is locked")

    monkeypatch.setattr(target_module, "engine", lambda: Refusing)
    Records(str(tmp_path)).save(Deployment("lines", "docker", "m", 8123, "http://127.0.0.1:8123",
                                           handle={"container": "abc"}))
    with pytest.raises(DeploymentError, match="checking deployment 'lines' failed: .*database is locked"):
        target_module.DockerTarget(str(tmp_path)).status("lines")
