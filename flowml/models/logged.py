"""``log_model`` with MLflow 3's semantics: a model is a *logged model* of its own (an id,
``models:/<model_id>``, files under its ``artifact_location``), produced by the active run.

The steps, as MLflow 3's client takes them (so a flowml server and an MLflow server both see
the same thing): create the logged model (PENDING) in the active run's experiment with that run
as its source, save the model into a temporary folder with the ids in its MLmodel, upload the
folder as the logged model's artifacts (to a local folder, or through the server's artifact
proxy), finalize it READY (FAILED if anything went wrong, and the error is raised), record it as an
output of the run and in the run's ``mlflow.log-model.history`` tag (which MLflow's UI reads), and
register it when ``registered_model_name`` is given.

Without an active run the model is logged in the active experiment with no source run, as
MLflow does; no run is started.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable

from flowml.models.mlmodel import Model
from flowml.models.signature import ModelSignature

HISTORY_TAG = "mlflow.log-model.history"


@dataclass
class ModelInfo:
    """What ``log_model`` returns (MLflow's ``ModelInfo`` fields)."""

    model_uri: str
    model_id: str
    run_id: str | None
    artifact_path: str
    name: str
    signature: ModelSignature | None
    flavors: dict[str, dict]
    model_uuid: str
    utc_time_created: str
    saved_input_example_info: dict | None = None
    metadata: dict | None = None
    registered_model_version: int | None = None
    content_digest: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def log_model(save: Callable[..., Model], name: str | None, *, registered_model_name: str | None = None,
              params: dict[str, Any] | None = None, tags: dict[str, Any] | None = None,
              model_type: str | None = None, **save_kwargs: Any) -> ModelInfo:
    """Save a model with ``save(path, **save_kwargs)`` and log it (see the module's documentation).

    Raises:
        ModelError: the model cannot be saved or uploaded (the logged model is then FAILED).
    """
    from flowml.tracking import fluent
    from flowml.tracking.entities import LoggedModelStatus, ModelOutput

    name = name or "model"
    client = fluent.client()
    run = fluent.active_run()
    run_id = run.info.run_id if run else None
    experiment_id = run.info.experiment_id if run else fluent.active_experiment_id()
    logged = client.create_logged_model(experiment_id, name, run_id, tags, params, model_type)
    try:
        with tempfile.TemporaryDirectory(prefix="flowml-log-model-") as tmp:
            local = os.path.join(tmp, name.replace("/", "_"))
            save(local, **save_kwargs)
            model = Model.load(local)
            model.run_id, model.model_id, model.model_uuid = run_id, logged.model_id, logged.model_id
            model.artifact_path = logged.artifact_location
            model.save(local)
            digest = _digest(local) if registered_model_name else None
            client.log_model_artifacts(logged.model_id, local)
    except BaseException:
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    if run_id:
        client.log_outputs(run_id, [ModelOutput(logged.model_id)])
        _record_in_run(client, run_id, model, name)
    info = ModelInfo(f"models:/{logged.model_id}", logged.model_id, run_id, logged.artifact_location, name,
                     model.signature, model.flavors, model.model_uuid, model.utc_time_created,
                     model.saved_input_example_info, model.metadata, content_digest=digest,
                     tags={k: str(v) for k, v in (tags or {}).items()})
    if registered_model_name:
        info.registered_model_version = _register(client.tracking_uri, info, registered_model_name)
    return info


def _digest(path: str) -> str:
    from flowml.registry import directory_digest

    return directory_digest(path)


def _register(tracking_uri: str, info: ModelInfo, registered_model_name: str) -> int:
    from flowml.registry import RegistryClient

    version = RegistryClient(tracking_uri=tracking_uri).register(
        f"models:/{info.model_id}", registered_model_name, run_id=info.run_id, model_id=info.model_id,
        content_digest=info.content_digest)
    return int(version.version)


def _record_in_run(client, run_id: str, model: Model, name: str) -> None:
    """Append the model to the run's ``mlflow.log-model.history`` tag (MLflow's layout: run_id,
    artifact_path, utc_time_created, model_uuid, flavors). Read, then written: two processes
    logging models to one run at the same instant may lose one entry of this tag (never the
    logged models themselves), and past the tag's size limit the oldest entries go."""
    from flowml.tracking.validation import MAX_TAG_VALUE

    entry = {"run_id": run_id, "artifact_path": name, "utc_time_created": model.utc_time_created,
             "model_uuid": model.model_uuid, "model_id": model.model_id,
             "flavors": {k: {key: v for key, v in conf.items() if key != "config"} for k, conf in model.flavors.items()}}
    try:
        history = json.loads(client.get_run(run_id).data.tags.get(HISTORY_TAG) or "[]")
    except ValueError:
        history = []
    history.append(entry)
    text = json.dumps(history)
    while len(text) > MAX_TAG_VALUE and len(history) > 1:  # the tag's size is capped: keep the newest
        history.pop(0)
        text = json.dumps(history)
    client.set_tag(run_id, HISTORY_TAG, text)

