"""The ``MLmodel`` file: the YAML at the root of a model directory that says what the model is
and how to load it, in MLflow's format, so that MLflow and flowml each load the other's models.

Fields (as MLflow 3 writes them): ``flavors`` (flavor name -> its settings; ``python_function``
holds ``loader_module``, ``python_version``, ``env`` {``conda``, ``virtualenv``} and where the
model's files are), ``run_id``, ``artifact_path``, ``model_uuid``, ``model_id`` (MLflow 3's
logged model), ``utc_time_created``, ``signature`` ({inputs, outputs, params} as JSON strings),
``saved_input_example_info``, ``model_size_bytes``, ``metadata``. Keys flowml does not know
are kept and written back unchanged. flowml adds ``flowml_version``; it writes no
``mlflow_version`` (no MLflow wrote the model, and MLflow's loaders do not need one).

:data:`MLMODEL_SCHEMA` is the JSON Schema of the file (committed as ``schemas/mlmodel.schema.json``).
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from typing import Any

from flowml.models.errors import ModelError
from flowml.models.signature import ModelSignature, ParamSchema, Schema
from flowml.version import __version__

MLMODEL_FILE = "MLmodel"
PYFUNC = "python_function"
_KNOWN = ("artifact_path", "run_id", "model_uuid", "model_id", "utc_time_created", "flavors", "signature",
          "saved_input_example_info", "model_size_bytes", "metadata", "flowml_version")
_DERIVED = ("is_signature_from_type_hint", "type_hint_from_example")  # MLflow's, recomputed on write


class Model:
    """A parsed MLmodel file (MLflow's ``mlflow.models.Model``)."""

    def __init__(self, flavors: dict[str, dict] | None = None, signature: ModelSignature | None = None,
                 run_id: str | None = None, artifact_path: str | None = None, model_uuid: str | None = None,
                 model_id: str | None = None, utc_time_created: str | None = None,
                 saved_input_example_info: dict | None = None, model_size_bytes: int | None = None,
                 metadata: dict | None = None, flowml_version: str | None = __version__,
                 extra: dict[str, Any] | None = None) -> None:
        self.flavors = dict(flavors or {})
        self.signature = signature
        self.run_id = run_id
        self.artifact_path = artifact_path
        self.model_uuid = model_uuid or uuid.uuid4().hex
        self.model_id = model_id
        self.utc_time_created = utc_time_created or str(datetime.now(timezone.utc).replace(tzinfo=None))
        self.saved_input_example_info = saved_input_example_info
        self.model_size_bytes = model_size_bytes
        self.metadata = metadata
        self.flowml_version = flowml_version
        self.extra = dict(extra or {})  # keys of other writers (MLflow's prompts, resources ...)

    def add_flavor(self, name: str, **conf: Any) -> "Model":
        self.flavors[name] = conf
        return self

    def flavor(self, name: str, path: str = "") -> dict:
        """A flavor's settings; ``path`` (the model directory) only makes the error clearer."""
        conf = self.flavors.get(name)
        if conf is None:
            where = f"model at {path}" if path else "model"
            raise ModelError(f"the {where} has no '{name}' flavor (it has: {', '.join(self.flavors) or 'none'})")
        return conf

    def get_input_schema(self) -> Schema | None:
        return self.signature.inputs if self.signature is not None else None

    def get_output_schema(self) -> Schema | None:
        return self.signature.outputs if self.signature is not None else None

    def get_params_schema(self) -> ParamSchema | None:
        return self.signature.params if self.signature is not None else None

    # reading and writing -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        for key in _KNOWN:
            value = getattr(self, key)
            if key == "signature" and value is not None:
                out[key] = value.to_dict()
                out.update({k: False for k in _DERIVED})
            elif value is not None or key == "model_id":  # MLflow writes model_id: null outside a run
                out[key] = value
        return out

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), default_flow_style=False, sort_keys=True)

    def save(self, path: str) -> None:
        """Write to ``path`` (a model directory or the MLmodel file itself)."""
        target = os.path.join(path, MLMODEL_FILE) if os.path.isdir(path) else path
        with open(target, "w", encoding="utf-8") as out:
            out.write(self.to_yaml())

    @classmethod
    def from_dict(cls, entry: dict[str, Any], source: str = "MLmodel") -> "Model":
        if not isinstance(entry, dict):
            raise ModelError(f"{source}: an MLmodel file is a YAML mapping, got {type(entry).__name__}")
        flavors = entry.get("flavors")
        if not isinstance(flavors, dict) or not all(isinstance(v, dict) for v in flavors.values()):
            raise ModelError(f"{source}: 'flavors' must map flavor names to their settings")
        signature = entry.get("signature")
        try:
            signature = ModelSignature.from_dict(signature) if isinstance(signature, dict) else None
        except (ValueError, ModelError) as exc:
            raise ModelError(f"{source}: signature: {exc}") from None
        values = {k: entry.get(k) for k in _KNOWN if k not in ("flavors", "signature")}
        extra = {k: v for k, v in entry.items() if k not in _KNOWN and k not in _DERIVED}
        return cls(flavors=flavors, signature=signature, extra=extra, **values)

    @classmethod
    def load(cls, path: str) -> "Model":
        """Read a model directory's MLmodel (or the file at ``path``).

        Raises:
            ModelError: no MLmodel there, or not one MLflow or flowml could have written.
        """
        import yaml

        target = os.path.join(path, MLMODEL_FILE) if os.path.isdir(path) else path
        try:
            with open(target, encoding="utf-8") as src:
                entry = yaml.safe_load(src)
        except FileNotFoundError:
            raise ModelError(f"no model at {path}: {MLMODEL_FILE} not found") from None
        except yaml.YAMLError as exc:
            raise ModelError(f"{target}: not valid YAML: {exc}") from None
        return cls.from_dict(entry, target)


