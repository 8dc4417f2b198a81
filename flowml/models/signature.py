"""Model signatures: what a model takes and returns, in MLflow's JSON shape.

A signature has ``inputs``, ``outputs`` (each a :class:`Schema`) and ``params`` (a
:class:`ParamSchema`). The MLmodel file stores each as a JSON *string*, as MLflow does:
``inputs: '[{"type": "double", "name": "x", "required": true}]'``. A schema is either
columns (:class:`ColSpec`, MLflow's type names: boolean, integer, long, float, double,
string, binary, datetime) or tensors (:class:`TensorSpec`: numpy dtype and shape, -1 for a
variable axis). Column types MLflow has and flowml does not check (array, object, map, any)
are kept as their JSON so a signature round-trips unchanged.

:func:`infer_signature` reads pandas and numpy values; pandas and numpy are imported inside the
functions that look at values, so reading an MLmodel costs neither.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator

from flowml.models.errors import ModelError

COLUMN_TYPES = ("boolean", "integer", "long", "float", "double", "string", "binary", "datetime")
# the numpy dtype each column type is held in (pandas holds strings and bytes as objects)
NUMPY_DTYPE = {"boolean": "bool", "integer": "int32", "long": "int64", "float": "float32", "double": "float64",
               "string": "object", "binary": "object", "datetime": "datetime64[ns]"}


@dataclass(frozen=True)
class ColSpec:
    """One column: an MLflow type name (or the JSON of a nested type), its name, whether required."""

    type: str | dict
    name: str | None = None
    required: bool = True

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.type) if isinstance(self.type, dict) else {"type": self.type}
        if self.name is not None:
            out["name"] = self.name
        out["required"] = self.required
        return out

    @property
    def checked(self) -> bool:
        """Whether flowml enforces this column's type (nested MLflow types pass through)."""
        return isinstance(self.type, str) and self.type in COLUMN_TYPES


@dataclass(frozen=True)
class TensorSpec:
    """One tensor: a numpy dtype name and a shape (-1: any size along that axis)."""

    dtype: str
    shape: tuple[int, ...]
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "tensor", "tensor-spec": {"dtype": self.dtype, "shape": list(self.shape)}}
        if self.name is not None:
            out["name"] = self.name
        return out


@dataclass(frozen=True)
class Schema:
    """The inputs or the outputs of a model: all columns, or all tensors."""

    specs: tuple[ColSpec | TensorSpec, ...]

    def __post_init__(self) -> None:
        kinds = {type(s) for s in self.specs}
        if len(kinds) > 1:
            raise ModelError("a schema holds columns or tensors, not both")

    def __iter__(self) -> Iterator[ColSpec | TensorSpec]:
        return iter(self.specs)

    def __len__(self) -> int:
        return len(self.specs)

    def is_tensor_spec(self) -> bool:
        return bool(self.specs) and isinstance(self.specs[0], TensorSpec)

    def has_input_names(self) -> bool:
        return bool(self.specs) and all(s.name is not None for s in self.specs)

    def input_names(self) -> list[str | None]:
        return [s.name for s in self.specs]

    def to_dict(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.specs]

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | list) -> "Schema":
        items = json.loads(text) if isinstance(text, str) else text
        if not isinstance(items, list):
            raise ModelError(f"a signature schema is a JSON list, got {type(items).__name__}")
        return cls(tuple(_spec(item) for item in items))


@dataclass(frozen=True)
class ParamSpec:
    """An inference parameter: name, type, default, and shape (None: a scalar; (-1,): a list)."""

    name: str
    type: str | dict
    default: Any
    shape: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "default": self.default,
                               "shape": list(self.shape) if self.shape is not None else None}
        out.update(dict(self.type) if isinstance(self.type, dict) else {"type": self.type})
        return out


