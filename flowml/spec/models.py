"""Pydantic models of pipeline.yaml (format v1).

The models are the single source of truth for the format: loading validates against
them and ``flowml schema`` writes their JSON Schema to ``schemas/pipeline.schema.json``.
Unions a user can get wrong (``run``, ``cache``, ``timeout``) are checked by small
validators so that a mistake reads as one sentence, not as one error per union member.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from flowml.spec.units import parse_size

STEP_NAME = r"^[A-Za-z_][A-Za-z0-9_-]*$"
_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m(?!s))?\s*(?:(\d+(?:\.\d+)?)s)?\s*(?:(\d+)ms)?\s*$")

Scalar = Union[bool, int, float, str]
Value = Union[Scalar, list[Scalar]]
Name = Annotated[str, StringConstraints(pattern=STEP_NAME)]


def _is_scalar(v: Any) -> bool:
    return isinstance(v, (bool, int, float, str))


def _check_value(v: Any) -> Any:
    if _is_scalar(v) or (isinstance(v, list) and all(_is_scalar(x) for x in v)):
        return v
    raise ValueError(f"expected a string, number, boolean or a list of them, got {_show(v)}")


def _check_run(v: Any) -> Any:
    if isinstance(v, str) and v.strip():
        return v
    if isinstance(v, list) and v and all(isinstance(x, (str, int, float)) and not isinstance(x, bool) for x in v):
        return [str(x) for x in v]
    raise ValueError(f"expected a shell command string or a non-empty list of arguments, got {_show(v)}")


def _check_cache(v: Any) -> Any:
    if isinstance(v, bool) or isinstance(v, dict):
        return v
    raise ValueError(f"expected false, true or {{version: N}}, got {_show(v)}")


def parse_duration(v: Any) -> float:
    """Seconds from ``90``, ``"45s"``, ``"10m"``, ``"1h30m"`` or ``"500ms"``."""
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
        return float(v)
    if isinstance(v, str):
        m = _DURATION.match(v)
        if m and any(m.groups()):
            h, mi, s, ms = (float(g) if g else 0.0 for g in m.groups())
            total = h * 3600 + mi * 60 + s + ms / 1000
            if total > 0:
                return total
    raise ValueError(f"expected a positive duration such as 30s, 10m, 1h30m or a number of seconds, got {_show(v)}")


def _positive_number(v: Any) -> Any:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < float("inf"):
        return v
    raise ValueError(f"expected a positive number, got {_show(v)}")


def _count(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return v
    raise ValueError(f"expected a whole number, 0 or more, got {_show(v)}")


def _show(v: Any) -> str:
    return "a mapping" if isinstance(v, dict) else "a list" if isinstance(v, list) else repr(v)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _check_python_version(v: Any) -> Any:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        raise ValueError(f"expected a quoted version such as \"3.11\" (unquoted, YAML reads it as the number {v!r})")
    return v


class PythonEnv(_Model):
    """A virtual environment made by uv from a requirements file (flowml.environments.python)."""

    requirements: str | None = Field(None, description="requirements file, relative to the pipeline")
    version: Annotated[str | None, BeforeValidator(_check_python_version)] = Field(
        None, description="Python version, e.g. '3.11' [default: the Python running flowml]")


class CondaEnv(_Model):
    """A conda environment from an environment file and optional conda-lock file."""

    file: str
    lock: str | None = None


def _gpus(v: Any) -> Any:
    if v == "all" or (isinstance(v, int) and not isinstance(v, bool) and v >= 0):
        return v
    raise ValueError(f"expected 'all' or a whole number of GPUs, got {_show(v)}")


class DockerEnv(_Model):
    """A container image, by name or built from a folder (the flowml-docker plugin)."""

    image: str | None = Field(None, description="an image the engine has (nothing is pulled); with build, "
                                                "also the tag of the built image")
    build: str | None = Field(None, description="folder with a Dockerfile, relative to the pipeline; built once "
                                                "per digest of its content")
    gpus: Annotated[Union[int, Literal["all"], None], BeforeValidator(_gpus)] = Field(
        None, description="'all' or a number: GPUs for steps that declare none in resources (not reserved)")

    @model_validator(mode="after")
    def _image_or_build(self) -> "DockerEnv":
        if not (self.image or self.build):
            raise ValueError("expected 'image' or 'build' (or both)")
        return self


class Environment(_Model):
    """Where a step runs: exactly one of ``python``, ``conda`` or ``docker``."""

    python: PythonEnv | None = None
    conda: CondaEnv | None = None
    docker: DockerEnv | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "Environment":
        kinds = [k for k in ("python", "conda", "docker") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("expected exactly one of python, conda or docker")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("python", "conda", "docker") if getattr(self, k) is not None)


class CacheSpec(_Model):
    """Cache settings of a step; bump ``version`` to invalidate its entries by hand."""

    version: int = 0


class RegisterSpec(_Model):
    """Register a model directory (an output of an earlier step) as a version of ``name``."""

    model: str = Field(description="the model directory, e.g. models/best/")
    name: str = Field(description="the registered model")
    alias: str | None = Field(None, description="point this alias at the version, e.g. candidate")


class DeploySpec(_Model):
    """Serve a model as a named deployment; reruns when the version the URI names changes."""

    model: str = Field(description="models:/NAME@ALIAS, models:/NAME/VERSION, or a model directory")
    target: str = Field("local", description="local, docker, or a plugin's target")
    port: int | None = Field(None, ge=1, le=65535, description="default: the deployment's port, else a free one")
    name: str | None = Field(None, description="the deployment's name; default: the registered model's name, "
                                               "else the step's")


class Resources(_Model):
    """What one process of a step needs; the scheduler starts it only when that much is free.
    Not part of the cache key: resources change how fast a step runs, not what it writes."""

    cpus: Annotated[Union[float, None], BeforeValidator(_positive_number)] = Field(
        None, description="CPUs to reserve, e.g. 2 or 0.5; default 1")
    memory: Annotated[Union[int, str, None], BeforeValidator(parse_size)] = Field(
        None, description="memory to reserve: bytes, or 512M, 4G (powers of 1000), 4Gi (powers of 1024); "
                          "default none")
    gpus: Annotated[Union[int, None], BeforeValidator(_count)] = Field(
        None, description="GPUs to hand the step (as CUDA_VISIBLE_DEVICES); default 0")


class ProjectSpec(_Model):
    """Another project (a folder or git repository with an MLproject file) whose entry point
    runs as this step, in its own environment (flowml.projects.chain)."""

    uri: str = Field(description="a folder (relative to the pipeline), or a git URI (file://, https://, ssh://), "
                                 "optionally followed by #subdir")
    version: str | None = Field(None, description="for a git repository: the branch, tag or commit "
                                                  "[default: its default branch]; resolved to a commit on every run")
    entry_point: str = Field("main", description="the MLproject's entry point, or a .py or .sh file of the project")
    parameters: dict[str, Scalar] = Field(
        default_factory=dict, description="the entry point's parameters, typed as the project declares them; a "
                                          "value naming one of the step's inputs or outputs is passed as that "
                                          "path in this pipeline's folder")


class Step(_Model):
    """One step: a command with its inputs and outputs, or a register/deploy/project action."""

    description: str | None = None
    run: Annotated[Union[str, list[str], None], BeforeValidator(_check_run)] = Field(
        None, description="shell command string, or an argv list run without a shell"
    )
    project: ProjectSpec | None = None
    # ``register`` would shadow BaseModel.register (from ABCMeta), hence the alias.
    register_: RegisterSpec | None = Field(None, alias="register")
    deploy: DeploySpec | None = None
    inputs: list[str] = Field(default_factory=list, description="files and folders the step reads")
    outputs: list[str] = Field(default_factory=list, description="files and folders (ending in /) the step writes")
    needs: list[Name] = Field(default_factory=list, description="steps to run first, without a data edge")
    matrix: dict[Name, list[Annotated[Value, BeforeValidator(_check_value)]]] | None = Field(
        None, description="fan out into one node per combination"
    )
    env: str | None = Field(None, description="name of an environment; default: the interpreter running flowml")
    env_vars: dict[str, Annotated[Scalar, BeforeValidator(_check_value)]] = Field(
        default_factory=dict, description="environment variables for the step (part of its cache key)"
    )
    resources: Resources | None = Field(None, description="CPUs, memory and GPUs the step needs while it runs")
    retries: int = Field(0, ge=0, le=100)
    timeout: Annotated[Union[float, str, None], BeforeValidator(parse_duration)] = Field(
        None, description="e.g. 30s, 10m, 1h30m"
    )
    cache: Annotated[Union[CacheSpec, bool], BeforeValidator(_check_cache)] = True
    metrics: str | None = Field(None, description="JSON file of metrics the step writes")
    when: str | None = Field(None, description="condition, e.g. ${steps.evaluate.metrics.rmse} < 0.8")

    @model_validator(mode="after")
    def _one_action(self) -> "Step":
        actions = [k for k in ("run", "project", "register_", "deploy") if getattr(self, k) is not None]
        if len(actions) != 1:
            found = ", ".join(a.rstrip("_") for a in actions) if actions else "none"
            raise ValueError(f"expected exactly one of run, project, register or deploy (found {found})")
        return self

    @property
    def cache_version(self) -> int | None:
        """None when caching is off, else the version knob."""
        if self.cache is False:
            return None
        return self.cache.version if isinstance(self.cache, CacheSpec) else 0


class Pipeline(_Model):
    """A pipeline.yaml document."""

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")]
    params: dict[Name, Annotated[Value, BeforeValidator(_check_value)]] = Field(default_factory=dict)
    environments: dict[Name, Environment] = Field(default_factory=dict)
    steps: dict[Name, Step] = Field(min_length=1)
