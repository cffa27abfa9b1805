"""Pending merges, cannot-link pairs, link guards, labels and reviewers.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""
from alembic import op

from reconcile.store.schema import cannot_link, label, link_guard, pending_merge, reviewer

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = [pending_merge, cannot_link, link_guard, label, reviewer]


def upgrade() -> None:
    bind = op.get_bind()
    for table in TABLES:
        table.create(bind)  # with its indexes


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(TABLES):
        table.drop(bind)