@dataclass(frozen=True)
class ParamSchema:
    params: tuple[ParamSpec, ...]

    def __iter__(self) -> Iterator[ParamSpec]:
        return iter(self.params)

    def to_dict(self) -> list[dict[str, Any]]:
        return [p.to_dict() for p in self.params]

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | list) -> "ParamSchema":
        items = json.loads(text) if isinstance(text, str) else text
        specs = []
        for item in items:
            item = dict(item)
            if not {"name", "default"} <= set(item) or not ({"type", "dtype"} & set(item)):
                raise ModelError(f"a param spec needs name, type and default, got {item}")
            kind = item.pop("type", None) or item.pop("dtype")
            nested = {"type": kind, **{k: v for k, v in item.items() if k in ("items", "properties")}}
            shape = item.get("shape")
            specs.append(ParamSpec(item["name"], kind if kind in COLUMN_TYPES else nested, item["default"],
                                   tuple(shape) if shape is not None else None))
        return cls(tuple(specs))


@dataclass
class ModelSignature:
    """What a model takes (``inputs``), returns (``outputs``) and accepts as ``params``."""

    inputs: Schema | None = None
    outputs: Schema | None = None
    params: ParamSchema | None = None

    def to_dict(self) -> dict[str, str | None]:
        """MLmodel's ``signature`` entry: each part a JSON string, or None."""
        return {"inputs": self.inputs.to_json() if self.inputs is not None else None,
                "outputs": self.outputs.to_json() if self.outputs is not None else None,
                "params": self.params.to_json() if self.params else None}

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> "ModelSignature":
        def part(key, kind):
            value = entry.get(key)
            return kind.from_json(value) if value not in (None, "", "null") else None

        return cls(part("inputs", Schema), part("outputs", Schema), part("params", ParamSchema))


def _spec(item: dict) -> ColSpec | TensorSpec:
    if not isinstance(item, dict) or "type" not in item:
        raise ModelError(f"a signature entry is an object with a 'type', got {item!r}")
    if item["type"] == "tensor":
        info = item.get("tensor-spec") or {}
        if "dtype" not in info or "shape" not in info:
            raise ModelError(f"a tensor spec needs 'tensor-spec' with dtype and shape, got {item!r}")
        return TensorSpec(info["dtype"], tuple(int(n) for n in info["shape"]), item.get("name"))
    rest = {k: v for k, v in item.items() if k not in ("name", "required")}
    kind = item["type"] if item["type"] in COLUMN_TYPES else rest
    return ColSpec(kind, item.get("name"), bool(item.get("required", True)))


# inference ---------------------------------------------------------------------------------

def infer_signature(model_input: Any = None, model_output: Any = None,
                    params: dict[str, Any] | None = None) -> ModelSignature:
    """The signature of a model from an example of its input, its output on that input, and
    its inference params (MLflow's ``infer_signature``).

    Raises:
        ModelError: for a value whose type has no MLflow schema (a set, an object column of mixed values).
    """
    inputs = infer_schema(model_input) if model_input is not None else None
    outputs = None
    if model_output is not None:
        model_output = _as_column_output(model_output, inputs)
        outputs = infer_schema(model_output)
    return ModelSignature(inputs, outputs, infer_params(params) if params else None)


def _as_column_output(output: Any, inputs: Schema | None) -> Any:
    """For column inputs a 1-D array of predictions is one value per row: one unnamed column,
    as MLflow records it, not a tensor."""
    if inputs is not None and not inputs.is_tensor_spec() and getattr(output, "ndim", None) == 1 \
            and type(output).__module__ == "numpy":
        import pandas as pd

        return pd.Series(output)
    return output


def infer_schema(value: Any) -> Schema:
    """The schema of one value: a DataFrame or a Series (columns), a numpy array (one tensor),
    a dict of arrays (named tensors), a dict of scalars/lists or a list of scalars (columns)."""
    module = type(value).__module__.split(".")[0]
    if module == "pandas":
        import pandas as pd

        if isinstance(value, pd.DataFrame):
            return Schema(tuple(ColSpec(column_type(value[c]), str(c)) for c in value.columns))
        if isinstance(value, pd.Series):
            return Schema((ColSpec(column_type(value), None if value.name is None else str(value.name)),))
    if module == "numpy" and hasattr(value, "dtype"):
        return Schema((tensor_spec(value),))
    if isinstance(value, dict):
        if value and all(type(v).__module__ == "numpy" and hasattr(v, "shape") for v in value.values()):
            return Schema(tuple(tensor_spec(v, str(k)) for k, v in value.items()))
        import pandas as pd

        return infer_schema(pd.DataFrame({k: v if isinstance(v, list) else [v] for k, v in value.items()}))
    if isinstance(value, list) and value and all(not isinstance(v, (list, dict)) for v in value):
        import pandas as pd

        return infer_schema(pd.Series(value))
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        import pandas as pd

        return infer_schema(pd.DataFrame(value))
    raise ModelError(f"cannot infer a schema from a {type(value).__name__}: give a pandas DataFrame or "
                     "Series, a numpy array, a dict of numpy arrays, or a list of rows")


