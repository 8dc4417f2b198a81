"""Units of the scoring server: content types, JSON shapes, the fast path's exactness, replies.

The HTTP behaviour is in test_serving.py; here each piece is checked on its own against a real
saved scikit-learn model.
"""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest

from flowml.models.serving import fastpath, replies
from flowml.models.serving.app import invoke
from flowml.models.serving.payload import PayloadError, media_type, parse
from flowml.models.serving.served import ModelInfo, load


@pytest.fixture(scope="module")
def served(iris_model):
    path = str(iris_model)
    return load(path, ModelInfo(path, None, path))


def body(form, data, **extra):
    return orjson.dumps({form: data, **extra})


@pytest.mark.parametrize("header, kind", [
    ("application/json", "application/json"),
    ("application/json; charset=UTF-8", "application/json"),
    ("text/csv;charset=utf-8", "text/csv"),
    ("application/x-parquet", "application/x-parquet"),
    ("Application/Vnd.Apache.Parquet", "application/vnd.apache.parquet"),
])
def test_media_types_accepted(header, kind):
    assert media_type(header) == kind


@pytest.mark.parametrize("header, words", [
    (None, "no Content-Type"),
    ("", "no Content-Type"),
    ("text/plain", "'text/plain' is not supported"),
    ("application/json; charset=latin-1", "charset 'latin-1'"),
    ("application/json; format=pandas-split", "parameter 'format'"),
])
def test_media_types_refused_with_415(header, words):
    with pytest.raises(PayloadError) as err:
        media_type(header)
    assert err.value.status == 415 and words in str(err.value)


@pytest.mark.parametrize("raw, words", [
    (b"", "not valid JSON"),
    (b"{", "not valid JSON"),
    (b"[1, 2]", "got a list"),
    (b'{"data": [[1]]}', "exactly one of"),
    (b'{"inputs": [[1]], "instances": [[1]]}', "exactly one of"),
    (b'{"dataframe_split": [[1]]}', "must be an object"),
    (b'{"dataframe_split": {"columns": ["a"]}}', "must have 'data'"),
    (b'{"dataframe_split": {"data": [[1, 2]], "columns": ["a"]}}', "not a valid table"),
    (b'{"dataframe_records": {"a": 1}}', "list of objects"),
    (b'{"inputs": [[1, 2], [3]]}', "not a regular array"),
])
def test_malformed_json_is_bad_request(raw, words):
    with pytest.raises(PayloadError) as err:
        parse(raw, "application/json")
    assert (err.value.status, err.value.error_code) == (400, "BAD_REQUEST")
    assert words in str(err.value)


def test_params_must_be_an_object():
    with pytest.raises(PayloadError) as err:
        parse(b'{"inputs": [1], "params": [1]}', "application/json")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_json_shapes_become_tables_or_arrays():
    split = parse(body("dataframe_split", {"columns": ["a", "b"], "data": [[1.0, 2.0]], "index": [7]}),
                  "application/json").data
    assert list(split.columns) == ["a", "b"] and list(split.index) == [7]
    records = parse(body("dataframe_records", [{"a": 1.0}, {"a": 2.0, "b": "x"}]), "application/json").data
    assert records.shape == (2, 2)
    instances = parse(body("instances", [{"a": 1, "b": 2}, {"a": 3, "b": 4}]), "application/json").data
    assert {k: v.tolist() for k, v in instances.items()} == {"a": [1, 3], "b": [2, 4]}
    payload = parse(body("inputs", [[1, 2]], params={"k": 1}), "application/json")
    assert payload.data.shape == (1, 2) and payload.params == {"k": 1}


def test_csv_reads_text_columns_of_the_signature_as_text():
    from flowml.models.signature import ColSpec, Schema

    schema = Schema((ColSpec("string", "code"), ColSpec("double", "x")))
    frame = parse(b"code,x\n007,1.5\n", "text/csv", schema).data
    assert frame["code"].tolist() == ["007"] and frame["x"].tolist() == [1.5]
    with pytest.raises(PayloadError, match="empty"):
        parse(b"  \n", "text/csv")


