"""``import flowml.pyfunc``: load any MLflow-format model and call it, and write custom models
(MLflow's ``mlflow.pyfunc`` names). The implementation is :mod:`flowml.models.pyfunc`."""

from flowml.models.pyfunc import (PyFuncModel, PythonModel, PythonModelContext, load_model, log_model,
                                  save_model)

__all__ = ["PyFuncModel", "PythonModel", "PythonModelContext", "load_model", "log_model", "save_model",
           "spark_udf"]


def __getattr__(name: str):
    if name == "spark_udf":  # pyspark is optional: loaded only when asked for
        from flowml.models.spark import spark_udf

        return spark_udf
    raise AttributeError(f"module 'flowml.pyfunc' has no attribute '{name}'")
