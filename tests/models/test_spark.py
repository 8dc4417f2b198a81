"""``flowml.pyfunc.spark_udf`` on a real local[2] Spark session (skipped when pyspark or Java is missing)."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

pyspark = pytest.importorskip("pyspark")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Spark needs Java", allow_module_level=True)

pytestmark = [pytest.mark.slow,  # a Spark session takes 20 s or more to start here
              pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")]


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (SparkSession.builder.master("local[2]").appName("flowml-tests")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
               .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
               .getOrCreate())
    yield session
    session.stop()


def test_udf_predicts_like_the_model(spark, iris_model, iris, classifier):
    import flowml.pyfunc
    from pyspark.sql.functions import col, struct

    X, _ = iris
    frame = spark.createDataFrame(X).repartition(4)
    udf = flowml.pyfunc.spark_udf(spark, str(iris_model), result_type="long")
    scored = frame.withColumn("by_columns", udf(*X.columns)) \
                  .withColumn("by_struct", udf(struct(*[col(c) for c in X.columns[::-1]]))).toPandas()
    want = classifier.predict(scored[list(X.columns)]).tolist()
    assert scored["by_columns"].tolist() == want
    assert scored["by_struct"].tolist() == want


def test_array_result_and_double(spark, tmp_path, iris, classifier):
    import flowml.pyfunc
    import flowml.sklearn

    X, _ = iris
    flowml.sklearn.save_model(classifier, str(tmp_path / "proba"), input_example=X[:5],
                              pyfunc_predict_fn="predict_proba")
    frame = spark.createDataFrame(X[:20])
    proba = flowml.pyfunc.spark_udf(spark, str(tmp_path / "proba"), result_type="array<double>")
    rows = frame.withColumn("p", proba(*X.columns)).toPandas()
    got = [list(p) for p in rows["p"]]
    assert got == classifier.predict_proba(rows[list(X.columns)]).tolist()


def test_input_that_does_not_fit_fails_the_job_with_the_reason(spark, iris_model, iris):
    import flowml.pyfunc

    X, _ = iris
    frame = spark.createDataFrame(X[["sepal length (cm)"]].rename(columns={"sepal length (cm)": "x"}))
    udf = flowml.pyfunc.spark_udf(spark, str(iris_model), result_type="long")
    with pytest.raises(Exception, match="missing input columns: .sepal length"):
        frame.withColumn("p", udf("x")).collect()


def test_two_models_with_the_same_folder_name_each_score_their_own(spark, tmp_path, iris):
    """runs:/r1/model and runs:/r2/model both end in "model": each UDF must ship and load its own."""
    import flowml.pyfunc
    import flowml.sklearn
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    first = LogisticRegression(max_iter=500).fit(X, y)
    second = LogisticRegression(max_iter=500).fit(X, 2 - y)  # the labels reversed: other predictions
    flowml.sklearn.save_model(first, str(tmp_path / "r1" / "model"), input_example=X[:5])
    flowml.sklearn.save_model(second, str(tmp_path / "r2" / "model"), input_example=X[:5])
    frame = spark.createDataFrame(X).coalesce(1)  # one task: the same Python worker runs both UDFs
    one = flowml.pyfunc.spark_udf(spark, str(tmp_path / "r1" / "model"), result_type="long")
    two = flowml.pyfunc.spark_udf(spark, str(tmp_path / "r2" / "model"), result_type="long")
    scored = frame.withColumn("one", one(*X.columns)).toPandas()
    again = frame.withColumn("two", two(*X.columns)).toPandas()  # a later job on a reused worker
    assert scored["one"].tolist() == first.predict(scored[list(X.columns)]).tolist()
    assert again["two"].tolist() == second.predict(again[list(X.columns)]).tolist()
    assert again["two"].tolist() != scored["one"].tolist()
