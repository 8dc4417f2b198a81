"""Response bodies: predictions and errors in MLflow's JSON shapes, written with orjson.

Predictions are ``{"predictions": ...}``: a numpy array as (nested) lists, a DataFrame as a
list of row objects, a Series as a list of one-key row objects (MLflow's ``records``
orientation), anything else as it is. NaN and infinities become ``null`` (valid JSON, which
MLflow's ``NaN`` is not). Errors are ``{"error_code": ..., "message": ...}``.
"""

from __future__ import annotations

import base64
import datetime
from typing import Any

import orjson

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def predictions(value: Any) -> bytes:
    """The JSON body for a model's output."""
    return orjson.dumps({"predictions": _jsonable(value)}, default=_fallback, option=_OPTIONS)


def error(error_code: str, message: str) -> bytes:
    return orjson.dumps({"error_code": error_code, "message": message})


def _jsonable(value: Any) -> Any:
    module = type(value).__module__.split(".")[0]
    if module == "pandas":
        import pandas as pd

        if isinstance(value, pd.Series):
            value = value.to_frame()
        if isinstance(value, pd.DataFrame):
            return value.to_dict(orient="records")
    return value


def _fallback(value: Any) -> Any:
    """Values orjson does not write natively: non-contiguous or object arrays, numpy and pandas
    scalars of other kinds, timestamps, bytes (base64, as MLflow sends them)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (datetime.date, datetime.time)) or hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"a prediction of type {type(value).__name__} cannot be written as JSON")
