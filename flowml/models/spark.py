"""``flowml.pyfunc.spark_udf``: a model as a Spark pandas UDF, for scoring tables on a cluster.

The driver fetches the model once, copies it to a folder named by its content digest and ships
that with ``SparkContext.addFile`` (Spark names shipped files by their last path component, so
two models both called ``model`` would otherwise collide); each executor's Python worker loads
it on first use and keeps it, under that content name, for the worker's life (Spark reuses
Python workers), so a model is loaded once per executor process, not once per batch. Batches
arrive as Arrow-backed pandas columns and go through ``PyFuncModel.predict``, so the signature
is enforced as everywhere else.

Needs the optional extra ``flowml[spark]`` (pyspark and pyarrow).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from typing import Any

from flowml.models.errors import ModelError

_LOADED: dict[str, Any] = {}  # shipped folder name (content-addressed) -> PyFuncModel, per Python worker process
_STAGING: list[str] = []  # the driver's folder of content-named copies, made on first use


def spark_udf(spark, model_uri: str, result_type: Any = "double", params: dict[str, Any] | None = None,
              tracking_uri: str | None = None):
    """A pandas UDF that predicts with the model at ``model_uri``.

    Call it with the model's input columns, in the signature's order or as one struct:
    ``df.withColumn("prediction", udf("a", "b"))`` or ``udf(struct("a", "b"))`` (the struct's
    field names are the column names).

    Args:
        spark: the SparkSession.
        model_uri: any model URI flowml loads (a path, ``runs:/``, ``models:/``).
        result_type: the Spark type of one prediction: a DDL string (``"double"``, ``"long"``,
            ``"string"``, ``"array<double>"`` for one array per row) or a ``DataType``.
        params: inference params given to every predict call.
        tracking_uri: the tracking store for ``runs:/`` and ``models:/`` URIs.

    Raises:
        ModelError: pyspark is not installed, or the model cannot be fetched.
    """
    try:
        from pyspark.sql.functions import pandas_udf
    except ImportError:
        raise ModelError("spark_udf needs pyspark: pip install 'flowml[spark]'") from None
    from flowml.models.uri import download_model

    staged = _staged_copy(download_model(model_uri, tracking_uri=tracking_uri))
    spark.sparkContext.addFile(staged, recursive=True)  # the same path again is a no-op for Spark
    folder = os.path.basename(staged)
    array_result = _is_array(result_type)

    from typing import Iterator, Tuple, Union

    import pandas as pd

    def predict(batches):
        model = _model(folder)
        for columns in batches:
            data = _table(columns, model.metadata.get_input_schema())
            yield _result(model.predict(data, params=params), len(data), array_result)

    # Spark picks the UDF's kind (an iterator of column batches) from real type objects, which
    # this module's postponed annotations would turn into strings.
    predict.__annotations__ = {"batches": Iterator[Tuple[Union[pd.Series, pd.DataFrame], ...]],
                               "return": Iterator[pd.Series]}
    return pandas_udf(predict, returnType=result_type)


def _staged_copy(path: str) -> str:
    """A copy of the model directory ``path`` in a folder named by its content digest, made
    once per content in this driver process and kept until it exits (executors fetch it lazily)."""
    from flowml.cache.hashing import hash_file, tree_digest, walk_files

    digest = tree_digest({rel: hash_file(os.path.join(path, rel)) for rel, _ in walk_files(path)})
    if not _STAGING:
        _STAGING.append(tempfile.mkdtemp(prefix="flowml-spark-"))
        atexit.register(shutil.rmtree, _STAGING[0], True)
    staged = os.path.join(_STAGING[0], f"flowml-model-{digest}")
    if not os.path.isdir(staged):
        partial = tempfile.mkdtemp(prefix=".partial-", dir=_STAGING[0])
        shutil.copytree(path, os.path.join(partial, "model"))
        try:
            os.rename(os.path.join(partial, "model"), staged)
        except OSError:  # another thread staged the same content first
            pass
        shutil.rmtree(partial, ignore_errors=True)
    return staged


def _model(folder: str):
    """The model shipped as ``folder`` (a content-digest name), loaded once per Python worker process."""
    model = _LOADED.get(folder)
    if model is None:
        from pyspark import SparkFiles

        from flowml.models.pyfunc import load_model

        model = _LOADED[folder] = load_model(SparkFiles.get(folder))
    return model


def _table(columns, schema):
    """The UDF's arguments as one DataFrame: a struct's fields, or the columns named by the
    signature's inputs in order (by position when the counts differ or it has no names)."""
    import pandas as pd

    if isinstance(columns, pd.DataFrame):  # one struct argument
        return columns
    if isinstance(columns, pd.Series):  # one column argument: Spark passes it alone, not in a tuple
        columns = (columns,)
    names = schema.input_names() if schema is not None and schema.has_input_names() else []
    if len(names) != len(columns):
        names = list(range(len(columns)))
    return pd.DataFrame({name: column.reset_index(drop=True) for name, column in zip(names, columns)})


def _result(predictions: Any, rows: int, array_result: bool):
    """One Series of ``rows`` predictions (rows of an array for an array result type)."""
    import numpy as np
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        predictions = predictions.to_numpy() if array_result or predictions.shape[1] != 1 else predictions.iloc[:, 0]
    if isinstance(predictions, pd.Series):
        series = predictions.reset_index(drop=True)
    else:
        array = np.asarray(predictions)
        series = pd.Series(list(array) if array.ndim > 1 else array)
    if len(series) != rows:
        raise ModelError(f"the model returned {len(series)} predictions for {rows} rows")
    return series


def _is_array(result_type: Any) -> bool:
    text = result_type if isinstance(result_type, str) else getattr(result_type, "typeName", lambda: "")()
    return text.strip().lower().startswith("array")
