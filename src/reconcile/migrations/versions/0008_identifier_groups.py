"""The groups holding each identifier value, maintained as contacts are written, so the
over-merge guards read how widely a value is shared from one capped index look-up
instead of every holder (issue 13). Backfilled from the live contacts.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_BACKFILL = """
INSERT INTO identifier_group (field, value, "groupId", holders)
SELECT '{field}', {column}, COALESCE("linkedId", id), COUNT(*) FROM "Contact"
WHERE "deletedAt" IS NULL AND {column} IS NOT NULL
GROUP BY {column}, COALESCE("linkedId", id)
"""


def upgrade() -> None:
    op.create_table(
        "identifier_group",
        sa.Column("field", sa.String(16), nullable=False),
        sa.Column("value", sa.String(320), nullable=False),
        sa.Column("groupId", sa.Integer(), nullable=False),
        sa.Column("holders", sa.Integer(), nullable=False),
        sa.CheckConstraint("holders > 0", name="ck_identifier_group_holders"),
        sa.PrimaryKeyConstraint("field", "value", "groupId"),
    )
    op.create_index("ix_identifier_group_group", "identifier_group", ["groupId"])
    op.execute(_BACKFILL.format(field="email", column="email"))
    op.execute(_BACKFILL.format(field="phoneNumber", column='"phoneNumber"'))


def downgrade() -> None:
    op.drop_index("ix_identifier_group_group", table_name="identifier_group")
    op.drop_table("identifier_group")
