"""Candidate retrieval for the probabilistic stage: index look-ups on blocking keys."""
from __future__ import annotations

from sqlalchemy import func, select

from .contacts import ContactRow, ContactTx
from .schema import contact

#: blocking-key columns, strongest first
BLOCKING_KEYS = ("emailMailbox", "phoneNational", "emailLocal", "phoneTail", "nameKey")


def fetch_candidates(
    tx: ContactTx, keys: dict[str, str], exclude_primary: int, per_key: int
) -> list[ContactRow]:
    """Live contacts outside group ``exclude_primary`` sharing any blocking key.

    Each key contributes at most ``per_key`` rows (newest first), so a common key
    (a popular name, a shared tail of digits) cannot make one request expensive.
    """
    found: dict[int, ContactRow] = {}
    group = func.coalesce(contact.c.linkedId, contact.c.id)
    for column in BLOCKING_KEYS:
        value = keys.get(column)
        if not value:
            continue
        stmt = (
            select(contact)
            .where(contact.c[column] == value, contact.c.deletedAt.is_(None), group != exclude_primary)
            .order_by(contact.c.id.desc())
            .limit(per_key)
        )
        for row in tx.conn.execute(stmt):
            found.setdefault(row.id, row)
    return list(found.values())
