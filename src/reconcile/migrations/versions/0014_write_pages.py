"""Fewer B-tree pages per created contact, so a write holds SQLite's one write lock for
less time (issue 13; bench/README.md, `store_calls`, "Fewer index entries per write").

Three indexes leave out rows no query looks for through them:

* ``ix_contact_linked`` the primaries (no ``linkedId``) and ``ix_contact_name_key_id`` the
  contacts without a name (no ``nameKey``): every query of either column compares it with
  a value or a list of values, which a ``NULL`` never equals, so SQLite and PostgreSQL
  still plan those queries on the partial index;
* ``ix_audit_cause`` the audit rows of created contacts: each one's cause is its request's
  own (``identify:<uuid>``), so its entry landed on a random page, and no query asks for
  creations by cause. The reads by cause (what a confirmation or a detachment changed)
  say ``action <> 'created'`` (``store.schema.NOT_CREATED``) to be served by the index.

A created primary without a name writes three index entries fewer: 21.5 pages per
``/identify`` that creates one at 1M contacts before, 18.1 after.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

#: (index, table, its columns, the rows it keeps)
_PARTIAL = (
    ("ix_contact_linked", "Contact", ["linkedId"], '"linkedId" IS NOT NULL'),
    ("ix_contact_name_key_id", "Contact", ["nameKey", "id"], '"nameKey" IS NOT NULL'),
    ("ix_audit_cause", "audit_log", ["cause"], "action <> 'created'"),
)


def upgrade() -> None:
    for name, table, columns, kept in _PARTIAL:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, columns, sqlite_where=sa.text(kept), postgresql_where=sa.text(kept))


def downgrade() -> None:
    for name, table, columns, _ in _PARTIAL:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, columns)
