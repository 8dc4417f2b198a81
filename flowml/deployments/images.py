"""Image builders: a model and a server to score it, packaged as a container image.

A builder is a class registered under the ``flowml.image_builders`` entry-point group and
loaded only when ``flowml models build-docker`` (or a container deployment target) needs it.
The core ships none, so that it never depends on a container engine: flowml-docker
provides ``docker``, which builds through Docker's API (Docker, or Podman serving it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from flowml.deployments import PROVIDERS
from flowml.errors import Problem, SpecError
from flowml.plugins import find_plugin


class ImageBuilder(ABC):
    """Writes a build context for a model and builds it into an image."""

    @abstractmethod
    def write_context(self, model_uri: str, folder: str, *, base_image: str | None = None,
                      tracking_uri: str | None = None) -> str:
        """Write the Dockerfile and everything it copies into ``folder``; returns the Dockerfile's path."""

    @abstractmethod
    def build(self, model_uri: str, tag: str, *, base_image: str | None = None,
              tracking_uri: str | None = None) -> str:
        """Build the image ``tag`` serving ``model_uri`` on port 8080; returns the image id."""


def load_image_builder(kind: str = "docker") -> ImageBuilder:
    """The builder registered as ``kind``.

    Raises:
        SpecError: naming the package to install when none provides ``kind``.
    """
    cls = find_plugin("flowml.image_builders", kind)
    if cls is None:
        provider = PROVIDERS.get(kind, f"a plugin registering '{kind}' under flowml.image_builders")
        raise SpecError(Problem(f"no image builder '{kind}' is installed: building images needs {provider}",
                                "command line"))
    return cls()
