"""One loaded model as the scoring server holds it: the PyFuncModel, its input schema, its fast
path, and which version it is (for ``/version`` and the ``X-Flowml-Model-Version`` header)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import orjson


@dataclass(frozen=True)
class ModelInfo:
    """Which model a worker serves: the URI the user gave, the registry version it resolved to
    (None for a URI outside the registry), and the URI it was downloaded from."""

    uri: str
    version: str | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"model_uri": self.uri, "model_version": self.version, "model_source": self.source}


@dataclass(frozen=True)
class Served:
    model: Any  # flowml.models.pyfunc.PyFuncModel
    info: ModelInfo
    fast: Callable[[bytes, str], Any] | None = None
    schema: Any = None  # the model's input Schema, or None
    version_header: bytes = field(init=False)
    version_body: bytes = field(init=False)

    def __post_init__(self) -> None:
        from flowml.version import __version__

        label = self.info.version if self.info.version is not None else self.info.source
        object.__setattr__(self, "version_header", label.encode("latin-1", "replace"))
        object.__setattr__(self, "version_body", orjson.dumps({"flowml_version": __version__, **self.info.to_dict()}))


def load(path: str, info: ModelInfo) -> Served:
    """Load the model directory ``path`` and prove its fast path (see :mod:`.fastpath`)."""
    from flowml.models.pyfunc import load_model
    from flowml.models.serving import fastpath

    model = load_model(path)
    schema = model.metadata.get_input_schema()
    fast = fastpath.build(model, schema, raw_predict(model), _probe(path, model))
    return Served(model, info, fast, schema)


SKLEARN_LOADERS = ("flowml.models.flavors.sklearn", "mlflow.sklearn")


def raw_predict(model) -> Callable | None:
    """The estimator's own predict function (``predict``, or the flavor's configured
    ``predict_fn``) for a scikit-learn model; None for other flavors, whose code may treat a
    matrix and a table differently in ways a probe cannot see."""
    from flowml.models.mlmodel import PYFUNC

    conf = model.metadata.flavors.get(PYFUNC, {})
    if conf.get("loader_module") not in SKLEARN_LOADERS:
        return None
    return getattr(model.get_raw_model(), conf.get("predict_fn") or "predict", None)


def _probe(path: str, model):
    """The model's saved input example as a DataFrame, or None."""
    from flowml.models.example import load_example

    try:
        example = load_example(path, model.metadata.saved_input_example_info)
    except (OSError, ValueError, KeyError):
        return None
    return example if hasattr(example, "columns") else None
