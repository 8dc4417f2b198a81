"""The model registry: registered models, their tags and aliases, model versions (with
flowml's lineage columns) and their tags.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _name(**kw) -> sa.Column:
    """The registered model's name, as the key of a table that hangs off it."""
    return sa.Column("name", sa.String(256), sa.ForeignKey("registered_models.name", ondelete="CASCADE",
                                                           onupdate="CASCADE"), primary_key=True, **kw)


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_updated_time", sa.BigInteger, nullable=False),
        sa.Column("description", sa.Text),
    )
    op.create_index("ix_registered_models_updated", "registered_models", ["last_updated_time"])
    op.create_table(
        "registered_model_tags",
        _name(),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "registered_model_aliases",
        _name(),
        sa.Column("alias", sa.String(255), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "model_versions",
        _name(),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_updated_time", sa.BigInteger, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("user_id", sa.String(256)),
        sa.Column("current_stage", sa.String(20), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("storage_location", sa.Text),
        sa.Column("run_id", sa.String(32)),
        sa.Column("run_link", sa.Text),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_message", sa.Text),
        sa.Column("model_id", sa.String(64)),
        sa.Column("lineage_step", sa.Text),
        sa.Column("lineage_run_id", sa.String(32)),
        sa.Column("lineage_pipeline_run_id", sa.String(32)),
        sa.Column("lineage_cache_key", sa.String(64)),
        sa.Column("lineage_input_digests", sa.Text),
        sa.Column("content_digest", sa.String(64)),
    )
    op.create_index("ix_model_versions_run_id", "model_versions", ["run_id"])
    op.create_index("ix_model_versions_content", "model_versions", ["name", "content_digest"])
    op.create_index("ix_model_versions_updated", "model_versions", ["last_updated_time"])
    op.create_table(
        "model_version_tags",
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.ForeignKeyConstraint(["name", "version"], ["model_versions.name", "model_versions.version"],
                                ondelete="CASCADE", onupdate="CASCADE", name="fk_model_version_tags_version"),
    )


def downgrade() -> None:
    for name in ("model_version_tags", "model_versions", "registered_model_aliases", "registered_model_tags",
                 "registered_models"):
        op.drop_table(name)
