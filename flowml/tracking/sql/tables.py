"""The tracking database's tables, as SQLAlchemy Core ``Table`` objects.

Core rather than SQLModel classes: the store's hot paths are bulk statements (a
``log_batch`` of thousands of metrics, a search over 10,000 runs), where ORM objects only
cost time, and SQLModel's import alone adds 0.15 s to every command that tracks. Alembic
migrations in ``migrations/versions`` create exactly these tables; a test compares them.

Times are integers in milliseconds since the epoch, as in MLflow. A metric's NaN is stored
as NULL (SQLite cannot store NaN), and read back as NaN.
"""

from __future__ import annotations

from sqlalchemy import (BigInteger, Column, Float, ForeignKey, ForeignKeyConstraint, Index, Integer, MetaData,
                        String, Table, Text, UniqueConstraint)

metadata = MetaData()

experiments = Table(
    "experiments", metadata,
    Column("experiment_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("artifact_location", Text, nullable=False),
    Column("lifecycle_stage", String(32), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
)

experiment_tags = Table(
    "experiment_tags", metadata,
    Column("experiment_id", Integer, ForeignKey("experiments.experiment_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs", metadata,
    Column("run_id", String(32), primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.experiment_id"), nullable=False),
    Column("run_name", String(250), nullable=False),
    Column("user_id", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger),
    Column("artifact_uri", Text, nullable=False),
    Column("lifecycle_stage", String(32), nullable=False),
    Column("deleted_time", BigInteger),
    # Who is writing it, for marking runs left RUNNING by a crash as KILLED (not MLflow fields).
    Column("host", String(256)),
    Column("pid", Integer),
    Column("heartbeat_time", BigInteger),
    Index("ix_runs_experiment_start", "experiment_id", "lifecycle_stage", "start_time"),
    Index("ix_runs_status", "status"),
)

params = Table(
    "params", metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_params_key", "key"),
)

tags = Table(
    "tags", metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_tags_key", "key"),
)

metrics = Table(
    "metrics", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Float(precision=53)),
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False),
    Index("ix_metrics_history", "run_id", "key", "step", "timestamp"),
)

latest_metrics = Table(
    "latest_metrics", metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Float(precision=53)),
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

cache_entries = Table(
    "cache_entries", metadata,
    Column("key", String(64), primary_key=True),
    Column("pipeline", Text, nullable=False),
    Column("node", Text, nullable=False),
    Column("manifest", Text, nullable=False),
    Column("outputs", Text, nullable=False),
    Column("metrics", Text),
    Column("duration_s", Float),
    Column("run_id", String(32)),  # the step run that produced the outputs
    Column("created_at", BigInteger, nullable=False),
)

logged_models = Table(  # MLflow 3's logged models: a model's files and metadata, tied to the run that made it
    "logged_models", metadata,
    Column("model_id", String(64), primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.experiment_id"), nullable=False),
    Column("name", String(250), nullable=False),
    Column("artifact_location", Text, nullable=False),
    Column("creation_timestamp_ms", BigInteger, nullable=False),
    Column("last_updated_timestamp_ms", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_message", Text),
    Column("model_type", String(250)),
    Column("source_run_id", String(32)),
    Column("lifecycle_stage", String(32), nullable=False),
    Index("ix_logged_models_experiment", "experiment_id", "creation_timestamp_ms"),
)

logged_model_tags = Table(
    "logged_model_tags", metadata,
    Column("model_id", String(64), ForeignKey("logged_models.model_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

logged_model_params = Table(
    "logged_model_params", metadata,
    Column("model_id", String(64), ForeignKey("logged_models.model_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

access_tokens = Table(  # the server's bearer tokens (--auth); only a hash of each secret is kept
    "access_tokens", metadata,
    Column("token_id", String(32), primary_key=True),
    Column("name", String(250), nullable=False),
    Column("role", String(16), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
)

datasets = Table(  # what runs read (MLflow's log_input): one row per distinct dataset of an experiment
    "datasets", metadata,
    Column("dataset_uuid", String(36), primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.experiment_id"), nullable=False),
    Column("name", String(500), nullable=False),
    Column("digest", String(36), nullable=False),
    Column("source_type", String(36), nullable=False),
    Column("source", Text, nullable=False),
    Column("schema", Text),
    Column("profile", Text),
    UniqueConstraint("experiment_id", "name", "digest", name="uq_datasets_experiment_name_digest"),
)

inputs = Table(  # a dataset read by a run
    "inputs", metadata,
    Column("input_uuid", String(36), primary_key=True),
    Column("dataset_uuid", String(36), ForeignKey("datasets.dataset_uuid", ondelete="CASCADE"), nullable=False),
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
    UniqueConstraint("dataset_uuid", "run_id", name="uq_inputs_dataset_run"),
    Index("ix_inputs_run", "run_id"),
)

input_tags = Table(
    "input_tags", metadata,
    Column("input_uuid", String(36), ForeignKey("inputs.input_uuid", ondelete="CASCADE"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
)

run_models = Table(  # MLflow 3's links from a run to the logged models it read (input) or made (output)
    "run_models", metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("model_id", String(64), ForeignKey("logged_models.model_id", ondelete="CASCADE"), primary_key=True),
    Column("direction", String(8), primary_key=True),  # input | output
    Column("step", BigInteger, nullable=False, default=0),  # outputs: the training step the model is from
)

# The model registry (flowml.registry.sql). Names cascade to versions, tags and aliases on
# PostgreSQL; the registry store also updates and deletes them itself, as SQLite runs
# without foreign-key enforcement.
registered_models = Table(
    "registered_models", metadata,
    Column("name", String(256), primary_key=True),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    Column("description", Text),
    Index("ix_registered_models_updated", "last_updated_time"),
)

registered_model_tags = Table(
    "registered_model_tags", metadata,
    Column("name", String(256), ForeignKey("registered_models.name", ondelete="CASCADE", onupdate="CASCADE"),
           primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

registered_model_aliases = Table(
    "registered_model_aliases", metadata,
    Column("name", String(256), ForeignKey("registered_models.name", ondelete="CASCADE", onupdate="CASCADE"),
           primary_key=True),
    Column("alias", String(255), primary_key=True),
    Column("version", Integer, nullable=False),
)

model_versions = Table(  # a deleted version keeps its row (stage Deleted_Internal): numbers are never reused
    "model_versions", metadata,
    Column("name", String(256), ForeignKey("registered_models.name", ondelete="CASCADE", onupdate="CASCADE"),
           primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    Column("description", Text),
    Column("user_id", String(256)),
    Column("current_stage", String(20), nullable=False),
    Column("source", Text, nullable=False),
    Column("storage_location", Text),  # where the files are, when source is a models:/ URI
    Column("run_id", String(32)),
    Column("run_link", Text),
    Column("status", String(20), nullable=False),
    Column("status_message", Text),
    Column("model_id", String(64)),
    # flowml's lineage: the step that made the model, its run, the pipeline run, its cache key,
    # its inputs' digests (JSON: path -> digest) and the model directory's content digest
    Column("lineage_step", Text),
    Column("lineage_run_id", String(32)),
    Column("lineage_pipeline_run_id", String(32)),
    Column("lineage_cache_key", String(64)),
    Column("lineage_input_digests", Text),
    Column("content_digest", String(64)),
    Index("ix_model_versions_run_id", "run_id"),
    Index("ix_model_versions_content", "name", "content_digest"),
    Index("ix_model_versions_updated", "last_updated_time"),
)

model_version_tags = Table(
    "model_version_tags", metadata,
    Column("name", String(256), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    ForeignKeyConstraint(["name", "version"], ["model_versions.name", "model_versions.version"],
                         ondelete="CASCADE", onupdate="CASCADE", name="fk_model_version_tags_version"),
)