def test_parquet_body_and_garbage():
    import io

    out = io.BytesIO()
    pd.DataFrame({"a": [1.0, 2.0]}).to_parquet(out)
    assert parse(out.getvalue(), "application/x-parquet").data["a"].tolist() == [1.0, 2.0]
    with pytest.raises(PayloadError, match="Parquet body cannot be read"):
        parse(b"not parquet", "application/vnd.apache.parquet")


# the fast path ---------------------------------------------------------------------------------

def test_fast_path_is_built_for_a_float_column_sklearn_model(served):
    assert isinstance(served.fast, fastpath.MatrixPath)
    assert served.fast.names == [str(n) for n in served.schema.input_names()]


@pytest.mark.parametrize("form", ["split", "split-reordered", "split-index", "records", "inputs", "instances"])
def test_fast_path_equals_predict_on_a_dataframe(served, iris, form):
    X, _ = iris
    rows = X.sample(40, random_state=1)
    names = list(X.columns)
    expected = served.model.predict(rows)
    if form == "split":
        raw = body("dataframe_split", {"columns": names, "data": rows.to_numpy().tolist()})
    elif form == "split-reordered":
        shuffled = names[::-1]
        raw = body("dataframe_split", {"columns": shuffled, "data": rows[shuffled].to_numpy().tolist()})
    elif form == "split-index":
        raw = body("dataframe_split", {"columns": names, "data": rows.to_numpy().tolist(), "index": list(range(40))})
    elif form == "records":
        raw = body("dataframe_records", rows.to_dict(orient="records"))
    else:
        raw = body(form, rows.to_numpy().tolist())
    got = served.fast(raw, "application/json")
    assert got is not None, "the fast path declined a plain request"
    assert np.array_equal(got, expected) and got.dtype == expected.dtype
    # and the general path (what a request with params takes) answers the same
    status, answer = invoke(served, raw, "application/json")
    assert status == 200 and orjson.loads(answer)["predictions"] == expected.tolist()


@pytest.mark.parametrize("raw", [
    b'{"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": [[1.0, 2.0, 3.0, 4.0]]}}',  # other names
    b'{"inputs": [[5, 3, 1, 0]]}',  # all ints: the signature check rules on them
    b'{"inputs": [[1152921504606846977, 3.5, 1.4, 0.2]]}',  # an int past 2**53: the check refuses it
    b'{"inputs": [[true, 3.5, 1.4, 0.2]]}',  # a boolean would silently become 1.0
    b'{"inputs": [["5.1", 3.5, 1.4, 0.2]]}',  # a string would silently become a number
    b'{"inputs": [[null, 3.5, 1.4, 0.2]]}',
    b'{"inputs": [[5.1, 3.5, 1.4]]}',  # too few columns
    b'{"inputs": [[5.1, 3.5, 1.4, 0.2], [1.0]]}',  # ragged
    b'{"inputs": [[5.1, 3.5, 1.4, 0.2]], "params": {"x": 1}}',  # params: the general path
    b'{"inputs": []}',
    b'not json',
])
def test_fast_path_declines_anything_but_plain_floats(served, raw):
    assert served.fast(raw, "application/json") is None


def test_reordered_columns_with_a_short_row_are_refused_not_dropped(served):
    """Every row gets an answer or the request fails: a ragged row is never skipped."""
    columns = list(reversed(served.fast.names))
    raw = body("dataframe_split", {"columns": columns, "data": [[0.2, 1.4, 3.5, 5.1], [1.0], [0.3, 1.3, 3.0, 6.0]]})
    assert served.fast(raw, "application/json") is None
    status, answer = invoke(served, raw, "application/json")
    assert status == 400 and orjson.loads(answer)["error_code"] in ("BAD_REQUEST", "INVALID_PARAMETER_VALUE")


def test_fast_path_declines_csv(served):
    assert served.fast(b"a,b\n1.0,2.0\n", "text/csv") is None


def test_no_fast_path_when_the_matrix_answer_differs(served, iris):
    """The probe compares both paths: a predict that depends on the input's type is refused."""
    X, _ = iris

    def differs(matrix):
        return served.model.predict(pd.DataFrame(matrix, columns=X.columns)) + 1

    assert fastpath.build(served.model, served.schema, differs, X[:5]) is None
    assert fastpath.build(served.model, served.schema, served.fast.predict, None) is not None  # synthetic probe


