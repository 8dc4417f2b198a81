"""Errors of the models layer: bad models, bad model URIs and bad model input.

All are user-facing (exit code 2 in the CLI): a model directory that cannot be read, a URI
that names nothing, an input that does not fit the model's signature.
"""

from __future__ import annotations

import warnings

from flowml.errors import FlowmlError


class ModelError(FlowmlError):
    """A model that cannot be saved, found or loaded as asked (exit code 2)."""

    exit_code = 2


class ModelInputError(ModelError):
    """Input (or params) that does not match the model's signature; the message names the
    column, tensor or param and the expected and found types. The scoring server answers it
    with HTTP 400 and MLflow's ``BAD_REQUEST``."""

    error_code = "BAD_REQUEST"


class UnsafeSerializationWarning(UserWarning):
    """A model stored with pickle or cloudpickle is saved or loaded: unpickling runs whatever
    code the file names, so such a model must never come from an untrusted source."""


def warn_unsafe(doing: str, safer: str, stacklevel: int = 3) -> None:
    """Warn that ``doing`` pickles or unpickles a model; ``safer`` says what avoids it. One
    wording for every flavor, so a user who filters the warning filters all of them."""
    warnings.warn(f"{doing}: pickle files run arbitrary code when loaded; never load one from an untrusted "
                  f"source ({safer})", UnsafeSerializationWarning, stacklevel=stacklevel + 1)
