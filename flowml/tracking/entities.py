"""Tracking records shaped like MLflow's entities, so MLflow users and the REST API need no
translation: ``run.info.run_id``, ``run.data.metrics["rmse"]``, ``experiment.tags`` ...

Plain dataclasses: building thousands of them for a search must cost next to nothing.
``to_dict`` gives MLflow's JSON shape (lists of ``{"key", "value"}``), used by ``--json``
output and the REST API.
"""

from __future__ import annotations

import gc
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


DEFAULT_EXPERIMENT_ID = "0"  # the experiment of runs that name none, as in MLflow
DEFAULT_EXPERIMENT_NAME = "Default"


@contextmanager
def collector_paused():
    """Pause Python's cyclic garbage collector while tens of thousands of records are built (a
    metric history): its full passes over the growing heap would cost more than the query."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def json_number(value: float) -> float | str:
    """A float as MLflow's JSON writes it: NaN and the infinities as strings, which strict JSON
    parsers (and MLflow's protobuf parser) accept, unlike the bare ``NaN`` of Python's json."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def now_ms() -> int:
    """Times in tracking records are integer milliseconds since the epoch, as in MLflow."""
    return int(time.time() * 1000)


class RunStatus:
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    ALL = (RUNNING, SCHEDULED, FINISHED, FAILED, KILLED)
    TERMINAL = (FINISHED, FAILED, KILLED)


class LifecycleStage:
    ACTIVE = "active"
    DELETED = "deleted"


class ViewType:
    """Which lifecycle stages a search returns (MLflow's names)."""

    ACTIVE_ONLY = "ACTIVE_ONLY"
    DELETED_ONLY = "DELETED_ONLY"
    ALL = "ALL"

    @staticmethod
    def stages(view_type: str) -> tuple[str, ...]:
        return {"ACTIVE_ONLY": (LifecycleStage.ACTIVE,), "DELETED_ONLY": (LifecycleStage.DELETED,),
                "ALL": (LifecycleStage.ACTIVE, LifecycleStage.DELETED)}[view_type]


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ is 2x slower, felt in 20,000-point histories
class Metric:
    key: str
    value: float
    timestamp: int  # ms since the epoch
    step: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": json_number(self.value), "timestamp": self.timestamp, "step": self.step}


@dataclass(frozen=True, slots=True)
class Param:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class RunTag:
    key: str
    value: str


@dataclass(slots=True)
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    user_id: str
    status: str
    start_time: int
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str

    @property
    def run_uuid(self) -> str:
        """MLflow's older name for ``run_id``."""
        return self.run_id

    def to_dict(self) -> dict[str, Any]:
        out = {"run_id": self.run_id, "run_uuid": self.run_id, "run_name": self.run_name,
               "experiment_id": self.experiment_id, "user_id": self.user_id, "status": self.status,
               "start_time": self.start_time, "artifact_uri": self.artifact_uri,
               "lifecycle_stage": self.lifecycle_stage}
        if self.end_time is not None:
            out["end_time"] = self.end_time
        return out


@dataclass(slots=True)
class RunData:
    metrics: dict[str, float] = field(default_factory=dict)  # latest value of each
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    latest: dict[str, Metric] = field(default_factory=dict)  # the latest Metric of each key

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": [m.to_dict() for m in self.latest.values()],
                "params": [{"key": k, "value": v} for k, v in self.params.items()],
                "tags": [{"key": k, "value": v} for k, v in self.tags.items()]}


@dataclass(frozen=True, slots=True)
class Dataset:
    """A dataset a run read, as MLflow's ``log_input`` describes it."""

    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None = None
    profile: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "digest": self.digest, "source_type": self.source_type, "source": self.source}
        out.update({k: v for k, v in (("schema", self.schema), ("profile", self.profile)) if v})
        return out


