"""Pending merges, cannot-link pairs, link guards, labels and reviewers.

The tables as they were at this revision (a migration never imports the live schema,
which later revisions change).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


def _contact_fk(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.Integer, sa.ForeignKey("Contact.id"), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "pending_merge",
        _id(),
        _contact_fk("leftPrimaryId", nullable=False),
        _contact_fk("rightPrimaryId", nullable=False),
        _contact_fk("contactId"),
        _contact_fk("candidateId"),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("guard", sa.String(32)),
        sa.Column("score", sa.Float),
        sa.Column("matchWeight", sa.Float),
        sa.Column("modelVersion", sa.String(64)),
        sa.Column("evidence", sa.JSON),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("openedAt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decidedAt", sa.DateTime(timezone=True)),
        sa.Column("decidedBy", sa.String(64)),
        sa.Column("note", sa.Text),
        sa.CheckConstraint('"leftPrimaryId" < "rightPrimaryId"', name="ck_pending_order"),
        sa.CheckConstraint("status IN ('pending', 'confirmed', 'rejected', 'superseded')", name="ck_pending_status"),
        sa.UniqueConstraint("leftPrimaryId", "rightPrimaryId", name="uq_pending_pair"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_pending_status_opened", "pending_merge", ["status", "openedAt"])
    op.create_index("ix_pending_status_score", "pending_merge", ["status", "score"])

    op.create_table(
        "cannot_link",
        _id(),
        _contact_fk("leftContactId", nullable=False),
        _contact_fk("rightContactId", nullable=False),
        sa.Column("pendingMergeId", sa.Integer, sa.ForeignKey("pending_merge.id")),
        sa.Column("createdAt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("createdBy", sa.String(64)),
        sa.UniqueConstraint("leftContactId", "rightContactId", name="uq_cannot_link_pair"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_cannot_link_right", "cannot_link", ["rightContactId"])

    op.create_table(
        "link_guard",
        _id(),
        _contact_fk("contactId", nullable=False),
        sa.Column("field", sa.String(16), nullable=False),
        sa.Column("value", sa.String(320)),
        sa.Column("guard", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("pendingMergeId", sa.Integer, sa.ForeignKey("pending_merge.id")),
        sa.Column("createdAt", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_link_guard_value", "link_guard", ["field", "value"])
    op.create_index("ix_link_guard_contact", "link_guard", ["contactId"])

    op.create_table(
        "label",
        _id(),
        sa.Column("pendingMergeId", sa.Integer, sa.ForeignKey("pending_merge.id")),
        sa.Column("leftContactId", sa.Integer),
        sa.Column("rightContactId", sa.Integer),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("leftRecords", sa.JSON, nullable=False),
        sa.Column("rightRecords", sa.JSON, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("decidedBy", sa.String(64)),
        sa.Column("decidedAt", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("outcome IN ('match', 'non-match')", name="ck_label_outcome"),
        sqlite_autoincrement=True,
    )

    op.create_table(
        "reviewer",
        _id(),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("passwordHash", sa.String(256), nullable=False),
        sa.Column("apiTokenHash", sa.String(128), unique=True),
        sa.Column("isAdmin", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("createdAt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabledAt", sa.DateTime(timezone=True)),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    for table in ("reviewer", "label", "link_guard", "cannot_link", "pending_merge"):
        op.drop_table(table)
