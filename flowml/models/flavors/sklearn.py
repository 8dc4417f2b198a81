"""The scikit-learn flavor, in MLflow 3's on-disk format, so each side loads the other's models.

Saved with skops by default (``model.skops``): loading a skops file builds only the types it is
told to trust, scikit-learn's and numpy's by default. An estimator that needs more (a forest's
``sklearn.tree._tree.Tree``, a custom transformer) is saved with ``skops_trusted_types=[...]``,
which is checked at save time and recorded in MLmodel. Since anyone can write an MLmodel, loading
trusts that recorded list only where each entry is a class of scikit-learn, numpy or scipy
(which makes forests load); any other entry (a custom class, ``numpy.load``, ``posix.system``)
is refused by name unless the caller passes its own ``skops_trusted_types`` to
:func:`load_model` (or ``model_config={"skops_trusted_types": [...]}`` to
``flowml.pyfunc.load_model``).

``serialization_format="pickle"`` or ``"cloudpickle"`` (``model.pkl``) only when asked, with an
:class:`~flowml.models.errors.UnsafeSerializationWarning` at save and at load: unpickling runs
any code the file names.

MLmodel (as ``mlflow.sklearn`` writes it): ``sklearn`` {pickled_model, sklearn_version,
serialization_format, skops_trusted_types, code} and ``python_function`` with
``loader_module: mlflow.sklearn``, ``model_path`` and ``predict_fn`` (``pyfunc_predict_fn``:
predict, predict_proba ...). MLflow loads such a directory with its own code; flowml maps that
loader module to this one.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import os
from typing import Any

from flowml.models.errors import ModelError, warn_unsafe
from flowml.models.mlmodel import PYFUNC, Model
from flowml.models.pyfunc import add_flavor
from flowml.models.saving import copy_code_paths, finish, new_model_dir
from flowml.models.signature import ModelSignature
from flowml.models.uri import download_model

FLAVOR_NAME = "sklearn"
LOADER_MODULE = "mlflow.sklearn"  # the format's loader name: MLflow loads these models natively
SKOPS, PICKLE, CLOUDPICKLE = "skops", "pickle", "cloudpickle"
FORMATS = (SKOPS, PICKLE, CLOUDPICKLE)
DATA_FILES = {SKOPS: "model.skops", PICKLE: "model.pkl", CLOUDPICKLE: "model.pkl"}
PREDICT_FUNCTIONS = ("predict", "predict_proba", "predict_log_proba", "predict_joint_log_proba", "score")
SAFER = "skops, the default format, does not have this problem"  # said with every pickle warning
TORCH_SHIM = "sklearn.externals.array_api_compat.torch"  # see _skops_io
LIBRARY_PREFIXES = ("sklearn.", "numpy.", "scipy.")  # whose classes an MLmodel may ask skops to trust


def save_model(sk_model: Any, path: str | os.PathLike, serialization_format: str = SKOPS,
               skops_trusted_types: list[str] | None = None, code_paths: list[str] | None = None,
               input_example: Any = None, signature: ModelSignature | bool | None = None,
               pip_requirements: list[str] | str | None = None,
               extra_pip_requirements: list[str] | str | None = None,
               pyfunc_predict_fn: str = "predict", metadata: dict[str, Any] | None = None) -> Model:
    """Save a scikit-learn estimator as a model directory at ``path``.

    Raises:
        ModelError: an unknown format or predict function, a model skops cannot store, or
            types outside ``skops_trusted_types`` that loading would refuse.
    """
    if serialization_format not in FORMATS:
        raise ModelError(f"serialization_format must be one of {', '.join(FORMATS)}, got '{serialization_format}'")
    if pyfunc_predict_fn not in PREDICT_FUNCTIONS:
        raise ModelError(f"pyfunc_predict_fn must be one of {', '.join(PREDICT_FUNCTIONS)}, got '{pyfunc_predict_fn}'")
    if not callable(getattr(sk_model, pyfunc_predict_fn, None)):
        raise ModelError(f"the {type(sk_model).__name__} has no {pyfunc_predict_fn}() to serve")
    if serialization_format != SKOPS:
        warn_unsafe(f"saving a scikit-learn model with {serialization_format}", SAFER)
    import sklearn

    with new_model_dir(path) as staging:
        data_file = DATA_FILES[serialization_format]
        _dump(sk_model, os.path.join(staging, data_file), serialization_format, skops_trusted_types)
        code = copy_code_paths(code_paths, staging)
        model = Model(metadata=metadata)
        add_flavor(model, LOADER_MODULE, code=code, model_path=data_file, predict_fn=pyfunc_predict_fn)
        model.add_flavor(FLAVOR_NAME, pickled_model=data_file, sklearn_version=sklearn.__version__,
                         serialization_format=serialization_format, code=code,
                         skops_trusted_types=list(skops_trusted_types) if skops_trusted_types else None)
        packages = ["scikit-learn", "skops" if serialization_format == SKOPS else "cloudpickle"]
        finish(staging, model, packages=packages, input_example=input_example, signature=signature,
               predict=getattr(sk_model, pyfunc_predict_fn), pip_requirements=pip_requirements,
               extra_pip_requirements=extra_pip_requirements)
    return model


def _dump(sk_model: Any, target: str, serialization_format: str, trusted: list[str] | None) -> None:
    if serialization_format == SKOPS:
        skops_io = _skops_io()
        try:
            skops_io.dump(sk_model, target)
        except Exception as exc:  # noqa: BLE001 - skops raises many types for what it cannot store
            raise ModelError(f"skops cannot store this {type(sk_model).__name__} ({exc}); save it with "
                             "serialization_format='cloudpickle' if it comes from a trusted source") from None
        untrusted = sorted(set(skops_io.get_untrusted_types(file=target)) - set(trusted or ()))
        if untrusted:
            raise ModelError(f"the model uses types skops does not trust by default: {', '.join(untrusted)}; "
                             "if they are safe, pass them as skops_trusted_types=[...]")
        return
    import pickle

    module = pickle
    if serialization_format == CLOUDPICKLE:
        import cloudpickle as module
    try:
        with open(target, "wb") as out:
            module.dump(sk_model, out, protocol=pickle.DEFAULT_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        hint = "; try serialization_format='cloudpickle'" if serialization_format == PICKLE else ""
        raise ModelError(f"cannot pickle the {type(sk_model).__name__}: {exc}{hint}") from None


def _skops_io():
    """``skops.io``, imported without the torch that its start-up would otherwise drag in.

    On import, skops lists scikit-learn's estimators (``all_estimators``), and that package walk
    imports every subpackage, among them scikit-learn's vendored array-API shim for torch, which
    imports torch when it is installed: over a second and about 260 MB per process (each scoring
    worker) for a module no saved estimator refers to. The shim alone is made unimportable for the
    length of that import; the walk skips what it cannot import, and the shim and torch import as
    usual afterwards."""
    if "skops.io" in sys.modules or "torch" in sys.modules:
        import skops.io

        return skops.io
    blocker = _SkipModule(TORCH_SHIM)
    sys.meta_path.insert(0, blocker)
    try:
        import skops.io
    finally:
        sys.meta_path.remove(blocker)
    return skops.io


class _SkipModule(importlib.abc.MetaPathFinder):
    """An import finder that refuses one module by name (see :func:`_skops_io`)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, fullname, path, target=None):
        if fullname == self.name:
            raise ImportError(f"{fullname} is skipped while skops lists scikit-learn's estimators")
        return None


