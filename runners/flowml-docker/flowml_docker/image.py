"""The model image: a Dockerfile and its build context, built through Docker's API with no network.

The context holds the model directory, a ``requirements.txt`` (flowml, with what its scoring
server needs, plus the model's own requirements) and a ``wheels/`` folder with a wheel for
every one of them, made on the host by ``pip wheel`` through the host's configured indexes.
Inside the image a virtual environment installs them with ``--no-index``, so the build
itself reaches nothing (it runs with ``network_mode="none"``). The wheels are the host's, so
the base image must run the host's Python version on the host's platform: by default the
official ``python:<major>.<minor>-slim-bookworm`` of the host's Python, pulled once if the
engine does not have it.

The context is written into a new folder beside the one asked for and renamed onto it at the
end, so a failure (``pip wheel`` refusing a requirement, Ctrl-C) leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from typing import Callable

from flowml.deployments import DeploymentError
from flowml.deployments.images import ImageBuilder
from flowml.errors import Problem, SpecError

from flowml_docker.engine import ErrorType, engine

DEFAULT_BASE_IMAGE = f"python:{sys.version_info.major}.{sys.version_info.minor}-slim-bookworm"
PORT = 8080
MODEL_PATH = "/opt/ml/model"
# flowml's optional dependencies that its scoring server needs, when the installed flowml has them.
SERVING_EXTRAS = ("pandas", "serving")

DOCKERFILE = """\
# Written by flowml models build-docker: serves {model_uri} on port {port}.
FROM {base_image}
COPY wheels/ /tmp/wheels/
COPY requirements.txt /tmp/requirements.txt
RUN python3 -m venv /opt/flowml \\
 && /opt/flowml/bin/pip install --no-index --no-cache-dir --disable-pip-version-check \\
        --find-links /tmp/wheels -r /tmp/requirements.txt \\
 && rm -rf /tmp/wheels /tmp/requirements.txt
COPY model/ {model_path}/
ENV PATH=/opt/flowml/bin:$PATH PYTHONUNBUFFERED=1
WORKDIR /opt/ml
EXPOSE {port}
CMD ["flowml", "models", "serve", "-m", "{model_path}", "--host", "0.0.0.0", "--port", "{port}"]
"""


class DockerImageBuilder(ImageBuilder):
    """``flowml models build-docker``: see the module's documentation."""

    def __init__(self, log: Callable[[str], None] | None = None) -> None:
        self.log = log or (lambda line: None)

    def write_context(self, model_uri: str, folder: str, *, base_image: str | None = None,
                      tracking_uri: str | None = None) -> str:
        if os.path.isdir(folder) and os.listdir(folder):
            raise SpecError(Problem(f"{folder} is not empty: the build context needs a new or empty folder",
                                    "command line", field="--dockerfile-only"))
        folder = os.path.abspath(folder)
        parent = os.path.dirname(folder)
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(folder)}-")
        try:
            os.chmod(staging, 0o755)  # a folder for the user, not mkdtemp's private one
            self._fill(staging, model_uri, base_image or DEFAULT_BASE_IMAGE, tracking_uri)
            os.replace(staging, folder)  # onto a missing or empty folder: whole or not at all
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return os.path.join(folder, "Dockerfile")

    def _fill(self, folder: str, model_uri: str, base_image: str, tracking_uri: str | None) -> None:
        """Write the build context into the (new, empty) ``folder``."""
        from flowml.models.uri import download_model

        with tempfile.TemporaryDirectory(prefix="flowml-image-") as tmp:
            model = download_model(model_uri, dst=tmp, tracking_uri=tracking_uri)
            shutil.copytree(model, os.path.join(folder, "model"), symlinks=False)
        extras = flowml_extras()
        needed = _model_requirements(os.path.join(folder, "model"))
        with open(os.path.join(folder, "requirements.txt"), "w", encoding="utf-8") as fh:
            fh.write("\n".join([f"flowml{extras}", *needed]) + "\n")
        self.log(f"building wheels of flowml and {len(needed)} model requirement(s) on the host")
        _pip_wheel(flowml_source(extras), needed, os.path.join(folder, "wheels"))
        with open(os.path.join(folder, "Dockerfile"), "w", encoding="utf-8") as fh:
            fh.write(DOCKERFILE.format(model_uri=model_uri, base_image=base_image, port=PORT, model_path=MODEL_PATH))

    def build(self, model_uri: str, tag: str, *, base_image: str | None = None,
              tracking_uri: str | None = None) -> str:
        base_image = base_image or DEFAULT_BASE_IMAGE
        ensure_image(base_image, self.log)  # before the wheels: a base that cannot be had fails at once
        with tempfile.TemporaryDirectory(prefix="flowml-build-") as context:
            self.write_context(model_uri, context, base_image=base_image, tracking_uri=tracking_uri)
            return build_context(context, tag, self.log)


