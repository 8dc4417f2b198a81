"""`flowml models predict`: chunked batch scoring of CSV, Parquet and JSON lines.

The output must equal the model's predictions on the whole file, whatever the chunk size; a
failure or Ctrl-C must leave no output behind; and memory must not grow with the file.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time

import pandas as pd
import pytest

from flowml.models.batch import predict_file
from flowml.models.errors import ModelError, ModelInputError


@pytest.fixture(scope="module")
def table(iris):
    """203 rows (not a multiple of the chunk sizes used) plus a text column the model ignores."""
    X, _ = iris
    frame = X.sample(203, replace=True, random_state=7).reset_index(drop=True)
    frame.insert(0, "id", [f"row-{i}" for i in range(len(frame))])
    return frame


def write(frame, path):
    fmt = path.suffix
    if fmt == ".csv":
        frame.to_csv(path, index=False)
    elif fmt == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    return path


def read(path):
    if path.suffix == ".csv":
        return pd.read_csv(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_json(path, lines=True)


@pytest.mark.parametrize("ext", [".csv", ".parquet", ".jsonl"])
@pytest.mark.parametrize("chunk_rows", [1, 50, 10_000])
def test_chunked_output_equals_whole_file_predictions(tmp_path, iris_model, classifier, table, ext, chunk_rows):
    source = write(table, tmp_path / f"in{ext}")
    out = tmp_path / f"out{ext}"
    assert predict_file(str(iris_model), str(source), str(out), chunk_rows=chunk_rows) == len(table)
    got = read(out)
    assert list(got.columns) == ["prediction"]
    assert got["prediction"].tolist() == classifier.predict(table.drop(columns="id")).tolist()
    assert sorted(os.listdir(tmp_path)) == sorted([source.name, out.name])  # no partial file left


def test_cli_scores_a_file(project, iris_model, classifier, table):
    write(table, project.root / "in.csv")
    res = project.flowml("models", "predict", "-m", str(iris_model), "-i", "in.csv", "-o", "out.csv",
                         "--chunk-rows", "64")
    assert res.code == 0, res.err
    assert f"scored {len(table)} rows" in res.err
    assert pd.read_csv(project.root / "out.csv")["prediction"].tolist() == \
        classifier.predict(table.drop(columns="id")).tolist()


def test_content_type_overrides_the_extension(tmp_path, iris_model, table):
    source = tmp_path / "rows.txt"
    table.to_json(source, orient="records", lines=True)
    assert predict_file(str(iris_model), str(source), str(tmp_path / "out.txt"), content_type="json") == len(table)
    with pytest.raises(ModelError, match="cannot tell its format from '.txt'"):
        predict_file(str(iris_model), str(source), str(tmp_path / "out2.txt"))


def test_rows_that_do_not_fit_leave_no_output_and_keep_an_old_one(tmp_path, iris_model, table):
    bad = table.astype({"petal width (cm)": object})
    bad.loc[150, "petal width (cm)"] = "wide"  # a text cell in the chunk that holds row 151
    source = write(bad, tmp_path / "in.csv")
    out = tmp_path / "out.csv"
    out.write_text("old\n")
    with pytest.raises(ModelInputError, match=r"rows 101-200: column 'petal width \(cm\)': expected double"):
        predict_file(str(iris_model), str(source), str(out), chunk_rows=100)
    assert out.read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["in.csv", "out.csv"]


def test_cli_errors_exit_2_without_traceback(project, iris_model, table):
    write(table.drop(columns="sepal width (cm)"), project.root / "in.csv")
    project.write("broken.parquet", "not parquet")
    cases = [
        (["-i", "missing.csv"], "no such file"),
        (["-i", "in.csv"], "missing input column: 'sepal width (cm)'"),
        (["-i", "broken.parquet"], "cannot read it as parquet"),
    ]
    for args, words in cases:
        res = project.flowml("models", "predict", "-m", str(iris_model), "-o", "out.csv", *args)
        assert res.code == 2, (args, res.err)
        assert words in res.err and "Traceback" not in res.err, res.err
        assert not (project.root / "out.csv").exists()
    res = project.flowml("models", "predict", "-m", str(iris_model), "-i", "in.csv", "-o", "no/such/dir/out.csv")
    assert res.code == 2 and "does not exist" in res.err


def test_a_model_failing_on_a_chunk_names_the_rows_and_exits_2(project, iris_model, table):
    holey = table.copy()
    holey.loc[70, "sepal length (cm)"] = None  # an empty cell: NaN, which LogisticRegression refuses
    write(holey, project.root / "in.csv")
    res = project.flowml("models", "predict", "-m", str(iris_model), "-i", "in.csv", "-o", "out.csv",
                         "--chunk-rows", "50")
    assert res.code == 2, res.err
    assert "in.csv, rows 51-100: the model failed: ValueError: Input X contains NaN" in res.err, res.err
    assert "Traceback" not in res.err and not (project.root / "out.csv").exists()


@pytest.mark.parametrize("ext", [".csv", ".parquet", ".jsonl"])
def test_an_input_without_rows_gives_an_output_without_rows(tmp_path, iris_model, table, ext):
    source = tmp_path / f"in{ext}"
    if ext == ".jsonl":
        source.write_text("")
    else:
        write(table[:0], source)
    out = tmp_path / f"out{ext}"
    assert predict_file(str(iris_model), str(source), str(out)) == 0
    if ext == ".csv":
        assert out.read_text() == "prediction\n"
    elif ext == ".parquet":
        assert list(pd.read_parquet(out).columns) == ["prediction"] and len(pd.read_parquet(out)) == 0
    else:
        assert out.read_text() == ""


@pytest.mark.parametrize("document", [
    lambda t: {"dataframe_split": t.to_dict(orient="split", index=False)},
    lambda t: {"dataframe_records": t.to_dict(orient="records")},
    lambda t: {"instances": t.to_dict(orient="records")},
    lambda t: t.to_dict(orient="records"),  # a bare array of records
])
@pytest.mark.parametrize("indent", [None, 2])  # one line, or pretty-printed over many
def test_a_json_file_holding_one_document_is_scored(tmp_path, iris_model, classifier, table, document, indent):
    features = table.drop(columns="id")
    source = tmp_path / "in.json"
    source.write_text(json.dumps(document(features), indent=indent))
    out = tmp_path / "out.json"
    assert predict_file(str(iris_model), str(source), str(out), chunk_rows=50) == len(table)
    assert read(out)["prediction"].tolist() == classifier.predict(features).tolist()


@pytest.mark.parametrize("text, words", [
    ("[1, 2, 3]", "a JSON array must hold one object per row"),
    ('{"rows": [1, 2]\n', "not valid JSON"),
    ('{"inputs": 1, "instances": 2}', "exactly one of dataframe_split"),
])
def test_a_json_file_of_no_accepted_form_says_which_are(project, iris_model, text, words):
    project.write("in.json", text)
    res = project.flowml("models", "predict", "-m", str(iris_model), "-i", "in.json", "-o", "out.json")
    assert res.code == 2 and "Traceback" not in res.err, res.err
    assert words in res.err and "JSON lines (one object per line), or one JSON document" in res.err, res.err
    assert not (project.root / "out.json").exists()


def test_the_output_gets_the_permissions_of_a_new_file(tmp_path, iris_model, table):
    source = write(table, tmp_path / "in.csv")
    old = os.umask(0o027)
    try:
        predict_file(str(iris_model), str(source), str(tmp_path / "out.csv"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "out.csv").st_mode) == 0o640


# a file of 1,000,000 rows ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def million_csv(tmp_path_factory, iris):
    """1,000,000 rows: the iris features and a text id column (about 30 MB; loading it whole costs
    about 100 MB more than scoring a small file)."""
    X, _ = iris
    lines = [f"row-{i}," + ",".join(repr(v) for v in row) for i, row in enumerate(X.to_numpy().tolist())]
    block = "\n".join(lines) + "\n"
    path = tmp_path_factory.mktemp("million") / "big.csv"
    with open(path, "w") as out:
        out.write("id," + ",".join(X.columns) + "\n")
        repeats, rest = divmod(1_000_000, len(lines))
        out.write(block * repeats)
        out.write("\n".join(lines[:rest]) + "\n")
    return path


def peak_rss_mb(args: list[str], cwd) -> float:
    """Peak resident memory of a child process (it is the only child of a small wrapper)."""
    wrapper = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
               "assert code == 0, code; print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    proc = subprocess.run([sys.executable, "-c", wrapper, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.split()[-1]) / 1024


@pytest.mark.slow
def test_a_million_rows_in_bounded_memory(tmp_path, iris_model, million_csv, iris):
    X, _ = iris
    small = tmp_path / "small.csv"
    million = pd.read_csv(million_csv, nrows=1000)
    million.to_csv(small, index=False)
    predict = [sys.executable, "-m", "flowml", "models", "predict", "-m", str(iris_model), "--chunk-rows", "10000"]
    baseline = peak_rss_mb([*predict, "-i", str(small), "-o", str(tmp_path / "small-out.csv")], tmp_path)
    started = time.monotonic()
    chunked = peak_rss_mb([*predict, "-i", str(million_csv), "-o", str(tmp_path / "out.csv")], tmp_path)
    took = time.monotonic() - started
    whole = ("import sys, pandas as pd, flowml.pyfunc as p; m = p.load_model(sys.argv[1]); "
             "pd.DataFrame({'prediction': m.predict(pd.read_csv(sys.argv[2]))}).to_csv(sys.argv[3], index=False)")
    loaded = peak_rss_mb([sys.executable, "-c", whole, str(iris_model), str(million_csv),
                          str(tmp_path / "whole.csv")], tmp_path)
    print(f"peak RSS: 1,000-row file {baseline:.0f} MB, 1,000,000 rows chunked {chunked:.0f} MB, "
          f"whole file loaded {loaded:.0f} MB; chunked run {took:.1f} s")
    assert loaded - baseline > 50, "the comparison needs a file that costs memory to load"
    assert chunked - baseline < 0.2 * (loaded - baseline)
    out = pd.read_csv(tmp_path / "out.csv")
    assert len(out) == 1_000_000
    assert out["prediction"].equals(pd.read_csv(tmp_path / "whole.csv")["prediction"])


@pytest.mark.slow
def test_ctrl_c_leaves_no_partial_output(tmp_path, iris_model, million_csv):
    out = tmp_path / "out.csv"
    proc = subprocess.Popen([sys.executable, "-m", "flowml", "models", "predict", "-m", str(iris_model),
                             "-i", str(million_csv), "-o", str(out), "--chunk-rows", "1000"],
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not [n for n in os.listdir(tmp_path) if n.endswith(".partial") and os.path.getsize(tmp_path / n)]:
        assert proc.poll() is None and time.monotonic() < deadline, "never started writing"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)
    assert "Traceback" not in err
