"""The ``docker`` environment: a step runs in a container of an image the engine has, or of one
built from a folder.

``environments: {gpu: {docker: {image: "myorg/train:1.4", build: docker/, gpus: all}}}``.

- ``image`` alone names an image the engine must already have: nothing is pulled (a registry
  may be out of reach, and a pull in the middle of a run would make its result depend on
  when it ran), so a missing image is bad input naming it, found when the pipeline is loaded.
- ``build`` is a folder with a Dockerfile. It is built once per digest of its content (the
  files a build would send, ``.dockerignore`` honoured), tagged
  ``flowml-env/<environment>:<digest>``, and also tagged ``image`` when that is given. The
  build runs on the host's network, like the steps.
- The fingerprint is the image's id for ``image``, and for ``build`` the digest of the folder
  (known without building, so that a run of cache hits builds nothing; the image is the one
  made once for that digest): a changed Dockerfile, or a name moved to another image, reruns
  exactly the steps that use it. A base image changed under the same name (``FROM``) is not
  seen until the folder changes.
- ``gpus`` (``all`` or a count) gives the container GPUs when the step declares none in its
  ``resources`` (the scheduler does not reserve those); a step with ``resources.gpus`` gets the
  devices the scheduler granted it.

Each step runs through :mod:`flowml_docker.step`, a small process on the host that starts the
container, streams its output into the step's log files and ends with its exit code; the
executor stops it like any step, and it then stops and removes its container. See that module
for what the container gets (mounts, user, variables, limits).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sys
from typing import Any

from flowml.environments import Environment, EnvSetupError
from flowml.errors import Problem, SpecError
from flowml.processes import alive
from flowml.spec.node import Node

from flowml_docker.engine import engine, engine_errors
from flowml_docker.image import build_context, dockerignore_patterns
from flowml_docker.step import OWNER_LABEL, PROJECT_LABEL

BUILD_REPOSITORY = "flowml-env"
DIGEST_CHARS = 16


class DockerEnvironment(Environment):
    """Steps in containers of one image (see the module's documentation)."""

    def __init__(self, name: str, config: Any, root: str) -> None:
        super().__init__(name, config, root)
        config = config or {}
        self.gpus: str | int | None = config.get("gpus") or None  # "all" or a count (pipeline.yaml checks it)
        self.image: str | None = config.get("image")
        self.build = _build_folder(config.get("build"), root)
        self.built_tag: str | None = None
        if self.build is not None:
            self.digest = context_digest(self.build)
            self.built_tag = f"{BUILD_REPOSITORY}/{_repository_name(name)}:{self.digest[:DIGEST_CHARS]}"
            self.image_id: str | None = None  # known once prepared
        else:
            self.image_id = self._image_id(self.image)
            if self.image_id is None:
                raise SpecError(Problem(f"image '{self.image}' is not in the container engine "
                                        f"({_engine_address()}); flowml pulls nothing: pull or build it first "
                                        f"(docker pull / podman pull), or give 'build:' a folder with a Dockerfile",
                                        field="image"))

    def fingerprint(self) -> str:
        # Known before anything is built (a run of cache hits builds nothing): the built image
        # is the one tagged with this digest, made once.
        return f"build:{self.digest}" if self.build is not None else self.image_id

    def prepare(self) -> None:
        """Before the first of its steps runs: build the image if its content digest has none
        yet, and remove the containers of this project's steps whose flowml process is gone
        (killed before it could clean up)."""
        if self.build is not None and self.image_id is None:
            self.image_id = self._image_id(self.built_tag)
        if self.image_id is None:
            print(f"environment {self.name}: building image {self.built_tag} from {self.build}", file=sys.stderr)
            self.image_id = build_context(self.build, self.built_tag, _show_build_line, network_mode="host",
                                          error=self._error)
        if self.build is not None and self.image:
            from docker.utils import parse_repository_tag

            with engine_errors(f"tagging image {self.built_tag} as {self.image}", self._error):
                engine(self._error).images.get(self.image_id).tag(*parse_repository_tag(self.image))
        self._remove_leftovers()

    def wrap(self, argv: list[str]) -> list[str]:
        return self._command(argv, {})

    def wrap_step(self, argv: list[str], node: Node) -> list[str]:
        resources = node.resources
        return self._command(argv, {
            "step": node.name, "pass": sorted(node.env_vars),
            "cpus": resources.get("cpus"), "memory": resources.get("memory"),
            "gpus": "granted" if resources.get("gpus") else self.gpus,
        })

    def _command(self, argv: list[str], step: dict[str, Any]) -> list[str]:
        """The argv of :mod:`flowml_docker.step` running ``argv`` in this environment's image."""
        spec = {"image": self.image_id, "root": self.root, "environment": self.name, "gpus": self.gpus, **step}
        return [sys.executable, "-m", "flowml_docker.step", json.dumps(spec), "--", *argv]

    def _image_id(self, ref: str) -> str | None:
        """The id of the image ``ref`` names, or None when the engine has no such image."""
        import docker.errors

        client = engine(self._error)
        with engine_errors(f"looking up image {ref}", self._error):
            try:
                return client.images.get(ref).id
            except docker.errors.ImageNotFound:
                return None

    def _remove_leftovers(self) -> None:
        here = socket.gethostname()
        labels = [f"{PROJECT_LABEL}={self.root}", OWNER_LABEL]
        with engine_errors("removing containers left by killed runs", self._error):
            for container in engine(self._error).containers.list(all=True, filters={"label": labels}):
                host, _, pid = container.labels.get(OWNER_LABEL, "").rpartition(":")
                if host == here and pid.isdigit() and not alive(int(pid)):
                    container.remove(force=True)

    def _error(self, message: str) -> EnvSetupError:
        return EnvSetupError(f"environment {self.name}: {message}")


def _show_build_line(line: str) -> None:
    print("  " + line, file=sys.stderr, flush=True)


def context_digest(folder: str) -> str:
    """SHA-256 of what a build of ``folder`` reads: every file, link and folder that
    ``.dockerignore`` lets into the build context, by path, content and executable bit (not by
    time: touching a file rebuilds nothing)."""
    from docker.utils.build import exclude_paths

    digest = hashlib.sha256()
    for rel in sorted(exclude_paths(folder, dockerignore_patterns(folder))):
        path = os.path.join(folder, rel)
        if os.path.islink(path):
            digest.update(b"L\0" + rel.encode() + b"\0" + os.readlink(path).encode() + b"\0")
        elif os.path.isdir(path):
            digest.update(b"D\0" + rel.encode() + b"\0")
        else:
            executable = b"x" if os.access(path, os.X_OK) else b"-"
            digest.update(b"F\0" + rel.encode() + b"\0" + executable + _file_digest(path) + b"\0")
    return digest.hexdigest()


def _file_digest(path: str) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.digest()


def _build_folder(value: str | None, root: str) -> str | None:
    """The build folder's absolute path (relative to the pipeline's folder in the file)."""
    if value is None:
        return None
    folder = os.path.normpath(os.path.join(root, value))
    if not os.path.isdir(folder):
        what = "is a file" if os.path.exists(folder) else "not found"
        raise SpecError(Problem(f"build folder '{value}' {what}; expected a folder with a Dockerfile, relative to "
                                "the pipeline's folder", field="build"))
    if not os.path.isfile(os.path.join(folder, "Dockerfile")):
        raise SpecError(Problem(f"build folder '{value}' has no Dockerfile", field="build"))
    return folder


def _repository_name(name: str) -> str:
    """``name`` as an image repository component (lower case; letters, digits, ``.``, ``_``, ``-``)."""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("._-")
    return cleaned or "env"


def _engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "the default socket"
