"""Model URIs -> a local model directory.

- a path, or ``file:///path``: the directory itself (no copy unless ``dst`` is given);
- ``runs:/<run_id>/<path>``: a model under a run's artifacts, or, as MLflow 3 resolves it, the
  logged model that run produced under that name;
- ``models:/<model_id>``: a logged model (MLflow 3), from its ``artifact_location``;
- ``models:/<name>/<version>``, ``models:/<name>@<alias>``, ``models:/<name>/latest``: a
  registered version, resolved through :class:`flowml.registry.RegistryClient`, then its source;
- ``mlflow-artifacts:/...`` and a server's artifact-proxy URL: downloaded through the proxy.

Remote models are downloaded to ``dst`` (default: a new temporary folder); local ones are used
where they are, so that a serving worker's ``load_model`` copies nothing.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile

from flowml.errors import FlowmlError, TrackingError
from flowml.models.errors import ModelError
from flowml.models.mlmodel import MLMODEL_FILE

REMOTE_SCHEMES = ("mlflow-artifacts", "http", "https")


def download_model(model_uri: str, dst: str | None = None, tracking_uri: str | None = None) -> str:
    """The local directory of the model ``model_uri`` names (holding its MLmodel).

    Args:
        model_uri: see the module's documentation.
        dst: copy (or download) the model under this folder; by default a local model is used
            in place and a remote one goes to a new temporary folder.
        tracking_uri: the tracking store for ``runs:/`` and ``models:/`` (default: as FlowmlClient).

    Raises:
        ModelError: an unknown scheme, a malformed URI, or nothing there.
    """
    model_uri = os.fspath(model_uri)
    try:
        location = resolve_location(model_uri, tracking_uri)
        path = _fetch(location, dst, tracking_uri)
    except ModelError:
        raise
    except TrackingError as exc:
        raise ModelError(f"model '{model_uri}': {exc}") from None
    if not os.path.isfile(os.path.join(path, MLMODEL_FILE)):
        raise ModelError(f"model '{model_uri}': no {MLMODEL_FILE} in {location}")
    return path


def resolve_location(model_uri: str, tracking_uri: str | None = None) -> str:
    """Where the model's files are: a local path or an artifact URI."""
    scheme = model_uri.split(":", 1)[0].lower() if ":" in model_uri and not _is_windows_drive(model_uri) else ""
    if scheme == "runs":
        return _run_model(model_uri, tracking_uri)
    if scheme == "models":
        return _registered_or_logged(model_uri, tracking_uri)
    if scheme in ("", "file") or scheme in REMOTE_SCHEMES:
        return model_uri
    raise ModelError(f"model URI '{model_uri}': unknown scheme '{scheme}:' (use a path, file://, runs:/, "
                     "models:/ or mlflow-artifacts:/)")


def is_remote(location: str) -> bool:
    """Whether a location (as :func:`resolve_location` returns it) must be downloaded: an
    ``mlflow-artifacts:`` or HTTP(S) URI, not a path or ``file:`` URI used in place."""
    return ":" in location and location.split(":", 1)[0].lower() in REMOTE_SCHEMES


def _is_windows_drive(uri: str) -> bool:
    return len(uri) > 2 and uri[1] == ":" and uri[0].isalpha() and uri[2] in "\\/"


def _client(tracking_uri: str | None):
    from flowml.tracking.client import FlowmlClient

    return FlowmlClient(tracking_uri)


def _run_model(model_uri: str, tracking_uri: str | None) -> str:
    """``runs:/<run_id>/<path>``: the run's artifacts at ``path`` when they hold an MLmodel, else
    the logged model named ``path`` whose source run is ``run_id`` (MLflow 3's log_model)."""
    rest = model_uri[len("runs:"):].lstrip("/")
    run_id, _, path = rest.partition("/")
    path = path.strip("/")
    if not run_id or not path:
        raise ModelError(f"model URI '{model_uri}': expected runs:/<run_id>/<path>")
    client = _client(tracking_uri)
    run = client.get_run(run_id)
    repo = client.artifact_repository(run_id)
    if any(posixpath.basename(f.path) == MLMODEL_FILE for f in repo.list_artifacts(path)):
        return f"{run.info.artifact_uri.rstrip('/')}/{path}"
    name, _, inner = path.partition("/")
    token = None
    while True:  # newest first: the latest model the run logged under that name
        page = client.search_logged_models([run.info.experiment_id], 1000, token)
        for model in page:
            if model.source_run_id == run_id and model.name == name:
                return model.artifact_location.rstrip("/") + (f"/{inner}" if inner else "")
        token = page.token
        if token is None:
            break
    raise ModelError(f"model URI '{model_uri}': run {run_id} has no model at '{path}'")


def _registered_or_logged(model_uri: str, tracking_uri: str | None) -> str:
    body = model_uri[len("models:"):].lstrip("/")
    if not body:
        raise ModelError(f"model URI '{model_uri}': expected models:/<name>/<version>, models:/<name>@<alias> "
                         "or models:/<model_id>")
    if "/" not in body and "@" not in body:  # models:/<model_id>: a logged model
        return _client(tracking_uri).get_logged_model(body).artifact_location
    from flowml.registry import RegistryClient

    try:
        version = RegistryClient(tracking_uri=tracking_uri).resolve(model_uri)
    except FlowmlError as exc:
        if isinstance(exc, ModelError):
            raise
        raise ModelError(f"model URI '{model_uri}': {exc}") from None
    source = version.source  # MLflow 3 registers models:/<model_id>; older versions a runs:/ URI or a path
    if source.startswith(("models:/", "runs:/")) and source.rstrip("/") != model_uri.rstrip("/"):
        return resolve_location(source, tracking_uri)
    return source


def _fetch(location: str, dst: str | None, tracking_uri: str | None) -> str:
    """The model's files at ``location`` as a local directory (see :func:`download_model`)."""
    from flowml.artifacts import repository
    from flowml.artifacts.local import local_path

    if not is_remote(location):
        source = os.path.abspath(local_path(location))
        if not os.path.isdir(source):
            raise ModelError(f"no model at {location}: no such directory")
        if dst is None:
            return source
        target = os.path.join(dst, os.path.basename(source.rstrip(os.sep)))
        shutil.copytree(source, target, dirs_exist_ok=True)
        return target
    folder = dst or tempfile.mkdtemp(prefix="flowml-model-")
    return repository(location, _tracking_uri(tracking_uri)).download_artifacts("", folder)


def _tracking_uri(tracking_uri: str | None) -> str:
    """The tracking URI in effect, as FlowmlClient finds it (``set_tracking_uri``'s first), for
    ``mlflow-artifacts:/`` locations, which name a path on that server."""
    import sys

    from flowml.tracking.stores import resolve_uri

    return resolve_uri(tracking_uri or getattr(sys.modules.get("flowml.tracking.fluent"), "_uri", None))
