"""No copies of customers' values in text columns: guard reasons, review evidence, audit
details and review labels name values by reference (``{<contact id>.<field>}``, see
``reconcile.references``), read from the contacts when shown, so erasing a contact
erases every copy.

Existing rows are rewritten: each quoted value becomes a reference to a contact that
holds it; the names a shared-identifier reason listed become "other names" and the
request's name "the request's name" (which holder carried which name is not recoverable
from the text); review labels keep only their contacts' ids. The downgrade renders the
references back from the contacts (an erased contact's as ``[erased]``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""
import json
import re

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

FIELDS = ("email", "phoneNumber")
_REF = re.compile(r"\{(\d+)\.(email|phoneNumber|name)\}")
_NAMES = re.compile(r"is held by .*, not compatible with .* \((\d+) names in all\)")
_NAMES_TEXT = r"is held by other names, not compatible with the request's name (\1 names in all)"

meta = sa.MetaData()
contact = sa.Table(
    "Contact", meta, sa.Column("id", sa.Integer), sa.Column("email", sa.String),
    sa.Column("phoneNumber", sa.String), sa.Column("name", sa.String), sa.Column("createdAt", sa.DateTime),
)
link_guard = sa.Table(
    "link_guard", meta, sa.Column("id", sa.Integer), sa.Column("contactId", sa.Integer),
    sa.Column("field", sa.String), sa.Column("value", sa.String), sa.Column("reason", sa.Text),
)
pending_merge = sa.Table("pending_merge", meta, sa.Column("id", sa.Integer), sa.Column("evidence", sa.JSON))
audit_log = sa.Table(
    "audit_log", meta, sa.Column("id", sa.Integer), sa.Column("contactId", sa.Integer), sa.Column("detail", sa.JSON)
)
label = sa.Table(
    "label", meta, sa.Column("id", sa.Integer), sa.Column("source", sa.String),
    sa.Column("leftRecords", sa.JSON), sa.Column("rightRecords", sa.JSON),
)


def _loads(value):
    return json.loads(value) if isinstance(value, str) else value


def _quoted(text: str, values: list[tuple[str, str, int]]) -> str:
    """``text`` with each value's ``repr`` replaced by a quoted reference to its holder."""
    for field, value, holder in values:
        text = text.replace(repr(value), f"'{{{holder}.{field}}}'")
    return _NAMES.sub(_NAMES_TEXT, text)


def _holder(conn, field: str, value: str) -> int | None:
    column = contact.c[field]
    return conn.execute(sa.select(sa.func.min(contact.c.id)).where(column == value)).scalar()


def upgrade() -> None:
    conn = op.get_bind()
    for row in conn.execute(sa.select(link_guard)).all():
        values = [(row.field, row.value, row.contactId)] if row.field in FIELDS and row.value else []
        new = _quoted(row.reason, values)
        if new != row.reason:
            conn.execute(sa.update(link_guard).where(link_guard.c.id == row.id).values(reason=new))

    for row in conn.execute(sa.select(pending_merge).where(pending_merge.c.evidence.is_not(None))).all():
        evidence = _loads(row.evidence)
        if not isinstance(evidence, dict) or not isinstance(evidence.get("values"), list):
            continue
        held = []
        for pair in evidence["values"]:
            if isinstance(pair, list) and len(pair) == 2 and pair[0] in FIELDS and isinstance(pair[1], str):
                holder = _holder(conn, pair[0], pair[1])
                if holder is not None:
                    held.append((pair[0], pair[1], holder))
        evidence["values"] = [[field, f"{{{holder}.{field}}}"] for field, _, holder in held]
        if isinstance(evidence.get("reason"), str):
            evidence["reason"] = _quoted(evidence["reason"], held)
        conn.execute(sa.update(pending_merge).where(pending_merge.c.id == row.id).values(evidence=evidence))

    # only creations a guard held carry reasons: filter in SQL, the table can be large
    guarded = sa.cast(audit_log.c.detail, sa.Text).like('%"guards"%')
    for row in conn.execute(sa.select(audit_log).where(audit_log.c.detail.is_not(None), guarded)).all():
        detail = _loads(row.detail)
        if not isinstance(detail, dict) or not isinstance(detail.get("guards"), list):
            continue
        own = conn.execute(sa.select(contact).where(contact.c.id == row.contactId)).first()
        values = [(f, getattr(own, f), own.id) for f in FIELDS if own is not None and getattr(own, f)]
        for guard in detail["guards"]:
            if isinstance(guard, dict) and isinstance(guard.get("reason"), str):
                guard["reason"] = _quoted(guard["reason"], values)
        conn.execute(sa.update(audit_log).where(audit_log.c.id == row.id).values(detail=detail))

    for row in conn.execute(sa.select(label).where(label.c.source == "review")).all():
        conn.execute(
            sa.update(label).where(label.c.id == row.id).values(
                leftRecords=[{"id": r.get("id")} for r in _loads(row.leftRecords) or []],
                rightRecords=[{"id": r.get("id")} for r in _loads(row.rightRecords) or []],
            )
        )


def downgrade() -> None:
    conn = op.get_bind()
    cache: dict[int, object] = {}

    def contact_row(contact_id: int):
        if contact_id not in cache:
            cache[contact_id] = conn.execute(sa.select(contact).where(contact.c.id == contact_id)).first()
        return cache[contact_id]

    def render(value):
        if isinstance(value, str):
            return _REF.sub(lambda m: getattr(contact_row(int(m.group(1))), m.group(2), None) or "[erased]", value)
        if isinstance(value, dict):
            return {k: render(v) for k, v in value.items()}
        if isinstance(value, list):
            return [render(v) for v in value]
        return value

    for row in conn.execute(sa.select(link_guard)).all():
        conn.execute(sa.update(link_guard).where(link_guard.c.id == row.id).values(reason=render(row.reason)))
    for table, column in ((pending_merge, "evidence"), (audit_log, "detail")):
        for row in conn.execute(sa.select(table).where(table.c[column].is_not(None))).all():
            rendered = render(_loads(getattr(row, column)))
            conn.execute(sa.update(table).where(table.c.id == row.id).values({column: rendered}))
    for row in conn.execute(sa.select(label).where(label.c.source == "review")).all():
        records = {}
        for side in ("leftRecords", "rightRecords"):
            records[side] = []
            for r in _loads(getattr(row, side)) or []:
                found = contact_row(r.get("id"))
                records[side].append(
                    {"id": r.get("id"), "email": None, "phoneNumber": None, "name": None, "createdAt": None}
                    if found is None
                    else {"id": found.id, "email": found.email, "phoneNumber": found.phoneNumber, "name": found.name,
                          "createdAt": found.createdAt.isoformat() if found.createdAt else None}
                )
        conn.execute(sa.update(label).where(label.c.id == row.id).values(**records))
