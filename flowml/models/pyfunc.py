"""The ``python_function`` flavor: one way to load and call any model, whatever library made it.

:func:`load_model` reads MLmodel's ``python_function`` entry, imports its ``loader_module``
and calls the module's ``_load_pyfunc(path)``, MLflow's contract. MLflow's own loader modules
(``mlflow.sklearn``, ``mlflow.pytorch``, ``mlflow.pyfunc.model``) map to flowml's, so flowml
loads MLflow's models without MLflow installed; any other loader module is imported as named.
The result is a :class:`PyFuncModel`, whose ``predict`` enforces the model's signature.

Custom models subclass :class:`PythonModel` and are saved with :func:`save_model`: the
instance is stored with cloudpickle (as MLflow stores it), with artifacts and code copied into
the model directory. Loading one runs code from the model directory: load models you trust.
"""

from __future__ import annotations

import importlib
import inspect
import os
import shutil
import sys
from typing import Any

from flowml.models.enforce import enforce_input, enforce_params
from flowml.models.errors import ModelError, warn_unsafe
from flowml.models.mlmodel import PYFUNC, Model
from flowml.models.saving import copy_code_paths, finish, new_model_dir, python_version
from flowml.models.signature import ModelSignature
from flowml.models.uri import download_model

FLAVOR_NAME = PYFUNC
LOADER_MODULE = "flowml.models.pyfunc"
PYTHON_MODEL_FILE = "python_model.pkl"
ARTIFACTS_DIR = "artifacts"
# MLflow's loader modules -> flowml's implementation of the same on-disk format
LOADER_ALIASES = {
    "mlflow.sklearn": "flowml.models.flavors.sklearn",
    "mlflow.pytorch": "flowml.models.flavors.pytorch",
    "mlflow.pyfunc.model": LOADER_MODULE,
}


class PythonModelContext:
    """What a :class:`PythonModel` gets at load time: ``artifacts`` (name -> local path of the
    file or folder saved with the model) and ``model_config``."""

    def __init__(self, artifacts: dict[str, str] | None = None, model_config: dict[str, Any] | None = None) -> None:
        self.artifacts = dict(artifacts or {})
        self.model_config = dict(model_config or {})


