"""Input examples saved beside a model: ``input_example.json`` in MLflow's layout (a DataFrame
as pandas' ``split`` orient, an array as nested lists, a dict of arrays as a dict of lists) and
``serving_input_example.json``, the same data as a request body for the scoring server
(``{"dataframe_split": ...}`` or ``{"inputs": ...}``). MLmodel's ``saved_input_example_info``
says which, so MLflow and flowml read each other's examples back.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import os
from typing import Any

from flowml.models.errors import ModelError

EXAMPLE_FILE = "input_example.json"
SERVING_EXAMPLE_FILE = "serving_input_example.json"


def save_example(path: str, example: Any) -> dict[str, str]:
    """Write the example's two files into the model directory; returns ``saved_input_example_info``.

    Raises:
        ModelError: an example of a kind no scoring request can carry (a set, an object).
    """
    info = {"artifact_path": EXAMPLE_FILE, "serving_input_path": SERVING_EXAMPLE_FILE}
    module = type(example).__module__.split(".")[0]
    if module == "pandas" and hasattr(example, "columns"):
        rows = example.astype(object).to_numpy().tolist()  # each column keeps its type (ints stay ints)
        data = {"columns": [str(c) for c in example.columns], "data": _jsonable(rows)}
        info.update(type="dataframe", pandas_orient="split")
        serving = {"dataframe_split": data}
    elif module == "pandas":  # a Series: one unnamed column
        return save_example(path, example.to_frame())
    elif module == "numpy" and hasattr(example, "tolist"):
        data = _jsonable(example.tolist())
        info["type"] = "ndarray"
        serving = {"inputs": data}
    elif isinstance(example, dict) and example and all(type(v).__module__ == "numpy" for v in example.values()):
        data = {str(k): _jsonable(v.tolist()) for k, v in example.items()}
        info["type"] = "ndarray"
        serving = {"inputs": data}
    elif isinstance(example, (dict, list, str, int, float, bool)):
        data = _jsonable(example)
        info["type"] = "json_object"
        serving = {"inputs": data}
    else:
        raise ModelError(f"input_example: cannot save a {type(example).__name__}: give a pandas DataFrame, "
                         "a numpy array, a dict of numpy arrays, or JSON-ready dicts and lists")
    for name, content in ((EXAMPLE_FILE, data), (SERVING_EXAMPLE_FILE, serving)):
        with open(os.path.join(path, name), "w", encoding="utf-8") as out:
            json.dump(content, out, allow_nan=False)
    return info


def load_example(path: str, info: dict[str, str] | None) -> Any:
    """The example saved in the model directory ``path`` (None when there is none): a DataFrame,
    a numpy array (or a dict of them), or plain JSON values."""
    if not info:
        return None
    with open(os.path.join(path, info.get("artifact_path", EXAMPLE_FILE)), encoding="utf-8") as src:
        data = json.load(src)
    kind = info.get("type")
    if kind == "dataframe":
        import pandas as pd

        if info.get("pandas_orient", "split") == "split":
            return pd.DataFrame(data["data"], columns=data.get("columns"))
        return pd.DataFrame(data)
    if kind == "ndarray":
        import numpy as np

        return {k: np.asarray(v) for k, v in data.items()} if isinstance(data, dict) else np.asarray(data)
    return data


def _jsonable(value: Any) -> Any:
    """A JSON-ready copy: numpy scalars as numbers, bytes as base64, times as ISO text, NaN as null."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        return _jsonable(value.item())
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if hasattr(value, "isoformat"):  # pandas Timestamp
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise ModelError(f"input_example: a {type(value).__name__} value cannot be written as JSON")
