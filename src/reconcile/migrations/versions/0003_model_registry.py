"""Model registry: versions, their metrics and thresholds, which one is active.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_version",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("createdAt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metrics", sa.JSON),
        sa.Column("upperThreshold", sa.Float),
        sa.Column("lowerThreshold", sa.Float),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("activatedAt", sa.DateTime(timezone=True)),
        sa.Column("activatedBy", sa.String(64)),
        sa.Column("previousVersion", sa.String(64)),
    )


def downgrade() -> None:
    op.drop_table("model_version")
