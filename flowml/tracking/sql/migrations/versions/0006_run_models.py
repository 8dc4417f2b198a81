"""Links from runs to the logged models they read and made (MLflow 3's model inputs and outputs).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_models",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("model_id", sa.String(64), sa.ForeignKey("logged_models.model_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("direction", sa.String(8), primary_key=True),
        sa.Column("step", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("run_models")
