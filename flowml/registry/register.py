"""Registering a model directory: ``flowml registry register DIR``, which is also what a
pipeline's ``register:`` step runs.

A version never points at the workspace: the directory is first copied into the tracking
store's immutable artifacts, so that the version keeps serving what was registered however
the folder changes later, and so that a server's clients all see the same files. Outside a
pipeline it becomes a logged model with no run (in the experiment ``FLOWML_EXPERIMENT_NAME``
or ``FLOWML_EXPERIMENT_ID`` names, else the default one), registered as ``models:/<model_id>``.
Inside a pipeline (``FLOWML_RUN_ID`` set) it is copied into the step's run artifacts, and the
version records its lineage: the step, its run, the pipeline's run, the
step's cache key, and the digests of the inputs of the step that produced the directory,
found through the cache index entry of that step's run (a sibling under the pipeline run).
Registration is idempotent by the directory's content digest (the registry's rule):
registering identical content again returns the existing version.
"""

from __future__ import annotations

import os

from flowml.errors import Problem, SpecError

MODEL_ARTIFACT = "model"


def register_directory(model_dir: str, name: str, alias: str | None = None, tracking_uri: str | None = None):
    """Register the model directory ``model_dir`` as a version of ``name``; returns the version.

    Raises:
        SpecError: when ``model_dir`` holds no model.
        TrackingError: when the registry refuses the name or alias.
    """
    from flowml.registry import RegistryClient
    from flowml.registry.client import directory_digest

    path = os.path.abspath(model_dir)
    if not os.path.isfile(os.path.join(path, "MLmodel")):
        raise SpecError(Problem(f"{model_dir} is not a model directory (it has no MLmodel file)",
                                "command line", field="MODEL_DIR"))
    from flowml.tracking.client import FlowmlClient

    registry = RegistryClient(tracking_uri)
    client = FlowmlClient(registry.tracking_uri)
    digest = directory_digest(path)
    run_id = os.environ.get("FLOWML_RUN_ID")
    if not run_id:
        return _register_as_logged_model(client, registry, path, name, digest, alias)
    lineage, producer = step_lineage(client, run_id, model_dir)
    client.log_artifacts(run_id, path, MODEL_ARTIFACT)
    source = client.get_run(run_id).info.artifact_uri.rstrip("/") + "/" + MODEL_ARTIFACT
    tags = {"flowml.model_step": producer.get("step", ""), "flowml.model_run_id": producer.get("run_id", "")}
    return registry.register(source, name, run_id=run_id, tags={k: v for k, v in tags.items() if v},
                             lineage={**lineage, "content_digest": digest}, content_digest=digest, alias=alias)


def _register_as_logged_model(client, registry, path: str, name: str, digest: str, alias: str | None):
    """Upload ``path`` as a new logged model with no run and register ``models:/<model_id>``.
    When the registry answers with an older version of the same content, the copy just made
    is not needed and is deleted again."""
    from flowml.tracking.entities import LoggedModelStatus

    logged = client.create_logged_model(_experiment_id(client), name)
    try:
        client.log_model_artifacts(logged.model_id, path)
    except BaseException:
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    try:
        version = registry.register(f"models:/{logged.model_id}", name, model_id=logged.model_id,
                                    content_digest=digest, alias=alias)
    except BaseException:
        client.delete_logged_model(logged.model_id)
        raise
    if version.model_id != logged.model_id:
        client.delete_logged_model(logged.model_id)
    return version


def _experiment_id(client) -> str:
    """The experiment a logged model made outside any run goes to, as ``log_model`` picks it:
    ``FLOWML_EXPERIMENT_NAME`` (created if new), ``FLOWML_EXPERIMENT_ID``, else the default."""
    from flowml.tracking.entities import DEFAULT_EXPERIMENT_ID

    named = os.environ.get("FLOWML_EXPERIMENT_NAME")
    if named:
        found = client.get_experiment_by_name(named)
        return found.experiment_id if found is not None else client.create_experiment(named)
    return os.environ.get("FLOWML_EXPERIMENT_ID") or DEFAULT_EXPERIMENT_ID


def step_lineage(client, run_id: str, model_dir: str) -> tuple[dict, dict]:
    """The lineage of a version registered by the step run ``run_id``, and the step that
    produced ``model_dir`` (``{"step": ..., "run_id": ...}``, empty when none is found)."""
    run = client.get_run(run_id)
    tags = run.data.tags
    parent = tags.get("mlflow.parentRunId")
    lineage = {"step": tags.get("flowml.node") or tags.get("flowml.step"), "run_id": run_id,
               "pipeline_run_id": parent, "cache_key": os.environ.get("FLOWML_CACHE_KEY")}
    producer = _producer(client, parent, os.path.normpath(model_dir)) if parent else None
    if producer is None:
        return {k: v for k, v in lineage.items() if v}, {}
    sibling, entry = producer
    lineage["input_digests"] = {p: d for p, d in entry.manifest.get("inputs", {}).items() if d}
    made_by = sibling.data.tags.get("flowml.cache_source_run") or sibling.info.run_id
    return {k: v for k, v in lineage.items() if v}, {"step": sibling.data.tags.get("flowml.node"), "run_id": made_by}


def _producer(client, parent_id: str, model_dir: str):
    """(run, cache entry) of the step under ``parent_id`` whose outputs hold ``model_dir``."""
    from flowml.cache.index import CacheIndex
    from flowml.spec.node import is_within

    index = CacheIndex(client.tracking_uri, os.getcwd())
    for sibling in client.child_runs(parent_id):
        key = sibling.data.tags.get("flowml.cache_key")
        entry = index.get(key) if key else None
        if entry is not None and any(is_within(model_dir, out) for out in entry.outputs):
            return sibling, entry
    return None

