"""The PyTorch flavor (CPU or whatever device torch has), in two forms:

- ``serialization="module"`` (the default): the whole ``nn.Module`` pickled by ``torch.save``
  with cloudpickle into ``data/model.pth``, in MLflow's layout (``loader_module: mlflow.pytorch``,
  ``data/pickle_module_info.txt`` naming MLflow's cloudpickle wrapper), so MLflow loads it too. Unpickling runs code: saving and
  loading it warn, as for sklearn's pickle.
- ``serialization="state_dict"``: only the weights, ``data/state_dict.pth``, read back with
  ``torch.load(weights_only=True)``; the module is rebuilt from its class (``module_class``:
  ``package.module:Class``, importable where it is loaded) and ``init_kwargs`` (JSON), both
  recorded in MLmodel. flowml's own loader reads this form. Loading imports the named module and
  calls the class only once it is checked to be an ``nn.Module`` subclass, so an MLmodel cannot
  make it call an arbitrary function; importing a module still runs that module's top level and
  the class's ``__init__`` runs, so load such a model only with code you trust installed.

As python_function, ``predict`` takes a DataFrame or a numpy array (as a float32 tensor when the
model's weights are float32), runs the module under ``torch.no_grad()`` and returns a numpy array.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

from flowml.models.errors import ModelError, warn_unsafe
from flowml.models.mlmodel import Model
from flowml.models.pyfunc import add_flavor
from flowml.models.saving import copy_code_paths, finish, new_model_dir
from flowml.models.signature import ModelSignature
from flowml.models.uri import download_model

FLAVOR_NAME = "pytorch"
DATA_DIR = "data"
MODULE_FILE, STATE_DICT_FILE, PICKLE_INFO_FILE = "model.pth", "state_dict.pth", "pickle_module_info.txt"
EXPORTED_FILE = "model.pt2"  # what MLflow 3.17 saves by default (torch.export); flowml loads it
MODULE, STATE_DICT = "module", "state_dict"
# MLflow's name for cloudpickle dumping with pickle's loader, written so MLflow loads the file
MLFLOW_PICKLE_MODULE = "mlflow.pytorch.pickle_module"
LOADERS = {MODULE: "mlflow.pytorch", STATE_DICT: "flowml.models.flavors.pytorch"}
SAFER = "serialization='state_dict' does not have this problem"  # said with every pickle warning


def save_model(pytorch_model: Any, path: str | os.PathLike, serialization: str = MODULE,
               init_kwargs: dict[str, Any] | None = None, code_paths: list[str] | None = None,
               input_example: Any = None, signature: ModelSignature | bool | None = None,
               pip_requirements: list[str] | str | None = None,
               extra_pip_requirements: list[str] | str | None = None, metadata: dict[str, Any] | None = None) -> Model:
    """Save an ``nn.Module`` as a model directory at ``path`` (see the module's documentation).

    Raises:
        ModelError: not an nn.Module, an unknown serialization, or (state_dict) a class that
            cannot be imported by name or rebuilt from ``init_kwargs``.
    """
    import torch

    if not isinstance(pytorch_model, torch.nn.Module):
        raise ModelError(f"save_model needs a torch.nn.Module, got {type(pytorch_model).__name__}")
    if serialization not in LOADERS:
        raise ModelError(f"serialization must be '{MODULE}' or '{STATE_DICT}', got '{serialization}'")
    with new_model_dir(path) as staging:
        data = os.path.join(staging, DATA_DIR)
        os.makedirs(data)
        code = copy_code_paths(code_paths, staging)
        model = Model(metadata=metadata)
        flavor = {"model_data": DATA_DIR, "pytorch_version": torch.__version__.split("+")[0], "code": code,
                  "serialization": serialization}
        if serialization == MODULE:
            warn_unsafe("saving a PyTorch module with pickle", SAFER)
            import cloudpickle

            with open(os.path.join(data, PICKLE_INFO_FILE), "w", encoding="utf-8") as out:
                out.write(MLFLOW_PICKLE_MODULE)
            torch.save(pytorch_model, os.path.join(data, MODULE_FILE), pickle_module=cloudpickle)
            add_flavor(model, LOADERS[MODULE], code=code, data=DATA_DIR, pickle_module_name=MLFLOW_PICKLE_MODULE,
                       model_config={"device": None})
        else:
            flavor.update(module_class=_class_path(pytorch_model), init_kwargs=_checked_kwargs(init_kwargs))
            torch.save(pytorch_model.state_dict(), os.path.join(data, STATE_DICT_FILE))
            _rebuild(data, flavor)  # proves now that loading will work
            add_flavor(model, LOADERS[STATE_DICT], code=code, data=DATA_DIR)
        model.add_flavor(FLAVOR_NAME, **flavor)
        wrapper = _TorchPyfunc(pytorch_model)
        finish(staging, model, packages=["torch", "cloudpickle"] if serialization == MODULE else ["torch"],
               input_example=input_example, signature=signature, predict=wrapper.predict,
               pip_requirements=pip_requirements, extra_pip_requirements=extra_pip_requirements)
    return model


def _class_path(module: Any) -> str:
    cls = type(module)
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        raise ModelError(f"serialization='state_dict' rebuilds the module from its class, but "
                         f"{cls.__qualname__} is not importable by name (defined in __main__ or inside a function); "
                         "move it to a module, or save with serialization='module'")
    return f"{cls.__module__}:{cls.__qualname__}"


def _checked_kwargs(init_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    try:
        return json.loads(json.dumps(init_kwargs or {}))
    except (TypeError, ValueError) as exc:
        raise ModelError(f"init_kwargs must be JSON values (they are stored in MLmodel): {exc}") from None


def _rebuild(data: str, conf: dict) -> Any:
    """The module from its class, its recorded init_kwargs and its weights (loaded weights-only)."""
    import torch

    cls = _module_class(conf.get("module_class"))
    init_kwargs = conf.get("init_kwargs") or {}
    if not isinstance(init_kwargs, dict):
        raise ModelError(f"MLmodel: pytorch init_kwargs must be a mapping, got {type(init_kwargs).__name__}")
    try:
        module = cls(**init_kwargs)
    except Exception as exc:  # noqa: BLE001 - a class's __init__ may raise anything for bad kwargs
        raise ModelError(f"cannot rebuild {conf['module_class']} with init_kwargs={init_kwargs}: "
                         f"{type(exc).__name__}: {exc}") from None
    state = torch.load(os.path.join(data, STATE_DICT_FILE), map_location="cpu", weights_only=True)
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"the saved weights do not fit {conf['module_class']}: {exc}") from None
    return module.eval()


def _module_class(path: Any) -> type:
    """The ``nn.Module`` subclass ``package.module:Class`` names: anything else is refused before
    it is called, since the name comes from the model's MLmodel (which a stranger may have written)."""
    import torch

    if not isinstance(path, str) or ":" not in path:
        raise ModelError(f"MLmodel: pytorch module_class must be 'package.module:Class', got {path!r}")
    module_name, _, qualname = path.partition(":")
    try:
        cls: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            cls = getattr(cls, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ModelError(f"cannot import the module_class {path}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise ModelError(f"MLmodel: pytorch module_class {path} is not a torch.nn.Module subclass; refusing to call it")
    return cls


def _load_module(data: str, conf: dict) -> Any:
    import torch

    if conf.get("serialization", MODULE) == STATE_DICT:
        return _rebuild(data, conf)
    file = os.path.join(data, MODULE_FILE)
    if not os.path.isfile(file) and os.path.isfile(os.path.join(data, EXPORTED_FILE)):
        return torch.export.load(os.path.join(data, EXPORTED_FILE)).module()  # MLflow 3's 'pt2' graph
    warn_unsafe(f"loading the pickled PyTorch module {file}", SAFER)
    pickle_name = MLFLOW_PICKLE_MODULE
    info = os.path.join(data, PICKLE_INFO_FILE)
    if os.path.isfile(info):
        with open(info, encoding="utf-8") as src:
            pickle_name = src.read().strip()
    # cloudpickle writes files the standard unpickler reads: flowml needs no MLflow for them
    pickle_module = importlib.import_module("pickle" if pickle_name in (MLFLOW_PICKLE_MODULE, "cloudpickle")
                                            else pickle_name)
    return torch.load(file, map_location="cpu", pickle_module=pickle_module, weights_only=False).eval()


def load_model(model_uri: str | os.PathLike, dst_path: str | None = None) -> Any:
    """The ``nn.Module`` saved at ``model_uri``, in eval mode, on the CPU."""
    path = download_model(os.fspath(model_uri), dst_path)
    conf = Model.load(path).flavor(FLAVOR_NAME, path)
    return _load_module(os.path.join(path, conf.get("model_data", DATA_DIR)), conf)


class _TorchPyfunc:
    """python_function: numpy or DataFrame in, numpy out."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        import numpy as np
        import torch

        if hasattr(data, "to_numpy"):
            data = data.to_numpy(dtype=np.float32)
        array = np.asarray(data)
        weights = next(self.module.parameters(), None)
        if weights is not None and array.dtype.kind == "f" and weights.dtype == torch.float32:
            array = array.astype(np.float32, copy=False)
        with torch.no_grad():
            out = self.module(torch.from_numpy(np.ascontiguousarray(array)))
        if not isinstance(out, torch.Tensor):
            raise ModelError(f"the module returned a {type(out).__name__}; python_function expects one tensor")
        return out.cpu().numpy()

    def get_raw_model(self) -> Any:
        return self.module


def _load_pyfunc(path: str, model_config: dict[str, Any] | None = None) -> _TorchPyfunc:
    """The loader module's entry point: ``path`` is the model's ``data`` folder."""
    model_dir = os.path.dirname(os.path.normpath(path))
    conf = Model.load(model_dir).flavors.get(FLAVOR_NAME) or {}
    return _TorchPyfunc(_load_module(path, conf))


def log_model(pytorch_model: Any, name: str | None = None, *, artifact_path: str | None = None,
              registered_model_name: str | None = None, **kwargs: Any):
    """Save the module and log it as a logged model of the active run (see
    :func:`flowml.models.logged.log_model`); ``kwargs`` are :func:`save_model`'s."""
    from flowml.models.logged import log_model as log

    return log(lambda path, **kw: save_model(pytorch_model, path, **kw), name or artifact_path,
               registered_model_name=registered_model_name, **kwargs)

