"""Batch scoring of files larger than memory: ``flowml models predict -i IN -o OUT``.

The input (CSV with a header, Parquet, or JSON lines: one object per row) is read
``chunk_rows`` rows at a time; each chunk goes through ``PyFuncModel.predict`` (so the signature
is enforced exactly as for one request) and its predictions are appended to the output, in the
input's format: memory holds one chunk, not the file. The output has one row per input row:
a ``prediction`` column for a 1-D result, ``prediction_0``, ``prediction_1`` ... for a 2-D one,
a model's own columns for a DataFrame.

The output is written to a hidden temporary file beside it and renamed at the end, so a
failure or Ctrl-C leaves no half-written output (and an older output stays as it was).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from flowml.models.errors import ModelError, ModelInputError
from flowml.models.signature import Schema

FORMATS = ("csv", "json", "parquet")
EXTENSIONS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "json", ".ndjson": "json",
              ".json": "json"}


def predict_file(model_uri: str, input_path: str, output_path: str, content_type: str | None = None,
                 chunk_rows: int = 100_000, tracking_uri: str | None = None) -> int:
    """Score ``input_path`` into ``output_path``; returns the number of rows scored.

    Raises:
        ModelError: an unknown format, an input that cannot be read, a model that cannot be loaded.
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
            try:
                predictions = model.predict(chunk)
            except ModelInputError as exc:
                raise ModelInputError(f"{input_path}, rows {rows + 1}-{rows + len(chunk)}: {exc}") from None
            write(prediction_frame(predictions, len(chunk)))
            rows += len(chunk)
    return rows


def input_format(path: str) -> str:
    """The format an input's extension says (json: JSON lines)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in EXTENSIONS:
        raise ModelError(f"-i {path}: cannot tell its format from '{ext or 'no extension'}': give "
                         f"--content-type {'|'.join(FORMATS)}")
    return EXTENSIONS[ext]


def csv_dtypes(schema: Schema | None) -> dict[str, type | str] | None:
    """CSV has no types: columns the signature declares as text are read as text ("007" stays
    "007"), and those it declares as 32-bit floats as such (else they would read as 64-bit and
    fail the model's check)."""
    if schema is None or schema.is_tensor_spec():
        return None
    kinds: dict[str, type | str] = {"string": str, "binary": str, "float": "float32"}
    return {spec.name: kinds[spec.type] for spec in schema if spec.name is not None and spec.type in kinds} or None


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


# reading -----------------------------------------------------------------------------------

def _read(chunks: Iterator, path: str, fmt: str) -> Iterator:
    """The chunks, with a reader's own errors turned into one that names the file."""
    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except (ValueError, OSError, UnicodeDecodeError) as exc:
            raise ModelError(f"-i {path}: cannot read it as {fmt}: {exc}") from None
        yield chunk


def _csv_chunks(path: str, chunk_rows: int, schema: Schema | None) -> Iterator:
    import pandas as pd

    with pd.read_csv(path, chunksize=chunk_rows, dtype=csv_dtypes(schema)) as reader:
        yield from reader


def _json_chunks(path: str, chunk_rows: int, schema: Schema | None) -> Iterator:
    import pandas as pd

    with pd.read_json(path, lines=True, chunksize=chunk_rows, dtype=False) as reader:  # no date guessing
        yield from reader


def _parquet_chunks(path: str, chunk_rows: int, schema: Schema | None) -> Iterator:
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as source:
        for batch in source.iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()


READERS: dict[str, Callable[[str, int, Schema | None], Iterator]] = {
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
        os.replace(partial, path)
    except BaseException:  # Ctrl-C too: never leave a partial output behind
        if os.path.exists(partial):
            os.unlink(partial)
        raise


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
