"""Batch scoring of files larger than memory: ``flowml models predict -i IN -o OUT``.

The input (CSV with a header, Parquet, or JSON lines: one object per row) is read
``chunk_rows`` rows at a time; each chunk goes through ``PyFuncModel.predict`` (so the signature
is enforced exactly as for one request) and its predictions are appended to the output, in the
input's format: memory holds one chunk, not the file. The output has one row per input row:
a ``prediction`` column for a 1-D result, ``prediction_0``, ``prediction_1`` ... for a 2-D one,
a model's own columns for a DataFrame. An input without rows gives an output without rows (its
columns from the model's output schema).

A JSON input may instead hold one JSON document, as a request to the scoring server does
(``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs``, and optionally
``params``) or an array of row objects: it is read whole and scored as one chunk.

The output is written to a hidden temporary file beside it and renamed at the end, so a
failure or Ctrl-C leaves no half-written output (and an older output stays as it was); it gets
the permissions a newly created file gets (0666 less the umask).
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from flowml.models.errors import ModelError, ModelInputError
from flowml.models.serving.payload import FORMATS as REQUEST_FORMATS
from flowml.models.serving.payload import Payload, PayloadError, csv_dtypes, from_document, load_json
from flowml.models.signature import Schema

FORMATS = ("csv", "json", "parquet")
EXTENSIONS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "json", ".ndjson": "json",
              ".json": "json"}
JSON_FORMS = ("JSON lines (one object per line), or one JSON document: an object with one of "
              f"{', '.join(REQUEST_FORMATS)} (as sent to the scoring server) or an array of row objects")


def predict_file(model_uri: str, input_path: str, output_path: str, content_type: str | None = None,
                 chunk_rows: int = 100_000, tracking_uri: str | None = None) -> int:
    """Score ``input_path`` into ``output_path``; returns the number of rows scored.

    Raises:
        ModelError: an unknown format, an input that cannot be read, a model that cannot be
            loaded or that fails on some rows (the message names them).
        ModelInputError: rows that do not fit the signature (the message names the rows).
    """
    from flowml.models.pyfunc import load_model
    from flowml.models.uri import download_model

    fmt = content_type or input_format(input_path)
    if not os.path.isfile(input_path):
        raise ModelError(f"-i {input_path}: no such file")
    model = load_model(download_model(model_uri, tracking_uri=tracking_uri))
    chunks = READERS[fmt](input_path, chunk_rows, model.metadata.get_input_schema())
    rows = 0
    with atomic_output(output_path) as partial, WRITERS[fmt](partial) as write:
        for chunk in _read(chunks, input_path, fmt):
            count = row_count(chunk.data)
            if not count:
                continue
            where = f"{input_path}, rows {rows + 1}-{rows + count}"
            try:
                predictions = model.predict(chunk.data, params=chunk.params)
            except ModelInputError as exc:
                raise ModelInputError(f"{where}: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - whatever the model's own code raises, named by rows
                raise ModelError(f"{where}: the model failed: {type(exc).__name__}: {exc}") from None
            write(prediction_frame(predictions, count))
            rows += count
        if not rows:
            write(empty_prediction_frame(model.metadata.get_output_schema()))
    return rows


def row_count(data: Any) -> int:
    """Rows in a chunk: a table's or an array's length, the length of a dict's first array."""
    if isinstance(data, dict):
        return len(next(iter(data.values()), ()))
    return len(data)


def input_format(path: str) -> str:
    """The format an input's extension says (json: JSON lines)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in EXTENSIONS:
        raise ModelError(f"-i {path}: cannot tell its format from '{ext or 'no extension'}': give "
                         f"--content-type {'|'.join(FORMATS)}")
    return EXTENSIONS[ext]


def prediction_frame(predictions: Any, rows: int):
    """A model's output for ``rows`` rows as a DataFrame to write (see the module's documentation)."""
    import numpy as np
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        frame = predictions.reset_index(drop=True)
    elif isinstance(predictions, pd.Series):
        frame = predictions.reset_index(drop=True).to_frame(name=predictions.name or "prediction")
    elif isinstance(predictions, dict):
        frame = pd.DataFrame({str(k): np.asarray(v).tolist() if np.asarray(v).ndim > 1 else v
                              for k, v in predictions.items()})
    else:
        array = np.asarray(predictions)
        if array.ndim == 2:
            frame = pd.DataFrame(array, columns=[f"prediction_{i}" for i in range(array.shape[1])])
        else:
            frame = pd.DataFrame({"prediction": array.tolist() if array.ndim > 2 else array})
    if len(frame) != rows:
        raise ModelError(f"the model returned {len(frame)} predictions for {rows} rows")
    return frame


def empty_prediction_frame(schema: Schema | None):
    """The output of an input without rows: no rows, the columns the model's output schema
    says it would have (``prediction`` when it says nothing)."""
    import pandas as pd

    specs = list(schema) if schema is not None else []
    if len(specs) > 1 or (specs and specs[0].name is not None):
        return pd.DataFrame(columns=[str(spec.name) for spec in specs])
    shape = getattr(specs[0], "shape", ()) if specs else ()
    if len(shape) == 2 and shape[1] > 0:
        return pd.DataFrame(columns=[f"prediction_{i}" for i in range(shape[1])])
    return pd.DataFrame(columns=["prediction"])


# reading -----------------------------------------------------------------------------------

def _read(chunks: Iterator, path: str, fmt: str) -> Iterator:
    """The chunks, with a reader's own errors turned into one that names the file."""
    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except (ValueError, OSError, UnicodeDecodeError) as exc:
            hint = f"; a JSON input is {JSON_FORMS}" if fmt == "json" else ""
            raise ModelError(f"-i {path}: cannot read it as {fmt}: {exc}{hint}") from None
        yield chunk