class PythonModel:
    """Base class of custom models: override ``predict`` (and ``load_context`` to read artifacts)."""

    def load_context(self, context: PythonModelContext) -> None:
        """Called once when the model is loaded, before any predict."""

    def predict(self, context: PythonModelContext, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement predict(context, model_input, params)")


class PyFuncModel:
    """A loaded model with one ``predict(data, params=None)``, whatever its flavor."""

    def __init__(self, metadata: Model, implementation: Any, path: str, predict_fn: str = "predict") -> None:
        self._metadata = metadata
        self._impl = implementation
        self.path = path
        fn = getattr(implementation, predict_fn, None)
        if fn is None:
            raise ModelError(f"the model at {path} has no '{predict_fn}' method")
        self._predict = fn
        self._takes_params = _takes(fn, "params")

    @property
    def metadata(self) -> Model:
        """The parsed MLmodel: ``.signature``, ``.flavors``, ``.get_input_schema()`` ..."""
        return self._metadata

    @property
    def loader_module(self) -> str:
        return self._metadata.flavors[PYFUNC]["loader_module"]

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Predictions for ``data`` (a DataFrame, an array, a dict ...), checked against the
        model's input schema and params schema first.

        Raises:
            ModelInputError: the input or a param does not fit the signature.
        """
        signature = self._metadata.signature
        data = enforce_input(data, signature.inputs if signature else None)
        params = enforce_params(params, signature.params if signature else None)
        if self._takes_params:
            return self._predict(data, params=params)
        return self._predict(data)

    def unwrap_python_model(self) -> Any:
        """The :class:`PythonModel` instance of a custom model.

        Raises:
            ModelError: the model is not a custom PythonModel.
        """
        python_model = getattr(self._impl, "python_model", None)
        if python_model is None:
            raise ModelError(f"the model at {self.path} is not a custom PythonModel "
                             f"(its loader module is {self.loader_module})")
        return python_model

    def get_raw_model(self) -> Any:
        """The library's own model object (the estimator, the module)."""
        raw = getattr(self._impl, "get_raw_model", None)
        return raw() if raw else self._impl

    def __repr__(self) -> str:
        return f"PyFuncModel(loader_module={self.loader_module!r}, path={self.path!r})"


def _takes(fn, name: str) -> bool:
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    return name in parameters or any(p.kind == p.VAR_KEYWORD for p in parameters.values())


def load_model(model_uri: str | os.PathLike, dst_path: str | None = None,
               model_config: dict[str, Any] | None = None) -> PyFuncModel:
    """Load any model with a ``python_function`` flavor (see the module's documentation).

    Raises:
        ModelError: no model there, no python_function flavor, or its loader cannot be imported.
    """
    path = download_model(os.fspath(model_uri), dst_path)
    metadata = Model.load(path)
    conf = metadata.flavor(PYFUNC, path)
    loader = conf.get("loader_module")
    if not loader:
        raise ModelError(f"{path}/MLmodel: python_function has no loader_module")
    _add_code_to_path(path, conf.get("code"))
    data_path = os.path.join(path, conf["data"]) if conf.get("data") else path
    module_name = LOADER_ALIASES.get(loader, loader)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(f"the model at {path} is loaded by '{loader}', which cannot be imported here: {exc}") from None
    if model_config is not None or module_name.startswith("flowml."):
        implementation = module._load_pyfunc(data_path, model_config)
    else:
        implementation = module._load_pyfunc(data_path)
    return PyFuncModel(metadata, implementation, path, conf.get("predict_fn") or "predict")


def _add_code_to_path(path: str, code: str | None) -> None:
    """Put the model's copied code on ``sys.path`` (its folder and each top-level file's folder)."""
    if not code:
        return
    folder = os.path.join(path, code)
    if os.path.isdir(folder) and folder not in sys.path:
        sys.path.insert(0, folder)


def add_flavor(model: Model, loader_module: str, code: str | None = None, **conf: Any) -> Model:
    """Add the ``python_function`` flavor (MLflow's ``pyfunc.add_to_model``); ``env`` is filled
    in when the environment files are written."""
    return model.add_flavor(PYFUNC, loader_module=loader_module, python_version=python_version(), code=code, **conf)


# custom models ------------------------------------------------------------------------------

def save_model(path: str | os.PathLike, python_model: PythonModel | None = None,
               artifacts: dict[str, str] | None = None, code_paths: list[str] | None = None,
               input_example: Any = None, signature: ModelSignature | bool | None = None,
               pip_requirements: list[str] | str | None = None,
               extra_pip_requirements: list[str] | str | None = None,
               model_config: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None) -> Model:
    """Save a custom :class:`PythonModel` as a model directory at ``path``.

    Args:
        python_model: the instance to save (pickled with cloudpickle).
        artifacts: name -> local file or folder, copied into ``artifacts/`` and given to
            ``load_context`` as ``context.artifacts[name]`` (a local path).
        code_paths: files and folders the model's code imports, put on ``sys.path`` at load.
        input_example: saved beside the model; its signature is inferred when none is given
            (``signature=False``: none).
        pip_requirements, extra_pip_requirements: see :mod:`flowml.models.environment`.
        model_config: given to ``load_context`` as ``context.model_config``.

    Raises:
        ModelError: ``path`` is not empty, an artifact is missing, or the model cannot be pickled.
    """
    import cloudpickle

    if not isinstance(python_model, PythonModel) and not callable(getattr(python_model, "predict", None)):
        raise ModelError("save_model needs python_model: an instance of flowml.pyfunc.PythonModel")
    with new_model_dir(path) as staging:
        code = copy_code_paths(code_paths, staging)
        saved_artifacts = _copy_artifacts(artifacts or {}, staging)
        try:
            with open(os.path.join(staging, PYTHON_MODEL_FILE), "wb") as out:
                cloudpickle.dump(python_model, out)
        except Exception as exc:  # noqa: BLE001 - cloudpickle raises many types for an unpicklable model
            raise ModelError(f"cannot pickle {type(python_model).__name__}: {exc}") from None
        model = Model(metadata=metadata)
        add_flavor(model, LOADER_MODULE, code=code, python_model=PYTHON_MODEL_FILE,
                   cloudpickle_version=cloudpickle.__version__, artifacts=saved_artifacts or None,
                   model_config=model_config)
        context = PythonModelContext({k: os.path.join(staging, v["path"]) for k, v in saved_artifacts.items()},
                                     model_config)

        def predict(example):
            python_model.load_context(context)
            return _call_predict(python_model, context, example, None)

        finish(staging, model, packages=["cloudpickle", "flowml"], input_example=input_example,
               signature=signature, predict=predict, pip_requirements=pip_requirements,
               extra_pip_requirements=extra_pip_requirements)
    return model


def _copy_artifacts(artifacts: dict[str, str], model_dir: str) -> dict[str, dict[str, str]]:
    out = {}
    for name, source in artifacts.items():
        source = os.fspath(source)
        if source.startswith("file://"):
            from flowml.artifacts.local import local_path

            source = local_path(source)
        if not os.path.exists(source):
            raise ModelError(f"artifacts: '{name}' names {source}, which does not exist")
        rel = f"{ARTIFACTS_DIR}/{os.path.basename(os.path.normpath(source))}"
        target = os.path.join(model_dir, *rel.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.isdir(source):
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
        out[name] = {"path": rel, "uri": source}
    return out


def log_model(name: str | None = None, python_model: PythonModel | None = None, *,
              artifact_path: str | None = None, registered_model_name: str | None = None, **kwargs: Any):
    """Save a custom model and log it as a logged model of the active run (see
    :func:`flowml.models.logged.log_model`); ``kwargs`` are :func:`save_model`'s."""
    from flowml.models.logged import log_model as log

    return log(save_model, name or artifact_path, registered_model_name=registered_model_name,
               python_model=python_model, **kwargs)


class _PythonModelWrapper:
    """The python_function implementation of a custom model: ``predict(data, params)`` calls
    the model's ``predict(context, data, params)``."""

    def __init__(self, python_model: Any, context: PythonModelContext) -> None:
        self.python_model = python_model
        self.context = context
        self._with_context = _takes(python_model.predict, "context")
        self._with_params = _takes(python_model.predict, "params")

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        return _call_predict(self.python_model, self.context, data, params, self._with_context, self._with_params)

    def get_raw_model(self) -> Any:
        return self.python_model


def _call_predict(python_model, context, data, params, with_context: bool | None = None,
                  with_params: bool | None = None) -> Any:
    """Call ``predict`` as the model defines it: MLflow 3 allows leaving out ``context`` and ``params``."""
    with_context = _takes(python_model.predict, "context") if with_context is None else with_context
    with_params = _takes(python_model.predict, "params") if with_params is None else with_params
    args = (context, data) if with_context else (data,)
    return python_model.predict(*args, params=params) if with_params else python_model.predict(*args)


def _load_pyfunc(path: str, model_config: dict[str, Any] | None = None) -> _PythonModelWrapper:
    """The loader module's entry point (MLflow's contract): a custom model from its directory
    (flowml's, or MLflow's ``mlflow.pyfunc.model`` format, the same layout)."""
    import cloudpickle

    conf = Model.load(path).flavor(PYFUNC, path)
    file = os.path.join(path, conf.get("python_model", PYTHON_MODEL_FILE))
    warn_unsafe(f"loading the custom model {file} (cloudpickle)",
                "custom models have no pickle-free format: load only those you trust")
    with open(file, "rb") as src:
        python_model = cloudpickle.load(src)
    artifacts = {name: os.path.join(path, *entry["path"].split("/"))
                 for name, entry in (conf.get("artifacts") or {}).items()}
    config = {**(conf.get("model_config") or {}), **(model_config or {})}
    context = PythonModelContext(artifacts, config)
    python_model.load_context(context)
    return _PythonModelWrapper(python_model, context)