def load_model(model_uri: str | os.PathLike, dst_path: str | None = None,
               skops_trusted_types: list[str] | None = None) -> Any:
    """The estimator saved at ``model_uri`` (any URI :func:`flowml.models.uri.download_model` takes).

    Args:
        skops_trusted_types: the types to trust in a skops file instead of the list the model
            records (for a model from a source you do not control).

    Raises:
        ModelError: no sklearn flavor, or types the trusted list does not allow.
    """
    path = download_model(os.fspath(model_uri), dst_path)
    conf = Model.load(path).flavor(FLAVOR_NAME, path)
    return _load(path, conf, skops_trusted_types)


def _load(path: str, conf: dict, trusted_override: list[str] | None = None) -> Any:
    serialization_format = conf.get("serialization_format", PICKLE)  # MLflow's default for old models
    if serialization_format not in FORMATS:
        raise ModelError(f"{path}/MLmodel: unknown sklearn serialization_format '{serialization_format}'")
    file = os.path.join(path, conf.get("pickled_model") or DATA_FILES[serialization_format])
    if serialization_format == SKOPS:
        skops_io = _skops_io()
        from skops.io.exceptions import UntrustedTypesFoundException

        trusted = trusted_override if trusted_override is not None else _recorded_trust(path, conf)
        try:
            return skops_io.load(file, trusted=list(trusted) if trusted else None)
        except UntrustedTypesFoundException as exc:
            raise ModelError(f"the model at {path} holds untrusted types ({exc}); if you trust them, "
                             "pass skops_trusted_types=[...]") from None
    warn_unsafe(f"loading the {serialization_format} file {file}", SAFER)
    import pickle

    module = pickle
    if serialization_format == CLOUDPICKLE:
        import cloudpickle as module
    with open(file, "rb") as src:
        return module.load(src)


