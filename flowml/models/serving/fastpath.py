"""The fast path for the commonest request: rows of numbers for a model whose inputs are all
``double`` columns.

Such a request is decoded straight into a numpy matrix in the signature's column order and
given to the estimator's own predict function, skipping the DataFrame: on pandas 3 a one-row
DataFrame costs scikit-learn about 1 ms to check, the matrix about 0.1 ms. The answer must be
exactly the general path's (``PyFuncModel.predict`` on a DataFrame), so the path is narrow:

* it is built only for a scikit-learn model whose input columns are all ``double``, and it is
  proven at load time: a probe table (the model's input example, or rows made from the
  signature) is predicted both ways and must give equal results (a pipeline that selects
  columns by name fails that probe and keeps the general path);
* a request takes it only if it is JSON ``dataframe_split`` (columns in any order),
  ``dataframe_records``, or ``inputs``/``instances`` as a list of rows, without params, and its
  values make a full rectangle of numbers: numpy must read them as floats (a string, a null
  or a ragged row fails that), the body holds no ``true``/``false`` (a boolean would pass as
  1.0), and no value is beyond 2**53, the largest integer the signature check converts to a
  double (an int within it converts to the same float both ways).

Anything else returns None and goes down the general path, which also reports every error.
"""

from __future__ import annotations

from typing import Any, Callable

import orjson

from flowml.models.signature import Schema

EXACT_INT = 2.0 ** 53  # integers up to this convert to a double without change, as the signature check requires


class MatrixPath:
    """Callable ``(body, media type) -> predictions | None`` for one model."""

    def __init__(self, names: list[str], predict: Callable[[Any], Any]) -> None:
        self.names = names
        self.predict = predict

    def __call__(self, body: bytes, kind: str) -> Any:
        if kind != "application/json" or b"true" in body or b"false" in body:
            return None
        rows = self.rows(body)
        if rows is None:
            return None
        matrix = self.matrix(rows)
        return None if matrix is None else self.predict(matrix)

    def rows(self, body: bytes) -> list | None:
        """The request's rows as lists in signature order, or None when it is not the simple shape."""
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if type(document) is not dict or len(document) != 1:
            return None
        (form, data), = document.items()
        if form == "dataframe_split":
            return self._split_rows(data)
        if form == "dataframe_records":
            return self._record_rows(data)
        if form in ("inputs", "instances") and type(data) is list and data and type(data[0]) is list:
            return data
        return None

    def _split_rows(self, data: Any) -> list | None:
        if type(data) is not dict or not {"columns", "data"} <= data.keys() <= {"columns", "data", "index"}:
            return None
        columns, rows = data["columns"], data["data"]
        if columns == self.names:
            return rows if type(rows) is list else None
        if type(columns) is not list or len(columns) != len(self.names) or set(columns) != set(self.names) \
                or type(rows) is not list:
            return None
        order = [columns.index(name) for name in self.names]
        try:
            if any(len(row) != len(order) for row in rows):
                return None  # ragged: the general path says which row is wrong
            return [[row[i] for i in order] for row in rows]
        except (TypeError, KeyError, IndexError):
            return None

    def _record_rows(self, data: Any) -> list | None:
        if type(data) is not list or not data:
            return None
        names, width = self.names, len(self.names)
        try:
            rows = [[record[name] for name in names] for record in data if len(record) == width]
        except (TypeError, KeyError):
            return None
        return rows if len(rows) == len(data) else None

    def matrix(self, rows: list):
        """``rows`` as a 2-D float64 array, or None unless they are a rectangle of plain numbers."""
        import numpy as np

        if not rows:
            return None
        try:
            matrix = np.array(rows)
        except ValueError:  # ragged rows
            return None
        if matrix.dtype != np.float64 or matrix.ndim != 2 or matrix.shape[1] != len(self.names):
            return None  # strings, nulls, all-int rows (the signature check rules on those), nesting
        if not np.abs(matrix).max() <= EXACT_INT:
            return None
        return matrix


def build(model, schema: Schema | None, raw_predict: Callable | None, probe) -> MatrixPath | None:
    """The fast path for ``model``, or None when it cannot be proven exact.

    Args:
        model: the loaded PyFuncModel (its ``predict`` is the reference).
        schema: the model's input schema.
        raw_predict: the flavor's predict function on a numpy matrix, or None if it has none.
        probe: a DataFrame of example input, or None to make rows from the signature.
    """
    if raw_predict is None or schema is None or schema.is_tensor_spec() or not schema.has_input_names():
        return None
    if not all(spec.type == "double" and spec.required for spec in schema):
        return None
    import warnings

    import numpy as np

    # An estimator fitted on a DataFrame warns on every matrix that its columns have no names;
    # here the columns are the signature's, in its order, so the warning says nothing.
    warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)
    names = [str(name) for name in schema.input_names()]
    path = MatrixPath(names, raw_predict)
    frame = probe if probe is not None else _synthetic_rows(names)
    try:
        frame = frame[names].astype(np.float64)
        expected = model.predict(frame)
        got = raw_predict(frame.to_numpy(dtype=np.float64))
    except Exception:  # the flavor cannot take a matrix (or the probe itself fails): keep the general path
        return None
    if not _same(expected, got):
        return None
    return path


def _synthetic_rows(names: list[str]):
    """A small table of varied values, one column per signature name."""
    import numpy as np
    import pandas as pd

    values = np.array([[0.0, 1.0, -1.0, 0.5, 2.5, -3.75, 10.0, 1e-3]]).T
    return pd.DataFrame(values + np.arange(len(names), dtype=np.float64), columns=names)


def _same(expected: Any, got: Any) -> bool:
    import numpy as np

    if type(expected) is not type(got):
        return False
    if isinstance(expected, np.ndarray):
        return expected.dtype == got.dtype and expected.shape == got.shape and np.array_equal(expected, got)
    return False
