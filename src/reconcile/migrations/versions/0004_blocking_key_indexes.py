"""Blocking-key indexes carry the id: candidate retrieval reads "the newest N contacts
sharing this key" from the index instead of sorting every row with that key (PostgreSQL).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

KEYS = [
    ("ix_contact_mailbox", "emailMailbox"),
    ("ix_contact_local", "emailLocal"),
    ("ix_contact_phone_national", "phoneNational"),
    ("ix_contact_phone_tail", "phoneTail"),
    ("ix_contact_name_key", "nameKey"),
]


def upgrade() -> None:
    for name, column in KEYS:
        op.create_index(f"{name}_id", "Contact", [column, "id"])
        op.drop_index(name, table_name="Contact")


def downgrade() -> None:
    for name, column in KEYS:
        op.create_index(name, "Contact", [column])
        op.drop_index(f"{name}_id", table_name="Contact")