def directory_size(path: str) -> int:
    """Bytes in the files under ``path`` (MLmodel's ``model_size_bytes``)."""
    return sum(os.path.getsize(os.path.join(folder, name)) for folder, _, names in os.walk(path) for name in names)


# the JSON Schema of an MLmodel file ------------------------------------------------------------

_NULLABLE_STRING = {"type": ["string", "null"]}
_SCHEMA_JSON = {"type": ["string", "null"], "description": "a JSON list of column or tensor specs, as text"}

MLMODEL_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://flowml.dev/schemas/mlmodel.schema.json",
    "title": "MLmodel (the descriptor of an MLflow-format model directory)",
    "type": "object",
    "required": ["flavors"],
    "properties": {
        "flavors": {
            "type": "object",
            "description": "flavor name -> its settings; python_function says how to load the model generically",
            "additionalProperties": {"type": "object"},
            "properties": {
                PYFUNC: {
                    "type": "object",
                    "required": ["loader_module"],
                    "properties": {
                        "loader_module": {"type": "string", "description": "module whose _load_pyfunc(path) loads it"},
                        "python_version": {"type": "string"},
                        "env": {"type": ["object", "string"], "properties": {
                            "conda": {"type": "string"}, "virtualenv": {"type": "string"}}},
                        "data": {"type": "string", "description": "path passed to _load_pyfunc, relative"},
                        "model_path": {"type": "string"},
                        "code": _NULLABLE_STRING,
                        "predict_fn": {"type": "string"},
                        "python_model": {"type": "string"},
                        "artifacts": {"type": "object", "additionalProperties": {
                            "type": "object", "properties": {"path": {"type": "string"}}}},
                        "model_config": {"type": ["object", "null"]},
                    },
                },
                "sklearn": {
                    "type": "object",
                    "required": ["pickled_model", "serialization_format"],
                    "properties": {
                        "pickled_model": {"type": "string"},
                        "serialization_format": {"enum": ["skops", "pickle", "cloudpickle"]},
                        "sklearn_version": {"type": "string"},
                        "skops_trusted_types": {"type": ["array", "null"], "items": {"type": "string"}},
                        "code": _NULLABLE_STRING,
                    },
                },
                "pytorch": {
                    "type": "object",
                    "required": ["model_data"],
                    "properties": {"model_data": {"type": "string"}, "pytorch_version": {"type": "string"},
                                   "code": _NULLABLE_STRING},
                },
            },
        },
        "run_id": _NULLABLE_STRING,
        "artifact_path": _NULLABLE_STRING,
        "model_uuid": _NULLABLE_STRING,
        "model_id": _NULLABLE_STRING,
        "utc_time_created": {"type": "string", "description": "YYYY-MM-DD HH:MM:SS.ffffff, UTC"},
        "mlflow_version": _NULLABLE_STRING,
        "flowml_version": {"type": "string"},
        "model_size_bytes": {"type": "integer", "minimum": 0},
        "metadata": {"type": ["object", "null"]},
        "signature": {
            "type": "object",
            "properties": {"inputs": _SCHEMA_JSON, "outputs": _SCHEMA_JSON,
                           "params": {"type": ["string", "null"], "description": "a JSON list of param specs, as text"}},
        },
        "saved_input_example_info": {
            "type": "object",
            "required": ["artifact_path", "type"],
            "properties": {
                "artifact_path": {"type": "string"},
                "serving_input_path": {"type": "string"},
                "type": {"enum": ["dataframe", "ndarray", "json_object", "sparse_matrix_csc", "sparse_matrix_csr"]},
                "pandas_orient": {"enum": ["split", "values", "records"]},
            },
        },
    },
    "additionalProperties": True,
}


def mlmodel_schema_text() -> str:
    """The schema as committed in ``schemas/mlmodel.schema.json`` (stable key order)."""
    return json.dumps(MLMODEL_SCHEMA, indent=2, sort_keys=True) + "\n"
