"""Request bodies of ``POST /invocations`` turned into model input, as MLflow's scoring protocol has them.

Content types: ``application/json`` (an object with exactly one of ``dataframe_split``,
``dataframe_records``, ``instances``, ``inputs``, and optionally ``params``), ``text/csv`` (a
header line, then rows) and Parquet (``application/vnd.apache.parquet`` or
``application/x-parquet``). A body that cannot be read is a :class:`PayloadError` with MLflow's
error code and HTTP status; whether the data fits the model is the model's own check
(``PyFuncModel.predict`` enforces the signature and converts what converts without loss), so
no rule is written twice. The signature is used only where a text format cannot say what the
client meant: CSV columns declared as text are read as text, and JSON or CSV numbers declared
as 32-bit floats are read as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowml.errors import FlowmlError
from flowml.models.signature import Schema

JSON = "application/json"
CSV = "text/csv"
PARQUET = ("application/vnd.apache.parquet", "application/x-parquet")
CONTENT_TYPES = (JSON, CSV, *PARQUET)
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


class PayloadError(FlowmlError):
    """A request the scoring server cannot read: answered with ``status`` and MLflow's error shape."""

    exit_code = 2

    def __init__(self, message: str, error_code: str = "BAD_REQUEST", status: int = 400) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.status = status


@dataclass
class Payload:
    """What ``model.predict`` is called with."""

    data: Any
    params: dict[str, Any] | None = None


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header, checked: one of :data:`CONTENT_TYPES`, UTF-8 only.

    Raises:
        PayloadError: 415 for a missing or unknown type, a charset other than UTF-8, or another parameter.
    """
    if not content_type:
        raise PayloadError(f"no Content-Type header: send one of {', '.join(CONTENT_TYPES)}", status=415)
    kind, *parameters = (part.strip() for part in content_type.split(";"))
    kind = kind.lower()
    if kind not in CONTENT_TYPES:
        raise PayloadError(f"content type '{content_type}' is not supported: send one of "
                           f"{', '.join(CONTENT_TYPES)}", status=415)
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        name, value = name.strip().lower(), value.strip().strip('"').lower()
        if name != "charset":
            raise PayloadError(f"content type parameter '{name}' is not supported (only charset)", status=415)
        if value not in ("utf-8", "utf8"):
            raise PayloadError(f"charset '{value}' is not supported: the scoring server reads UTF-8", status=415)
    return kind


def parse(body: bytes, kind: str, schema: Schema | None = None) -> Payload:
    """The model input in a request body of media type ``kind`` (see :func:`media_type`)."""
    if kind == JSON:
        payload = parse_json(body)
        payload.data = as_declared_floats(payload.data, schema)
        return payload
    if kind == CSV:
        return Payload(parse_csv(body, schema))
    return Payload(parse_parquet(body))


def load_json(body: bytes) -> Any:
    """Decode a JSON body (orjson: several times faster than the standard library here)."""
    import orjson

    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"the body is not valid JSON: {exc}") from None


def split_request(document: Any) -> tuple[str, Any, dict[str, Any] | None]:
    """The input format, its data and the params of a decoded JSON request, checked for shape."""
    if not isinstance(document, dict):
        raise PayloadError(f"the JSON body must be an object with exactly one of {', '.join(FORMATS)} "
                           f"(and optionally params), got a {_json_type(document)}")
    present = [key for key in FORMATS if key in document]
    if len(present) != 1:
        found = ", ".join(sorted(document)) or "no fields"
        raise PayloadError(f"the JSON body must have exactly one of {', '.join(FORMATS)}; found {found}")
    params = document.get("params")
    if params is not None and not isinstance(params, dict):
        raise PayloadError(f"params must be a JSON object of name -> value, got a {_json_type(params)}",
                           error_code="INVALID_PARAMETER_VALUE")
    return present[0], document[present[0]], params


def parse_json(body: bytes) -> Payload:
    """A JSON request: the one input format it holds, as a DataFrame, an array or a dict of arrays."""
    return from_document(load_json(body))


def from_document(document: Any) -> Payload:
    """A decoded JSON request (a request body, or a file holding one) as model input."""
    form, data, params = split_request(document)
    if form == "dataframe_split":
        return Payload(_frame_from_split(data), params)
    if form == "dataframe_records":
        return Payload(_frame_from_records(data), params)
    return Payload(_tensors(form, data), params)


def as_declared_floats(data: Any, schema: Schema | None) -> Any:
    """``data`` with its numbers made 32-bit floats where the signature declares ``float`` (a
    column type or a tensor dtype). JSON numbers have no width, so they arrive as 64-bit and the
    model's check would refuse them (double -> float loses precision) although the client had no
    way to send anything else; MLflow's server reads them at the declared type too."""
    if schema is None:
        return data
    if schema.is_tensor_spec():
        wanted = {spec.name: spec.dtype for spec in schema if spec.dtype == "float32"}
        if isinstance(data, dict):
            return {k: _float32(v) if k in wanted else v for k, v in data.items()}
        return _float32(data) if len(schema) == 1 and None in wanted else data
    columns = [spec.name for spec in schema if spec.type == "float" and spec.name is not None]
    if columns and hasattr(data, "columns"):
        for name in columns:
            if name in data.columns and data[name].dtype.kind in "fiu":
                data[name] = data[name].astype("float32")
    return data