@dataclass(frozen=True, slots=True)
class DatasetInput:
    dataset: Dataset
    tags: dict[str, str] = field(default_factory=dict)  # e.g. mlflow.data.context: training

    def to_dict(self) -> dict[str, Any]:
        return {"tags": [{"key": k, "value": v} for k, v in self.tags.items()], "dataset": self.dataset.to_dict()}


@dataclass(frozen=True, slots=True)
class ModelOutput:
    """A logged model a run made, at a training step (MLflow 3's ``log_outputs``)."""

    model_id: str
    step: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "step": self.step}


@dataclass(slots=True)
class Run:
    info: RunInfo
    data: RunData
    inputs: list[DatasetInput] = field(default_factory=list)
    model_inputs: list[str] = field(default_factory=list)  # ids of logged models the run read
    model_outputs: list[ModelOutput] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = {"info": self.info.to_dict(), "data": self.data.to_dict()}
        inputs: dict[str, Any] = {}
        if self.inputs:
            inputs["dataset_inputs"] = [i.to_dict() for i in self.inputs]
        if self.model_inputs:
            inputs["model_inputs"] = [{"model_id": m} for m in self.model_inputs]
        if inputs:
            out["inputs"] = inputs
        if self.model_outputs:
            out["outputs"] = {"model_outputs": [m.to_dict() for m in self.model_outputs]}
        return out


@dataclass(slots=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str
    creation_time: int
    last_update_time: int
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"experiment_id": self.experiment_id, "name": self.name,
                "artifact_location": self.artifact_location, "lifecycle_stage": self.lifecycle_stage,
                "creation_time": self.creation_time, "last_update_time": self.last_update_time,
                "tags": [{"key": k, "value": v} for k, v in self.tags.items()]}


@dataclass(frozen=True, slots=True)
class CacheRecord:
    """A cache entry as the store keeps it: the key, and JSON text the cache layer interprets."""

    key: str
    pipeline: str
    node: str
    manifest: str
    outputs: str
    metrics: str | None
    duration_s: float | None
    run_id: str | None


class LoggedModelStatus:
    PENDING = "PENDING"
    READY = "READY"
    FAILED = "FAILED"
    # MLflow's protobuf enum names, as they travel in JSON
    WIRE = {PENDING: "LOGGED_MODEL_PENDING", READY: "LOGGED_MODEL_READY", FAILED: "LOGGED_MODEL_UPLOAD_FAILED"}

    @classmethod
    def parse(cls, value: object) -> str | None:
        """A status given as ``READY``, ``LOGGED_MODEL_READY`` or the enum's number; None if unknown."""
        numbers = {1: cls.PENDING, 2: cls.READY, 3: cls.FAILED}
        if isinstance(value, int) and not isinstance(value, bool):
            return numbers.get(value)
        by_wire = {wire: status for status, wire in cls.WIRE.items()}
        return by_wire.get(value) or (value if value in cls.WIRE else None)


@dataclass(slots=True)
class LoggedModel:
    """MLflow 3's logged model: files under ``artifact_location`` and their metadata."""

    model_id: str
    experiment_id: str
    name: str
    artifact_location: str
    creation_timestamp: int
    last_updated_timestamp: int
    status: str
    status_message: str | None = None
    model_type: str | None = None
    source_run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        info = {"model_id": self.model_id, "experiment_id": self.experiment_id, "name": self.name,
                "artifact_uri": self.artifact_location, "creation_timestamp_ms": self.creation_timestamp,
                "last_updated_timestamp_ms": self.last_updated_timestamp,
                "status": LoggedModelStatus.WIRE[self.status],
                "tags": [{"key": k, "value": v} for k, v in self.tags.items()]}
        for key, value in (("status_message", self.status_message), ("model_type", self.model_type),
                           ("source_run_id", self.source_run_id)):
            if value:
                info[key] = value
        return {"info": info, "data": {"params": [{"key": k, "value": v} for k, v in self.params.items()],
                                       "metrics": []}}
