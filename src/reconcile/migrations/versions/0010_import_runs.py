"""Bulk imports (``reconcile import``): one row per imported file, its committed position
and running totals, updated in the same transaction as each batch of events, so an
interrupted import resumes exactly where it stopped; the rows it rejected (line and
reason, no values); and the ``externalId`` each loaded row carried, with its contact.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_COUNTERS = ("loaded", "created", "linked", "probabilistic", "contacts", "pending", "rejected")


def upgrade() -> None:
    op.create_table(
        "import_run",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("toLoad", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in _COUNTERS),
        sa.Column("startedAt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updatedAt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finishedAt", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("fingerprint", name="uq_import_run_fingerprint"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "import_reject",
        sa.Column("runId", sa.Integer(), sa.ForeignKey("import_run.id"), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.PrimaryKeyConstraint("runId", "line"),
    )
    op.create_table(
        "import_ref",
        sa.Column("runId", sa.Integer(), sa.ForeignKey("import_run.id"), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("externalId", sa.String(128), nullable=False),
        sa.Column("contactId", sa.Integer(), sa.ForeignKey("Contact.id"), nullable=False),
        sa.PrimaryKeyConstraint("runId", "line"),
    )
    op.create_index("ix_import_ref_external", "import_ref", ["externalId"])
    op.create_index("ix_import_ref_contact", "import_ref", ["contactId"])


def downgrade() -> None:
    op.drop_index("ix_import_ref_contact", table_name="import_ref")
    op.drop_index("ix_import_ref_external", table_name="import_ref")
    op.drop_table("import_ref")
    op.drop_table("import_reject")
    op.drop_table("import_run")