def ensure_image(image: str, log: Callable[[str], None]) -> None:
    """Pull ``image`` unless the engine has it already (the build itself pulls nothing).

    Raises:
        DeploymentError: naming the image and --base-image when it cannot be pulled.
    """
    import docker.errors

    client = engine()
    try:
        client.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.APIError as exc:
        raise DeploymentError(f"cannot look up the base image {image}: {exc.explanation or exc}") from None
    log(f"pulling the base image {image}")
    try:
        client.images.pull(image)
    except docker.errors.APIError as exc:
        raise DeploymentError(f"cannot pull the base image {image}: {exc.explanation or exc}; "
                              "name one the engine has with --base-image") from None


def build_context(context: str, tag: str, log: Callable[[str], None], *, network_mode: str = "none",
                  error: ErrorType = DeploymentError) -> str:
    """Build the folder ``context`` into the image ``tag`` (by default with no network);
    returns the image id.

    Raises:
        error: with the build's last lines when a step of the Dockerfile fails.
    """
    import docker.errors
    from docker.utils.build import tar

    client = engine(error)
    lines: list[str] = []
    try:
        # The archive of the context is ours to close: left to the SDK, a temporary file of the
        # whole context waits for the garbage collector, and is deleted whenever that runs.
        with tar(context, exclude=dockerignore_patterns(context)) as archive:
            for chunk in client.api.build(fileobj=archive, custom_context=True, tag=tag, rm=True, forcerm=True,
                                          pull=False, decode=True, network_mode=network_mode):
                text = chunk.get("stream") or chunk.get("status") or ""
                for line in text.splitlines():
                    if line.strip():
                        lines.append(line)
                        log(line)
                if "error" in chunk or "errorDetail" in chunk:
                    reason = chunk.get("error") or chunk["errorDetail"].get("message", "")
                    raise error(f"building image {tag} failed: {reason.strip()}\n" + _last(lines))
        return client.images.get(tag).id
    except docker.errors.APIError as exc:
        raise error(f"building image {tag} failed: {exc.explanation or exc}\n" + _last(lines)) from None


def dockerignore_patterns(folder: str) -> list[str]:
    """The patterns of ``folder/.dockerignore`` (none without one), read as the docker SDK reads them."""
    try:
        with open(os.path.join(folder, ".dockerignore"), encoding="utf-8") as fh:
            lines = [line.strip() for line in fh.read().splitlines()]
    except FileNotFoundError:
        return []
    return [line for line in lines if line and not line.startswith("#")]


def flowml_extras() -> str:
    """``[pandas,...]``: the extras of flowml that its scoring server needs, or ``""``."""
    provided = set(metadata.metadata("flowml").get_all("Provides-Extra") or [])
    extras = [e for e in SERVING_EXTRAS if e in provided]
    return f"[{','.join(extras)}]" if extras else ""


def flowml_source(extras: str) -> str:
    """What ``pip wheel`` builds flowml from: the source folder of a local (editable) install,
    else the installed version from the indexes."""
    dist = metadata.distribution("flowml")
    url = json.loads(dist.read_text("direct_url.json") or "{}").get("url", "")
    if url.startswith("file://") and os.path.isdir(url[len("file://"):]):
        return url[len("file://"):] + extras
    return f"flowml{extras}=={dist.version}"


def _model_requirements(model_dir: str) -> list[str]:
    """The requirement lines of the model's requirements.txt (comments and options dropped)."""
    try:
        with open(os.path.join(model_dir, "requirements.txt"), encoding="utf-8") as fh:
            lines = [line.split("#", 1)[0].strip() for line in fh]
    except FileNotFoundError:
        return []
    return [line for line in lines if line and not line.startswith("-")]


def _pip_wheel(flowml: str, requirements: list[str], folder: str) -> None:
    """Wheels of flowml, ``requirements`` and all they need into ``folder``, through the host's pip."""
    # A fixed timestamp makes flowml's wheel the same bytes for the same source, so the engine's
    # layer cache skips the install when only the model changed.
    env = {**os.environ, "SOURCE_DATE_EPOCH": "315532800"}
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
                           "--wheel-dir", folder, flowml, *requirements], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        wanted = ", ".join(["flowml", *requirements])
        raise DeploymentError(f"pip could not build the wheels the image needs ({wanted}):\n"
                              f"{proc.stderr.strip()[-2000:]}")


def _last(lines: list[str], count: int = 20) -> str:
    return "build output (last lines):\n" + "\n".join("  " + line for line in lines[-count:])
