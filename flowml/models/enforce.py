"""Schema enforcement at predict time: input that does not fit the model's signature is refused
with a :class:`ModelInputError` that names the column (tensor, param), the expected and the
found type, before the model sees it.

Columns (MLflow's rules): missing required columns are an error; extra columns are dropped;
columns are put in the schema's order. A column of another type is converted only when no value
changes: a narrower int or float widens (int32 -> long, float -> double), an int becomes a
float when every value is exactly representable (always for 8 to 32-bit ints; for int64 when
every value is within 2**53), and a wider int narrows when every value fits (JSON and CSV give
int64 for an ``integer`` column). These two value checks make flowml a little more accepting
than MLflow, which refuses int64 -> double (unless the values are 0 and 1) and long -> integer
whatever the values. Object columns of datetimes become datetime. A float never becomes an
int, a double never a float, a number never a string.

Tensors: the same dtype rule, and the shape must match, -1 accepting any size. A DataFrame
given to a model with one tensor input is taken as a 2-D array; a dict feeds named tensors.

Params: unknown ones are dropped with a warning (as MLflow does), missing ones take their
defaults, given ones are converted to their declared type or refused.
"""

from __future__ import annotations

import warnings
from typing import Any

from flowml.models.errors import ModelInputError
from flowml.models.signature import NUMPY_DTYPE, ColSpec, ParamSchema, Schema, TensorSpec

__all__ = ["ModelInputError", "enforce_input", "enforce_params"]

_EXACT_INT_BITS = {"float32": 24, "float64": 53}  # integers a float holds exactly: up to 2**bits


def enforce_input(data: Any, schema: Schema | None) -> Any:
    """``data`` checked against ``schema`` and converted where that is safe (None: unchecked)."""
    if schema is None or not len(schema):
        return data
    if schema.is_tensor_spec():
        return _enforce_tensors(data, schema)
    return _enforce_columns(data, schema)


# columns -----------------------------------------------------------------------------------

def _enforce_columns(data: Any, schema: Schema):
    frame = _as_frame(data, schema)
    specs: list[ColSpec] = list(schema)
    if schema.has_input_names():
        missing = [f"'{s.name}' ({_type_name(s)})" for s in specs if s.required and s.name not in frame.columns]
        if missing:
            raise ModelInputError(f"missing input column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}"
                                  f"; the input has {', '.join(repr(str(c)) for c in frame.columns) or 'no columns'}")
        pairs = [(s.name, s) for s in specs if s.name in frame.columns]
    else:  # unnamed columns are matched by position
        if len(frame.columns) < len(specs):
            raise ModelInputError(f"the model takes {len(specs)} columns, the input has {len(frame.columns)}")
        pairs = list(zip(frame.columns[:len(specs)], specs))
    names = [name for name, _ in pairs]
    dtypes = frame.dtypes
    convert = [(name, spec) for name, spec in pairs if spec.checked and not _already(dtypes[name], spec.type)]
    if not convert and list(frame.columns) == names:
        return frame  # the common case, checked without copying: a serving process pays this per request
    out = frame[names].copy()  # extra columns dropped, the schema's order
    for name, spec in convert:
        out[name] = _column(out[name], spec.type, name)
    return out


def _already(dtype, expected: str) -> bool:
    """Whether a column of ``dtype`` needs no conversion to ``expected``."""
    return expected in NUMPY_DTYPE and expected not in ("string", "binary") and str(dtype) == NUMPY_DTYPE[expected]