def _float32(array: Any) -> Any:
    return array.astype("float32") if getattr(array, "dtype", None) is not None and array.dtype.kind in "fiu" else array


def _frame_from_split(data: Any):
    import pandas as pd

    if not isinstance(data, dict):
        raise PayloadError(f"dataframe_split must be an object with 'data' (and optionally 'columns' and "
                           f"'index'), got a {_json_type(data)}")
    unknown = set(data) - {"columns", "data", "index"}
    if "data" not in data or unknown:
        raise PayloadError("dataframe_split must have 'data' and optionally 'columns' and 'index'; "
                           f"found {', '.join(sorted(data)) or 'no fields'}")
    try:
        return pd.DataFrame(data=data["data"], columns=data.get("columns"), index=data.get("index"))
    except (ValueError, TypeError, AssertionError) as exc:
        raise PayloadError(f"dataframe_split is not a valid table: {exc}") from None


def _frame_from_records(data: Any):
    import pandas as pd

    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise PayloadError(f"dataframe_records must be a list of objects (one per row), got a {_json_type(data)}"
                           + ("" if not isinstance(data, list) else " with other items"))
    try:
        return pd.DataFrame(data=data)
    except (ValueError, TypeError) as exc:
        raise PayloadError(f"dataframe_records is not a valid table: {exc}") from None


def _tensors(form: str, data: Any):
    """``instances`` (rows) and ``inputs`` (columns or one tensor) as numpy arrays: a list of row
    objects under ``instances`` becomes a dict of columns, a dict under either key a dict of
    arrays, anything else one array. A column model takes them as a table (its signature check
    turns a 2-D array into its columns)."""
    import numpy as np

    if form == "instances" and isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        names = list(dict.fromkeys(key for row in data for key in row))
        data = {name: [row.get(name) for row in data] for name in names}
    try:
        if isinstance(data, dict):
            return {str(name): np.asarray(value) for name, value in data.items()}
        return np.asarray(data)
    except ValueError as exc:  # ragged lists
        raise PayloadError(f"{form} is not a regular array: {exc}") from None


def csv_dtypes(schema: Schema | None) -> dict[str, type | str] | None:
    """CSV has no types: columns the signature declares as text are read as text ("007" stays
    "007"), and those it declares as 32-bit floats as such (else they would read as 64-bit and
    fail the model's check)."""
    if schema is None or schema.is_tensor_spec():
        return None
    kinds: dict[str, type | str] = {"string": str, "binary": str, "float": "float32"}
    return {spec.name: kinds[spec.type] for spec in schema if spec.name is not None and spec.type in kinds} or None


def parse_csv(body: bytes, schema: Schema | None = None):
    """A CSV body (a header line, then rows) as a DataFrame."""
    import io

    import pandas as pd

    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"the CSV body is not UTF-8: {exc}") from None
    if not text.strip():
        raise PayloadError("the CSV body is empty: send a header line and at least one row")
    try:
        return pd.read_csv(io.StringIO(text), dtype=csv_dtypes(schema))
    except (ValueError, pd.errors.ParserError) as exc:
        raise PayloadError(f"the CSV body cannot be read: {exc}") from None


def parse_parquet(body: bytes):
    """A Parquet body as a DataFrame (needs pyarrow)."""
    import io

    import pandas as pd

    if not body:
        raise PayloadError("the Parquet body is empty")
    try:
        return pd.read_parquet(io.BytesIO(body))
    except ImportError as exc:
        raise PayloadError(f"Parquet needs pyarrow on the server: {exc}", status=415) from None
    except Exception as exc:  # pyarrow raises its own ArrowInvalid (a ValueError) and OSError subclasses
        raise PayloadError(f"the Parquet body cannot be read: {exc}") from None


def _json_type(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")
