"""``import flowml.pyfunc``: load any MLflow-format model and call it, and write custom models
(MLflow's ``mlflow.pyfunc`` names). The implementation is :mod:`flowml.models.pyfunc`."""

from flowml.models.pyfunc import (PyFuncModel, PythonModel, PythonModelContext, load_model, log_model,
                                  save_model)
from flowml.models.spark import spark_udf  # pyspark itself is imported only when it is called

__all__ = ["PyFuncModel", "PythonModel", "PythonModelContext", "load_model", "log_model", "save_model",
           "spark_udf"]