@pytest.mark.filterwarnings("ignore:.*pickle")
def test_no_fast_path_for_a_pipeline_that_selects_columns_by_name(tmp_path, iris):
    import flowml.sklearn
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = iris
    pipe = make_pipeline(ColumnTransformer([("scale", StandardScaler(), list(X.columns[:2]))]),
                         LogisticRegression(max_iter=500)).fit(X, y)
    flowml.sklearn.save_model(pipe, str(tmp_path / "pipe"), input_example=X[:5],
                              serialization_format=flowml.sklearn.SERIALIZATION_FORMAT_PICKLE)
    served = load(str(tmp_path / "pipe"), ModelInfo("p", None, "p"))
    assert served.fast is None
    status, answer = invoke(served, body("dataframe_split", {"columns": list(X.columns),
                                                              "data": X[:3].to_numpy().tolist()}), "application/json")
    assert status == 200 and orjson.loads(answer)["predictions"] == pipe.predict(X[:3]).tolist()


# replies ------------------------------------------------------------------------------------------

def test_replies_in_mlflow_shapes():
    assert orjson.loads(replies.predictions(np.array([[1.5, 2.0]]))) == {"predictions": [[1.5, 2.0]]}
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert orjson.loads(replies.predictions(frame)) == {"predictions": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]}
    assert orjson.loads(replies.predictions(pd.Series([3, 4], name="p"))) == {"predictions": [{"p": 3}, {"p": 4}]}
    assert orjson.loads(replies.predictions(np.array([1.0, np.nan]))) == {"predictions": [1.0, None]}
    assert orjson.loads(replies.predictions(np.array([1, 2])[::2])) == {"predictions": [1]}  # not contiguous
    assert orjson.loads(replies.predictions(np.array(["a", "b"], dtype=object))) == {"predictions": ["a", "b"]}
    assert orjson.loads(replies.error("BAD_REQUEST", "no")) == {"error_code": "BAD_REQUEST", "message": "no"}


def test_a_model_that_crashes_is_a_400_not_a_500(served):
    class Broken:
        metadata = served.model.metadata

        def predict(self, data, params=None):
            raise ZeroDivisionError("boom")

    from flowml.models.serving.served import Served

    status, answer = invoke(Served(Broken(), served.info), b'{"inputs": [[1.0, 2.0, 3.0, 4.0]]}', "application/json")
    assert status == 400
    assert orjson.loads(answer) == {"error_code": "BAD_REQUEST", "message": "the model failed on this input (check "
                                    "that it fits the model's signature): ZeroDivisionError: boom"}


class _Halve(__import__("flowml.pyfunc", fromlist=["PythonModel"]).PythonModel):
    def predict(self, context, model_input, params=None):
        return np.asarray(model_input, dtype="float32") / 2


@pytest.mark.parametrize("example, request_body, content", [
    (pd.DataFrame({"x": np.array([1.5, 2.5], dtype="float32")}),
     body("dataframe_split", {"columns": ["x"], "data": [[0.1], [3]]}), "application/json"),
    (pd.DataFrame({"x": np.array([1.5, 2.5], dtype="float32")}), b"x\n0.1\n3\n", "text/csv"),
    (np.array([[1.5, 2.5]], dtype="float32"), body("inputs", [[0.1, 3.0]]), "application/json"),
])
def test_text_numbers_are_read_as_the_declared_32_bit_floats(tmp_path, example, request_body, content):
    """JSON and CSV cannot send a 32-bit float: a model declaring one must still take their numbers."""
    import flowml.pyfunc

    flowml.pyfunc.save_model(str(tmp_path / "m"), python_model=_Halve(), input_example=example)
    model = load(str(tmp_path / "m"), ModelInfo(str(tmp_path / "m"), None, str(tmp_path / "m")))
    status, reply = invoke(model, request_body, content)
    assert status == 200, reply
    assert np.allclose(np.ravel(orjson.loads(reply)["predictions"]), [0.05, 1.5])
