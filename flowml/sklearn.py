"""``import flowml.sklearn``: save, log and load scikit-learn models (MLflow's ``mlflow.sklearn``
names and format). The implementation is :mod:`flowml.models.flavors.sklearn`."""

from flowml.models.flavors.sklearn import (CLOUDPICKLE, PICKLE, SKOPS, load_model, log_model,
                                           save_model)

SERIALIZATION_FORMAT_SKOPS, SERIALIZATION_FORMAT_PICKLE, SERIALIZATION_FORMAT_CLOUDPICKLE = SKOPS, PICKLE, CLOUDPICKLE

__all__ = ["load_model", "log_model", "save_model", "SERIALIZATION_FORMAT_SKOPS", "SERIALIZATION_FORMAT_PICKLE",
           "SERIALIZATION_FORMAT_CLOUDPICKLE"]