def _as_frame(data: Any, schema: Schema):
    """The input as a DataFrame: a DataFrame, a Series, a dict of columns, a list of rows, or a
    2-D array whose columns are the schema's in order."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    if isinstance(data, dict):
        return pd.DataFrame({k: v if hasattr(v, "__len__") and not isinstance(v, (str, bytes)) else [v]
                             for k, v in data.items()})
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        return pd.DataFrame(data)
    if type(data).__module__ == "numpy" or isinstance(data, list):
        import numpy as np

        array = np.asarray(data)
        if array.ndim == 1:
            array = array.reshape(-1, 1)
        if array.ndim != 2:
            raise ModelInputError(f"the model takes columns; got an array of {array.ndim} dimensions")
        names = schema.input_names() if schema.has_input_names() else None
        if names is not None and array.shape[1] != len(names):
            raise ModelInputError(f"the model takes {len(names)} columns ({', '.join(names)}), "
                                  f"the array has {array.shape[1]}")
        return pd.DataFrame(array, columns=names)
    raise ModelInputError(f"the model takes a table (DataFrame, dict of columns, list of rows), "
                          f"got a {type(data).__name__}")


def _type_name(spec: ColSpec) -> str:
    return spec.type if isinstance(spec.type, str) else spec.type.get("type", "?")


def _column(values, expected: str, name: str):
    """One column converted to ``expected``, or a ModelInputError naming it."""
    import numpy as np
    import pandas as pd

    dtype = values.dtype
    kind = getattr(dtype, "kind", "O")
    is_text = kind in "OU" or isinstance(dtype, pd.StringDtype)
    if expected in ("string", "binary"):
        if is_text or kind == "S":
            return values
    elif expected == "datetime":
        if kind == "M":
            return values.astype("datetime64[ns]")
        if kind == "O":
            try:
                return pd.to_datetime(values, errors="raise")
            except (ValueError, TypeError):
                pass
    elif expected == "boolean":
        if kind == "b" or (kind == "O" and values.dropna().map(type).isin([bool]).all()):
            return values
    else:
        if kind == "O" and not isinstance(dtype, pd.StringDtype):
            inferred = values.infer_objects()
            if inferred.dtype.kind != "O":
                return _column(inferred, expected, name)
        target = np.dtype(NUMPY_DTYPE[expected])
        if kind in "iuf" and _safe_numeric(values.to_numpy(), target):
            return values.astype(target)
    found = "string" if isinstance(dtype, pd.StringDtype) else str(dtype)
    raise ModelInputError(f"column '{name}': expected {expected}, found {found}, which cannot be converted "
                          "without changing values")


def _safe_numeric(array, target) -> bool:
    """Whether every number in ``array`` keeps its value as ``target`` (see the module's rules)."""
    import numpy as np

    source = array.dtype
    if source == target:
        return True
    if source.kind in "iu" and target.kind in "iu":
        if np.can_cast(source, target, "safe"):
            return True
        bounds = np.iinfo(target)  # a narrower int holds these values when each one fits
        return bool(array.size == 0 or (array.min() >= bounds.min and array.max() <= bounds.max))
    if source.kind == target.kind:
        return np.can_cast(source, target, "safe")
    if source.kind in "iu" and target.kind == "f":
        if np.can_cast(source, target, "safe") and source.itemsize * 2 <= target.itemsize:
            return True
        limit = 2 ** _EXACT_INT_BITS[target.name]
        return bool(array.size == 0 or (np.abs(array.astype(np.float64)) <= limit).all())
    return False


# tensors -----------------------------------------------------------------------------------

def _enforce_tensors(data: Any, schema: Schema):
    import numpy as np

    specs: list[TensorSpec] = list(schema)
    if not schema.has_input_names():
        spec = specs[0]
        if isinstance(data, dict):
            raise ModelInputError(f"the model takes one tensor ({spec.dtype}, shape {list(spec.shape)}), "
                                  f"got a dict of {', '.join(map(str, data))}")
        array = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
        return _tensor(array, spec, "input")
    if hasattr(data, "columns"):
        data = {c: data[c].to_numpy() for c in data.columns}
    if not isinstance(data, dict):
        raise ModelInputError(f"the model takes named tensors ({', '.join(s.name for s in specs)}), "
                              f"got a {type(data).__name__}")
    missing = [s.name for s in specs if s.name not in data]
    if missing:
        raise ModelInputError(f"missing input tensor{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    return {s.name: _tensor(np.asarray(data[s.name]), s, f"tensor '{s.name}'") for s in specs}


def _tensor(array, spec: TensorSpec, what: str):
    import numpy as np

    expected = tuple(spec.shape)
    if len(expected) != array.ndim or any(e not in (-1, a) for e, a in zip(expected, array.shape)):
        raise ModelInputError(f"{what}: expected shape {list(expected)}, found {list(array.shape)}")
    if spec.dtype in ("str", "bytes", "object"):
        if array.dtype.kind in ("U", "S", "O"):
            return array
    else:
        target = np.dtype(spec.dtype)
        if array.dtype.kind in "biuf" and (array.dtype == target or _safe_numeric(array, target)):
            return array.astype(target, copy=False)
    raise ModelInputError(f"{what}: expected dtype {spec.dtype}, found {array.dtype}, which cannot be "
                          "converted without changing values")


# params ------------------------------------------------------------------------------------

def enforce_params(params: dict[str, Any] | None, schema: ParamSchema | None) -> dict[str, Any] | None:
    """``params`` with defaults filled in and values converted to their declared types."""
    if schema is None:
        if params:
            warnings.warn(f"the model declares no params; ignoring {', '.join(params)}", stacklevel=3)
        return None
    params = dict(params or {})
    known = {p.name: p for p in schema}
    unknown = [k for k in params if k not in known]
    if unknown:
        warnings.warn(f"the model declares no param {', '.join(map(repr, unknown))}; ignoring it", stacklevel=3)
    return {name: _param(params[name], spec) if name in params else spec.default for name, spec in known.items()}


def _param(value: Any, spec) -> Any:
    converters = {"boolean": (bool,), "integer": (int,), "long": (int,), "float": (float, int),
                  "double": (float, int), "string": (str,), "binary": (bytes,), "datetime": (str,)}
    accepted = converters.get(spec.type) if isinstance(spec.type, str) else None
    if accepted is None:
        return value
    values = value if spec.shape is not None else [value]
    if spec.shape is not None and not isinstance(value, (list, tuple)):
        raise ModelInputError(f"param '{spec.name}': expected a list of {spec.type}, found {type(value).__name__}")
    for item in values:
        is_bool = isinstance(item, bool)
        if not isinstance(item, accepted) or (is_bool and spec.type != "boolean"):
            raise ModelInputError(f"param '{spec.name}': expected {spec.type}, found {type(item).__name__} {item!r}")
    if spec.type in ("float", "double"):
        return [float(v) for v in values] if spec.shape is not None else float(value)
    return list(values) if spec.shape is not None else value
