"""Imported labels get a key (``importKey``: SHA-256 of the normalised pair, sides in
canonical order, and its outcome), unique, so the same decision imported twice (an
export re-imported, two imports of one file at once) is one label. Existing duplicate
imported labels are removed, the oldest of each kept. Review labels keep a NULL key:
each is one decision on one review item.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""
import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _side_key(records) -> str:
    """As ``reconcile.review.labels.Side.key`` (an imported label's one record per side
    holds normalised values)."""
    if isinstance(records, str):
        records = json.loads(records)
    record = records[0] if records else {}
    return "\x1f".join(record.get(f) or "" for f in ("email", "phoneNumber", "name"))


def import_key(left_records, right_records, outcome: str) -> str:
    a, b = sorted((_side_key(left_records), _side_key(right_records)))
    return hashlib.sha256(f"{a}\x1e{b}\x1d{outcome}".encode("utf-8")).hexdigest()


def upgrade() -> None:
    op.add_column("label", sa.Column("importKey", sa.String(64), nullable=True))
    label = sa.table(
        "label",
        sa.column("id", sa.Integer),
        sa.column("leftRecords", sa.JSON),
        sa.column("rightRecords", sa.JSON),
        sa.column("outcome", sa.String),
        sa.column("source", sa.String),
        sa.column("importKey", sa.String),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(label.c.id, label.c.leftRecords, label.c.rightRecords, label.c.outcome)
        .where(label.c.source == "import")
        .order_by(label.c.id)
    ).all()
    seen: set[str] = set()
    duplicates = []
    for row in rows:
        key = import_key(row.leftRecords, row.rightRecords, row.outcome)
        if key in seen:
            duplicates.append(row.id)
            continue
        seen.add(key)
        conn.execute(sa.update(label).where(label.c.id == row.id).values(importKey=key))
    if duplicates:
        conn.execute(sa.delete(label).where(label.c.id.in_(duplicates)))
    op.create_index("uq_label_import_key", "label", ["importKey"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_label_import_key", table_name="label")
    with op.batch_alter_table("label") as batch:
        batch.drop_column("importKey")
