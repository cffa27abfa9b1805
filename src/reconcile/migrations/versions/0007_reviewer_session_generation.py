"""Reviewers get a session generation: every session cookie carries the generation it
was issued under, and logging out, changing the password or disabling the account
moves it on, so every cookie issued before (copies included) stops working at once.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reviewer", sa.Column("sessionGeneration", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("reviewer", "sessionGeneration")
