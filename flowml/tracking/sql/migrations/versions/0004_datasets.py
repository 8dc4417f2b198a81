"""Datasets a run read (MLflow's ``log_input``): datasets, inputs and their tags.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("dataset_uuid", sa.String(36), primary_key=True),
        sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.experiment_id"), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("digest", sa.String(36), nullable=False),
        sa.Column("source_type", sa.String(36), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("schema", sa.Text),
        sa.Column("profile", sa.Text),
        sa.UniqueConstraint("experiment_id", "name", "digest", name="uq_datasets_experiment_name_digest"),
    )
    op.create_table(
        "inputs",
        sa.Column("input_uuid", sa.String(36), primary_key=True),
        sa.Column("dataset_uuid", sa.String(36), sa.ForeignKey("datasets.dataset_uuid", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
        sa.UniqueConstraint("dataset_uuid", "run_id", name="uq_inputs_dataset_run"),
    )
    op.create_index("ix_inputs_run", "inputs", ["run_id"])
    op.create_table(
        "input_tags",
        sa.Column("input_uuid", sa.String(36), sa.ForeignKey("inputs.input_uuid", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for name in ("input_tags", "inputs", "datasets"):
        op.drop_table(name)
