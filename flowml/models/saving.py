"""What every flavor's ``save_model`` does around its own files: make the directory atomically,
copy code paths, save the input example, infer the signature from it, write the environment
files and the MLmodel.

A model directory appears whole or not at all: it is built in a hidden sibling folder and
renamed into place, so a failed save (an unpicklable model, a bad example) leaves nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from flowml.models.environment import requirements, write_environment
from flowml.models.errors import ModelError
from flowml.models.example import save_example
from flowml.models.mlmodel import PYFUNC, Model, directory_size
from flowml.models.signature import ModelSignature, infer_signature

CODE_DIR = "code"


@contextmanager
def new_model_dir(path: str | os.PathLike) -> Iterator[str]:
    """A folder to build the model in, renamed to ``path`` when the block succeeds.

    Raises:
        ModelError: ``path`` exists and is not an empty folder (MLflow refuses it too).
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise ModelError(f"cannot save a model to {path}: it already exists and is not empty")
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.saving-", dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)
    try:
        yield staging
        if os.path.isdir(path):
            os.rmdir(path)
        os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def copy_code_paths(code_paths: list[str] | None, model_dir: str) -> str | None:
    """Copy files and folders the model's code imports into ``code/`` (put on ``sys.path`` at
    load); returns MLmodel's ``code`` entry."""
    if not code_paths:
        return None
    target = os.path.join(model_dir, CODE_DIR)
    os.makedirs(target, exist_ok=True)
    for source in code_paths:
        source = os.fspath(source)
        name = os.path.basename(os.path.normpath(source))
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(target, name), ignore=shutil.ignore_patterns("__pycache__"))
        elif os.path.isfile(source):
            shutil.copy2(source, os.path.join(target, name))
        else:
            raise ModelError(f"code_paths: {source} does not exist")
    return CODE_DIR


def finish(model_dir: str, model: Model, *, packages: list[str], input_example: Any = None,
           signature: ModelSignature | bool | None = None, predict: Callable[[Any], Any] | None = None,
           pip_requirements: list[str] | str | None = None,
           extra_pip_requirements: list[str] | str | None = None) -> Model:
    """Write the example, the signature (given, or inferred from the example and
    ``predict(example)``; ``False``: none), the environment files and the MLmodel."""
    if input_example is not None:
        model.saved_input_example_info = save_example(model_dir, input_example)
    if signature is None and input_example is not None:
        signature = _inferred(input_example, predict)
    model.signature = signature or None
    env = write_environment(model_dir, requirements(packages, pip_requirements, extra_pip_requirements))
    if PYFUNC in model.flavors:
        model.flavors[PYFUNC]["env"] = env
    model.model_size_bytes = directory_size(model_dir)
    model.save(model_dir)
    return model


def _inferred(example: Any, predict: Callable[[Any], Any] | None) -> ModelSignature | None:
    """The signature of the example, with the outputs of ``predict`` on it when that works (a
    model that fails on its own example still saves, with the inputs only, and a warning)."""
    try:
        signature = infer_signature(example)
    except ModelError as exc:
        warnings.warn(f"no signature inferred from the input example: {exc}", stacklevel=3)
        return None
    if predict is not None:
        try:
            signature = infer_signature(example, predict(example))
        except Exception as exc:  # noqa: BLE001 - the user's model: any failure only costs the outputs
            warnings.warn(f"the model's output on its input example gave no output schema: {exc}", stacklevel=3)
    return signature


def python_version() -> str:
    import platform

    return platform.python_version()
