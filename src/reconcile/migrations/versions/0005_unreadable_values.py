"""Contacts keep an email or phone the request sent but nobody could read, as data: the
request is answered on its other identifier instead of being refused.

Nullable and never indexed: these values are shown to reviewers, never linked on.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = ("unreadableEmail", "unreadablePhone")


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("Contact", sa.Column(column, sa.String(320)))


def downgrade() -> None:
    for column in reversed(COLUMNS):
        op.drop_column("Contact", column)
