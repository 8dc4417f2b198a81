"""The first tracking schema: experiments, runs, params, tags, metrics, latest metrics and the
cache index.

A project store written by flowml before tracking existed holds a ``cache_entries`` table
(and workspace tables, which now live in ``.flowml/state.db``): its entries are carried over,
so upgrading flowml loses no cache hits.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

LEGACY_TABLES = ("node_state", "stat_memo", "code_imports")


def upgrade() -> None:
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    if "cache_entries" in existing:
        op.rename_table("cache_entries", "legacy_cache_entries")
    op.create_table(
        "experiments",
        sa.Column("experiment_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(256), nullable=False, unique=True),
        sa.Column("artifact_location", sa.Text, nullable=False),
        sa.Column("lifecycle_stage", sa.String(32), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "experiment_tags",
        sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.experiment_id"), nullable=False),
        sa.Column("run_name", sa.String(250), nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_time", sa.BigInteger, nullable=False),
        sa.Column("end_time", sa.BigInteger),
        sa.Column("artifact_uri", sa.Text, nullable=False),
        sa.Column("lifecycle_stage", sa.String(32), nullable=False),
        sa.Column("deleted_time", sa.BigInteger),
        sa.Column("host", sa.String(256)),
        sa.Column("pid", sa.Integer),
        sa.Column("heartbeat_time", sa.BigInteger),
    )
    op.create_index("ix_runs_experiment_start", "runs", ["experiment_id", "lifecycle_stage", "start_time"])
    op.create_index("ix_runs_status", "runs", ["status"])
    for name in ("params", "tags"):
        op.create_table(
            name,
            sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
            sa.Column("key", sa.String(250), primary_key=True),
            sa.Column("value", sa.Text, nullable=False),
        )
        op.create_index(f"ix_{name}_key", name, ["key"])
    op.create_table(
        "metrics",
        # BIGINT on PostgreSQL (billions of points); SQLite's rowid alias must be INTEGER
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Float(precision=53)),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_metrics_history", "metrics", ["run_id", "key", "step", "timestamp"])
    op.create_table(
        "latest_metrics",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Float(precision=53)),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "value"])
    op.create_table(
        "cache_entries",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("pipeline", sa.Text, nullable=False),
        sa.Column("node", sa.Text, nullable=False),
        sa.Column("manifest", sa.Text, nullable=False),
        sa.Column("outputs", sa.Text, nullable=False),
        sa.Column("metrics", sa.Text),
        sa.Column("duration_s", sa.Float),
        sa.Column("run_id", sa.String(32)),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    if "cache_entries" in existing:
        op.execute("INSERT INTO cache_entries (key, pipeline, node, manifest, outputs, metrics, duration_s, created_at) "
                   "SELECT key, pipeline, node, manifest, outputs, metrics, duration_s, "
                   "CAST(ROUND(created_at * 1000) AS INTEGER) FROM legacy_cache_entries")
        op.drop_table("legacy_cache_entries")
    for name in LEGACY_TABLES:
        if name in existing:
            op.drop_table(name)


def downgrade() -> None:
    for name in ("cache_entries", "latest_metrics", "metrics", "tags", "params", "runs", "experiment_tags",
                 "experiments"):
        op.drop_table(name)
