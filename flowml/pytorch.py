"""``import flowml.pytorch``: save, log and load PyTorch modules (MLflow's ``mlflow.pytorch``
names; the whole-module form is MLflow's format). The implementation is
:mod:`flowml.models.flavors.pytorch`."""

from flowml.models.flavors.pytorch import MODULE, STATE_DICT, load_model, log_model, save_model

__all__ = ["MODULE", "STATE_DICT", "load_model", "log_model", "save_model"]
