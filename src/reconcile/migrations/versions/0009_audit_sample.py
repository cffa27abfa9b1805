"""Review items carry how they were sampled: ``audit`` names the random audit sample an
item belongs to (``link``: an automatic link, ``near``: a close non-link; NULL: the
uncertain band or a guard, reviewed whenever the pipeline meets them) and
``inclusionProbability`` the chance it had to be drawn, so decided items estimate the
live precision of automatic links and the missed matches near the lower threshold, and
retraining weights every label by the inverse of that chance (issue 12).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pending_merge", sa.Column("audit", sa.String(8)))
    op.add_column("pending_merge", sa.Column("inclusionProbability", sa.Float()))
    op.create_index("ix_pending_audit_status", "pending_merge", ["audit", "status"])


def downgrade() -> None:
    op.drop_index("ix_pending_audit_status", table_name="pending_merge")
    op.drop_column("pending_merge", "inclusionProbability")
    op.drop_column("pending_merge", "audit")
