"""Fewer B-tree pages per created contact, so a write holds SQLite's one write lock for
less time (issue 13; bench/README.md, "Fewer index entries per write").

``ix_contact_linked`` and ``ix_contact_name_key_id`` leave out the rows whose key is
``NULL``: every primary has no ``linkedId`` and every contact without a name has no
``nameKey``. Those entries answered no query (each query of either column compares it
with a value or a list of values, which a ``NULL`` never equals, so SQLite and PostgreSQL
both still plan it on the partial index), yet every insert wrote them: a created primary
without a name now writes two index entries fewer.

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

#: (index, its columns, the column whose NULLs it leaves out)
_PARTIAL = (
    ("ix_contact_linked", ["linkedId"], "linkedId"),
    ("ix_contact_name_key_id", ["nameKey", "id"], "nameKey"),
)


def upgrade() -> None:
    for name, columns, column in _PARTIAL:
        op.drop_index(name, table_name="Contact")
        where = sa.text(f'"{column}" IS NOT NULL')
        op.create_index(name, "Contact", columns, sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for name, columns, _ in _PARTIAL:
        op.drop_index(name, table_name="Contact")
        op.create_index(name, "Contact", columns)