def column_type(series) -> str:
    """The MLflow type of a pandas column (object columns by their values)."""
    dtype = series.dtype
    kind = getattr(dtype, "kind", "O")
    if kind == "O" or str(dtype) in ("string", "str"):
        return _object_type(series)
    return dtype_type(dtype, what=f"column '{series.name}'")


def dtype_type(dtype, what: str = "value") -> str:
    """The MLflow column type of a numpy dtype, by its kind and size (MLflow's rules)."""
    kind, size = dtype.kind, dtype.itemsize
    if kind == "b":
        return "boolean"
    if kind in "iu":
        if size < 4 or (kind == "i" and size == 4):
            return "integer"
        if size < 8 or (kind == "i" and size == 8):
            return "long"
    if kind == "f":
        return "float" if size <= 4 else "double"
    if kind == "U":
        return "string"
    if kind == "S":
        return "binary"
    if kind == "M":
        return "datetime"
    raise ModelError(f"{what}: numpy type '{dtype}' has no MLflow column type")


def _object_type(series) -> str:
    values = series.dropna()
    kinds = {type(v) for v in values}
    if kinds <= {str}:
        return "string"
    if kinds <= {bytes, bytearray}:
        return "binary"
    if kinds <= {bool}:
        return "boolean"
    import numpy as np

    try:
        return dtype_type(np.asarray(values.tolist()).dtype, f"column '{series.name}'")
    except ModelError:
        raise ModelError(f"column '{series.name}' holds values of several types "
                         f"({', '.join(sorted(k.__name__ for k in kinds))}): give it one type") from None


def tensor_spec(array, name: str | None = None) -> TensorSpec:
    """A numpy array's spec: its dtype (str/bytes without their length) and its shape with a
    variable first (batch) axis."""
    dtype = array.dtype
    dtype_name = {"U": "str", "S": "bytes"}.get(dtype.char, dtype.name)
    shape = (-1, *array.shape[1:]) if array.ndim else ()
    return TensorSpec(dtype_name, tuple(int(n) for n in shape), name)


def infer_params(params: dict[str, Any]) -> ParamSchema:
    """A param schema from example values: scalars, or 1-D lists (shape (-1,))."""
    import numpy as np

    if not isinstance(params, dict):
        raise ModelError(f"params are a dict of name -> value, got {type(params).__name__}")
    specs = []
    for name, value in params.items():
        if isinstance(value, (list, tuple, np.ndarray)):
            array = np.asarray(value)
            if array.ndim != 1:
                raise ModelError(f"param '{name}': a param is a scalar or a 1-D list, got {array.ndim} dimensions")
            specs.append(ParamSpec(name, dtype_type(array.dtype, f"param '{name}'"), _plain(value), (-1,)))
        elif isinstance(value, (str, bool, int, float, np.generic)):
            specs.append(ParamSpec(name, dtype_type(np.asarray(value).dtype, f"param '{name}'"), _plain(value)))
        else:
            raise ModelError(f"param '{name}': a param is a scalar or a 1-D list, got {type(value).__name__}")
    return ParamSchema(tuple(specs))


def _plain(value: Any) -> Any:
    """A JSON-ready copy of a param value (numpy scalars and arrays as Python values)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return list(value) if isinstance(value, tuple) else value


__all__ = ["ColSpec", "TensorSpec", "Schema", "ParamSpec", "ParamSchema", "ModelSignature", "infer_signature",
           "infer_schema", "infer_params"]
