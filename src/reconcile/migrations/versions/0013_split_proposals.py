"""Split proposals: a batch re-resolution (``reconcile resolve --apply``) that sees a live
group as two people asks a reviewer to split it along a named bridge (issue 9). Kept
beside ``pending_merge`` rather than in it: a split concerns one group, not a pair.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "split_proposal",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("primaryId", sa.Integer(), nullable=False),
        sa.Column("contactId", sa.Integer(), nullable=False),
        sa.Column("bridgeContactId", sa.Integer(), nullable=False),
        sa.Column("keptContactIds", sa.JSON(), nullable=False),
        sa.Column("detachedContactIds", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float()),
        sa.Column("matchWeight", sa.Float()),
        sa.Column("modelVersion", sa.String(64)),
        sa.Column("evidence", sa.JSON()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("openedAt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decidedAt", sa.DateTime(timezone=True)),
        sa.Column("decidedBy", sa.String(64)),
        sa.Column("note", sa.Text()),
        sa.Column("detachmentId", sa.Integer()),
        sa.CheckConstraint(
            "status IN ('pending', 'confirmed', 'rejected', 'superseded')", name="ck_split_status"
        ),
        sa.ForeignKeyConstraint(["primaryId"], ["Contact.id"]),
        sa.ForeignKeyConstraint(["contactId"], ["Contact.id"]),
        sa.ForeignKeyConstraint(["bridgeContactId"], ["Contact.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("contactId", "bridgeContactId", name="uq_split_bridge"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_split_status_opened", "split_proposal", ["status", "openedAt"])


def downgrade() -> None:
    op.drop_index("ix_split_status_opened", table_name="split_proposal")
    op.drop_table("split_proposal")