def _csv_chunks(path: str, chunk_rows: int, schema: Schema | None) -> Iterator[Payload]:
    import pandas as pd

    with pd.read_csv(path, chunksize=chunk_rows, dtype=csv_dtypes(schema)) as reader:
        for frame in reader:
            yield Payload(frame)


def _json_chunks(path: str, chunk_rows: int, schema: Schema | None) -> Iterator[Payload]:
    import pandas as pd

    if _holds_one_document(path):
        yield _json_document(path, schema)
        return
    with pd.read_json(path, lines=True, chunksize=chunk_rows, dtype=False) as reader:  # no date guessing
        for frame in reader:
            yield Payload(frame)


def _holds_one_document(path: str) -> bool:
    """Whether a JSON input is one document rather than JSON lines: it opens with an array, an
    object spanning lines, or, alone on its line, an object in a scoring request's shape."""
    with open(path, "rb") as src:
        first = next((line.strip() for line in src if line.strip()), b"")
        rest = next((line for line in src if line.strip()), None)
    if first.startswith(b"["):
        return True
    if not first.startswith(b"{"):
        return False
    try:
        value = json.loads(first)
    except ValueError:
        return True  # a pretty-printed object (or no JSON at all: reading it whole says so)
    return rest is None and isinstance(value, dict) and any(key in value for key in REQUEST_FORMATS)


def _json_document(path: str, schema: Schema | None) -> Payload:
    """A whole-file JSON document as model input, read as the scoring server reads a request."""
    from flowml.models.serving.payload import as_declared_floats

    with open(path, "rb") as src:
        body = src.read()
    try:
        document = load_json(body)
        if isinstance(document, list):
            if not all(isinstance(row, dict) for row in document):
                raise PayloadError("a JSON array must hold one object per row")
            document = {"dataframe_records": document}
        payload = from_document(document)
    except PayloadError as exc:
        raise ModelError(f"-i {path}: {exc}; a JSON input is {JSON_FORMS}") from None
    payload.data = as_declared_floats(payload.data, schema)
    return payload


def _parquet_chunks(path: str, chunk_rows: int, schema: Schema | None) -> Iterator[Payload]:
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as source:
        for batch in source.iter_batches(batch_size=chunk_rows):
            yield Payload(batch.to_pandas())


READERS: dict[str, Callable[[str, int, Schema | None], Iterator[Payload]]] = {
    "csv": _csv_chunks, "json": _json_chunks, "parquet": _parquet_chunks}


# writing -----------------------------------------------------------------------------------

@contextmanager
def atomic_output(path: str) -> Iterator[str]:
    """A temporary path beside ``path``, renamed to it when the block succeeds, removed otherwise."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ModelError(f"-o {path}: the folder {folder} does not exist")
    handle, partial = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".partial", dir=folder)
    os.close(handle)
    try:
        yield partial
        os.chmod(partial, 0o666 & ~_umask())  # mkstemp's 0600 is for the hidden file, not the output
        os.replace(partial, path)
    except BaseException:  # Ctrl-C too: never leave a partial output behind
        if os.path.exists(partial):
            os.unlink(partial)
        raise


def _umask() -> int:
    """The process's umask (reading it means setting it: it is put back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def _csv_writer(path: str) -> Iterator[Callable]:
    with open(path, "w", encoding="utf-8", newline="") as out:
        first = [True]

        def write(frame) -> None:
            frame.to_csv(out, header=first[0], index=False)
            first[0] = False

        yield write


@contextmanager
def _json_writer(path: str) -> Iterator[Callable]:
    with open(path, "w", encoding="utf-8") as out:
        def write(frame) -> None:
            if len(frame):
                out.write(frame.to_json(orient="records", lines=True, date_format="iso"))
                out.write("\n")

        yield write


@contextmanager
def _parquet_writer(path: str) -> Iterator[Callable]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer: list = []

    def write(frame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if not writer:
            writer.append(pq.ParquetWriter(path, table.schema))
        writer[0].write_table(table.cast(writer[0].schema))

    try:
        yield write
    finally:
        if writer:
            writer[0].close()


WRITERS: dict[str, Callable[[str], Any]] = {"csv": _csv_writer, "json": _json_writer, "parquet": _parquet_writer}