def _recorded_trust(path: str, conf: dict) -> list[str]:
    """The types the model's MLmodel asks skops to trust, if all are library classes."""
    recorded = conf.get("skops_trusted_types") or []
    if not isinstance(recorded, list):
        raise ModelError(f"{path}/MLmodel: sklearn skops_trusted_types must be a list of type names")
    refused = [name for name in recorded if not _is_library_class(name)]
    if refused:
        raise ModelError(f"the model at {path} asks to trust types that are not scikit-learn, numpy or scipy "
                         f"classes: {', '.join(map(str, refused))}; if you trust this model, pass "
                         "skops_trusted_types=[...] to load_model yourself")
    return recorded


def _is_library_class(name: object) -> bool:
    """Whether ``name`` (``package.module.Class``) is a class defined under scikit-learn, numpy or
    scipy: a function there (``numpy.load``) is no class, and nothing outside them is imported."""
    if not isinstance(name, str) or not name.startswith(LIBRARY_PREFIXES):
        return False
    parts = name.split(".")
    for split in range(len(parts) - 1, 0, -1):  # the longest importable module, then attributes
        try:
            found: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            found = getattr(found, attribute, None)
        return isinstance(found, type)
    return False


class _SklearnPyfunc:
    """The python_function implementation: ``predict`` and, for ``predict_fn``, the estimator's
    other prediction methods."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator
        for name in PREDICT_FUNCTIONS[1:]:
            method = getattr(estimator, name, None)
            if method is not None:
                setattr(self, name, method)

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        return self.estimator.predict(data)

    def get_raw_model(self) -> Any:
        return self.estimator


def _load_pyfunc(path: str, model_config: dict[str, Any] | None = None) -> _SklearnPyfunc:
    """The loader module's entry point: ``path`` is the model directory (or its data file);
    the caller's ``model_config`` may hold ``skops_trusted_types``, as :func:`load_model` takes."""
    model_dir = os.path.dirname(path) if os.path.isfile(path) else path
    metadata = Model.load(model_dir)
    conf = metadata.flavors.get(FLAVOR_NAME)
    if conf is None:  # an old MLflow model with only python_function: a pickle at model_path
        conf = {"serialization_format": PICKLE, "pickled_model": metadata.flavor(PYFUNC, path).get("model_path")}
    return _SklearnPyfunc(_load(model_dir, conf, (model_config or {}).get("skops_trusted_types")))


def log_model(sk_model: Any, name: str | None = None, *, artifact_path: str | None = None,
              registered_model_name: str | None = None, **kwargs: Any):
    """Save the estimator and log it as a logged model of the active run (see
    :func:`flowml.models.logged.log_model`); ``kwargs`` are :func:`save_model`'s."""
    from flowml.models.logged import log_model as log

    return log(lambda path, **kw: save_model(sk_model, path, **kw), name or artifact_path,
               registered_model_name=registered_model_name, **kwargs)
